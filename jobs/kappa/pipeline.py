"""The streaming query: one per pipeline version, source to serving store.

source -> parse (valid and malformed rows) -> drop repeated ids within the watermark ->
flag late events -> foreachBatch, which caches micro-batch N and summarises it in one pass
(its aggregates and its counts, events.batch_summary), then runs these three writes at once:
  1. writes malformed records and late events to <dead letters>/batch_id=N, each with its
     payload and reason (overwritten on replay),
  2. writes every record to the Parquet archive, partitioned event_date/event_hour/batch_id
     (dynamic partition overwrite: a replay of N replaces exactly N's files),
  3. aggregates the on-time events per (key, window) and merges them into the serving
     store, fenced by batch id (a replayed N changes nothing already merged).
Nothing read is dropped but a repeat: every record ends in the archive, and each is counted
once as on time, late or malformed. A replayed batch reads the same records (the sources'
offsets are deterministic) and sees the same deduplication state (Spark restores the state
of N-1), and lateness is a property of the record, so it writes the same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field

from pyspark import StorageLevel, inheritable_thread_target
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery

from . import events
from .sinks import ServingSink, open_sink
from .sinks.base import DRIVER_WRITE_MAX_ROWS, rows_if_few
from .sources import read_stream
from .spec import SERVING_KEY_ATTRIBUTE, PipelineSpec

logger = logging.getLogger(__name__)

_CONCURRENT_WRITERS = "spark.sql.maxConcurrentOutputFileWriters"
_COMPRESSED_CACHE = "spark.sql.inMemoryColumnarStorage.compressed"
_PARQUET_TIMESTAMPS = "spark.sql.parquet.outputTimestampType"
# A batch summary's counts, in BatchCounts.of_records' order.
_SUMMARY_TOTALS = (events.SUMMARY_RECORDS, events.SUMMARY_LATE, events.SUMMARY_MALFORMED)


@dataclass
class BatchCounts:
    on_time: int = 0
    late: int = 0
    malformed: int = 0

    @property
    def records(self) -> int:
        return self.on_time + self.late + self.malformed

    @classmethod
    def of_records(cls, records: int, late: int, malformed: int) -> BatchCounts:
        """From a batch summary's totals, in which every record counts once."""
        return cls(records - late - malformed, late, malformed)


@dataclass
class BatchWriter:
    """The foreachBatch function: dead letters, archive, serving store."""

    spec: PipelineSpec
    sink: ServingSink
    history: dict[int, BatchCounts] = field(default_factory=dict)
    # A batch with more aggregate rows than this has them written from the executors.
    driver_max_rows: int = DRIVER_WRITE_MAX_ROWS
    frames: events.BatchFrames = field(init=False)

    def __post_init__(self) -> None:
        self.frames = events.BatchFrames(
            self.spec.event, self.spec.windowing, self.spec.pipeline_version
        )

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        # The batch is read two or three times below. Deserialized, and its columns left
        # uncompressed (start() sets that): building the compressed cache took a sixth of the
        # job's CPU, a serialized one more (profiled on benchmarks/job_throughput.py), for a
        # cache that lives one batch.
        with ExitStack() as release:
            batch.persist(StorageLevel.MEMORY_AND_DISK_DESER)
            release.callback(batch.unpersist)
            self._write(batch, batch_id, release)

    def _write(self, batch: DataFrame, batch_id: int, release: ExitStack) -> None:
        # One Spark job fills the cache, and summarises the batch: its counts and the merge's
        # rows, which the driver then holds when they are few, as they nearly always are. A
        # Spark job costs a batch 0.1-0.4 s however little it does (Spark's job list on
        # benchmarks/job_throughput.py's batches), so counting and reading the aggregates in
        # jobs of their own cost more than the work they did.
        summary = self.frames.summary(batch)
        counts, merge = self._summarise(summary, batch_id, release)
        writes: list[Callable[[], None]] = []
        if counts.malformed or counts.late:
            writes.append(lambda: self._write_dead_letters(batch, batch_id))
        if counts.records:
            writes.append(lambda: self._write_archive(batch, batch_id))
        if counts.on_time:
            writes.append(merge)
        run_together(batch.sparkSession, writes)
        self.history[batch_id] = counts
        if counts.records:
            logger.info(
                "batch %d: %d on time, %d late, %d malformed events",
                batch_id,
                counts.on_time,
                counts.late,
                counts.malformed,
            )

    def _summarise(
        self, summary: DataFrame, batch_id: int, release: ExitStack
    ) -> tuple[BatchCounts, Callable[[], None]]:
        """The batch's counts, and the merge of its aggregates into the serving store. What it
        persists for the merge is unpersisted by `release`, once the batch is written."""
        # At most one summary row is not an aggregate (its late and malformed records).
        head = rows_if_few(summary, self.driver_max_rows + 1)
        write = self.sink.row_writer(batch_id)
        if head is not None:
            counts = BatchCounts.of_records(
                *(sum(row[column] for row in head) for column in _SUMMARY_TOTALS)
            )
            rows = [row for row in head if row[SERVING_KEY_ATTRIBUTE] is not None]
            return counts, lambda: write(rows)
        # Too many rows for the driver, which is rare: each executor writes its own. Counting
        # and writing both read the summary, so it is kept; the few-rows case above reads it
        # once and keeps nothing.
        summary.persist(StorageLevel.MEMORY_AND_DISK)
        release.callback(summary.unpersist)
        aggregates = self.frames.aggregates(summary)
        return self._count(summary), lambda: aggregates.foreachPartition(write)

    def _count(self, summary: DataFrame) -> BatchCounts:
        def total(column: str) -> Column:
            return F.coalesce(F.sum(column), F.lit(0)).alias(column)

        row = summary.agg(*(total(column) for column in _SUMMARY_TOTALS)).first()
        assert row is not None  # a global aggregate has one row
        return BatchCounts.of_records(*(row[column] for column in _SUMMARY_TOTALS))

    def _write_dead_letters(self, batch: DataFrame, batch_id: int) -> None:
        target = f"{self.spec.dead_letter_location}/{events.BATCH_ID}={batch_id}"
        self.frames.dead_letters(batch).coalesce(1).write.mode("overwrite").json(target)

    def _write_archive(self, batch: DataFrame, batch_id: int) -> None:
        writer = (
            self.frames.archive(batch, batch_id)
            .write.mode("overwrite")
            # The archive is kept for years: zstd makes its files 40% smaller than Spark's
            # default snappy, and writes them as fast (benchmarks/job_throughput.py data).
            .option("compression", "zstd")
            .option("partitionOverwriteMode", "dynamic")
        )
        # Columns unique per record gain nothing from a dictionary, and Parquet builds one
        # for each file until it overflows: with the uncompressed cache, this halved the
        # archive write's CPU (profiled on benchmarks/job_throughput.py).
        for column in events.unique_archive_columns(self.spec.event):
            writer = writer.option(f"parquet.enable.dictionary#{column}", "false")
        writer.partitionBy(events.EVENT_DATE, events.EVENT_HOUR, events.BATCH_ID).parquet(
            self.spec.archive_location
        )


def run_together(session: SparkSession, writes: Sequence[Callable[[], None]]) -> None:
    """Run a batch's writes at once and raise the first failure once all have ended.

    Each write is its own Spark job over the cached batch, and each spends part of its time
    off the executors (committing files, waiting on the serving store), which the others
    fill. They are independent: a batch that fails after some of them is replayed whole, and
    every write is idempotent per batch id. The threads inherit the stream thread's local
    properties and the session's tags, so stopping the query still cancels their jobs.
    """
    if len(writes) <= 1:
        for write in writes:
            write()
        return
    with ThreadPoolExecutor(len(writes), thread_name_prefix="kappa-batch-write") as pool:
        futures = [pool.submit(inheritable_thread_target(session)(write)) for write in writes]
        wait(futures)
    for future in futures:
        future.result()


def build_stream(spark: SparkSession, spec: PipelineSpec) -> DataFrame:
    """Source -> stamped with the batch time -> parsed events -> deduplicated within the
    watermark -> late ones flagged."""
    parsed = events.parse_events(events.stamp_batch_time(read_stream(spark, spec)), spec.event)
    return events.flag_late(events.deduplicate(parsed, spec.windowing), spec.windowing)


def start(
    spark: SparkSession,
    spec: PipelineSpec,
    *,
    sink: ServingSink | None = None,
    trigger_seconds: float | None = None,
    available_now: bool = False,
) -> tuple[StreamingQuery, BatchWriter]:
    """Start the pipeline's query; the caller waits for it (see runner.run).

    `available_now` processes what the source holds at start and then ends (backfills and
    benchmarks); otherwise micro-batches run every trigger interval of the spec.
    """
    events.check_event_format(spec.event)
    if spark.conf.get(_CONCURRENT_WRITERS, "0") == "0":
        # A batch spans few (event_date, event_hour) partitions; writing them concurrently
        # spares the archive write the sort by partition that Spark does otherwise, which
        # cost more than the write itself (benchmarks/job_throughput.py).
        spark.conf.set(_CONCURRENT_WRITERS, "16")
    # The batch's cache uncompressed: see BatchWriter.__call__.
    _set_unless_configured(spark, _COMPRESSED_CACHE, "false")
    # The archive's times as Parquet's own timestamp type (a 64-bit count of microseconds),
    # which every current reader knows, instead of Spark's default: the INT96 encoding Parquet
    # deprecated, which also cost a tenth of the archive write's CPU to produce
    # (benchmarks/job_throughput.py's batches).
    _set_unless_configured(spark, _PARQUET_TIMESTAMPS, "TIMESTAMP_MICROS")
    sink = sink or open_sink(spec)
    sink.prepare()
    writer = BatchWriter(spec, sink)
    stream = (
        build_stream(spark, spec)
        .writeStream.queryName(f"kappa-{spec.pipeline_version}")
        .option("checkpointLocation", spec.checkpoint_location)
        .foreachBatch(writer)
    )
    if available_now:
        stream = stream.trigger(availableNow=True)
    else:
        seconds = spec.windowing.trigger_seconds if trigger_seconds is None else trigger_seconds
        stream = stream.trigger(processingTime=f"{seconds} seconds")
    return stream.start(), writer


def _set_unless_configured(spark: SparkSession, key: str, value: str) -> None:
    """A session setting the job needs, unless the cluster's Spark config chose one."""
    if not spark.sparkContext.getConf().contains(key):
        spark.conf.set(key, value)


def rows_dropped_by_watermark(query: StreamingQuery) -> dict[int, int]:
    """Rows Spark's deduplication dropped as older than its watermark, per recent batch id.

    There should be none: the watermark follows the batches' own times (events.deduplicate),
    and late events are flagged and kept instead (events.flag_late). Should Spark ever drop
    rows, they would be in neither the archive nor the dead letters, so runner.run reports
    them as an error.
    """
    dropped: dict[int, int] = {}
    for progress in query.recentProgress:
        count = sum(op.numRowsDroppedByWatermark for op in progress.stateOperators)
        if count:
            dropped[progress.batchId] = count
    return dropped
