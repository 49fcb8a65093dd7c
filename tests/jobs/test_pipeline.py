"""The whole job on the files source into PostgreSQL (a throwaway local cluster): malformed,
duplicate and late events, the archive, a crash replay, and graceful stops."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from kappa import pipeline
from kappa.events import flag_late, parse_events, stamp_batch_time, unique_archive_columns
from kappa.runner import StopRequest, run
from kappa.sinks import open_sink
from kappa.spec import PipelineSpec

from tests.jobs import stores
from tests.jobs.support import (
    BASE_TIME,
    EVENT_FORMAT,
    ON_ARRIVAL,
    Event,
    assert_matches_truth,
    generate,
    make_spec,
    serving_view,
    truth,
    write_lines,
)

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

_MISSING_VALUES = '{"event_id": "m1", "key": "k", "event_time": "2026-11-25T10:00:00Z"}'
_BAD_TIME = '{"event_id": "m2", "key": "k", "event_time": "soon", "value": 1, "weight": 1}'
MALFORMED = {
    "{not json": "invalid JSON",
    _MISSING_VALUES: "missing field(s): value, weight",
    _BAD_TIME: "invalid field(s): event_time",
}


def _feed(spec: PipelineSpec, name: str, lines: list[str], arrival: datetime | None = None) -> None:
    write_lines(Path(spec.source.path), name, lines, arrival=arrival)  # type: ignore[union-attr]


def _jsons(events: list[Event]) -> list[str]:
    return [e.to_json() for e in events]


def _dead_letters(spec: PipelineSpec) -> list[dict[str, Any]]:
    root = Path(spec.dead_letter_location)
    return [
        json.loads(line)
        for path in sorted(root.glob("batch_id=*/*.json"))
        for line in path.read_text().splitlines()
    ]


def _process(
    spark: Any, spec: PipelineSpec, *files: list[str], arrivals: list[datetime] | None = None
) -> tuple[dict[int, int], pipeline.BatchWriter]:
    """Run the pipeline over the files, fed one at a time (arriving at `arrivals`, when
    given): the rows Spark dropped by its watermark per batch, and the batches' counts."""
    query, writer = pipeline.start(spark, spec, trigger_seconds=0.5)
    try:
        for number, lines in enumerate(files, start=1):
            _feed(spec, f"{number}.json", lines, arrivals[number - 1] if arrivals else None)
            query.processAllAvailable()
        return pipeline.rows_dropped_by_watermark(query), writer
    finally:
        query.stop()


def _archived(spark: Any, spec: PipelineSpec) -> list[str]:
    """The event ids of the valid events in the archive."""
    frame = spark.read.parquet(spec.archive_location).where("error IS NULL")
    return sorted(row["event_id"] for row in frame.select("event_id").collect())


def _archived_malformed(spark: Any, spec: PipelineSpec) -> list[tuple[str, str]]:
    frame = spark.read.parquet(spec.archive_location).where("error IS NOT NULL")
    rows = frame.select("payload", "error", "event_id", "event_date").collect()
    assert all(row["event_id"] is None and row["event_date"] is None for row in rows)
    return sorted((row["payload"], row["error"]) for row in rows)


def _wait_for_rows(
    serving: stores.Store, table: str, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until the serving table has rows; the job creates the table when it starts."""
    import psycopg

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (process is None or process.poll() is None):
        try:
            if serving.read_rows(table):
                return
        except psycopg.errors.UndefinedTable:
            pass
        time.sleep(0.5)


@pytest.fixture
def serving(postgres: Any) -> stores.Store:
    return stores.postgres_store(postgres)


def test_malformed_duplicate_and_late_events(
    spark: Any, serving: stores.Store, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path, sink=serving.sink, version="mdl", windowing=ON_ARRIVAL)
    first = generate(150, seed=1)  # 10:00 - 10:10
    second = generate(150, seed=2, start=BASE_TIME + timedelta(minutes=10))  # 10:10 - 10:20
    # Reaching the source at 10:20, 49 minutes after their event times: late (watermark 10 min).
    late = generate(5, seed=3, start=BASE_TIME - timedelta(minutes=30), span=timedelta(minutes=1))
    arrivals = [BASE_TIME + timedelta(minutes=m) for m in (5, 15, 20)]
    dropped, writer = _process(
        spark,
        spec,
        # The same malformed payload in two records (lines) is two dead letters.
        [*_jsons(first), *_jsons(first[:10]), *MALFORMED, "{not json"],
        [*_jsons(second), *_jsons(first[10:20])],
        _jsons(late),
        arrivals=arrivals,
    )

    expected = truth(first + second)
    assert_matches_truth(serving_view(serving.read_rows(spec.serving_table)), expected)
    dead = _dead_letters(spec)
    late_payloads = {e.to_json(): "late" for e in late}
    assert {d["payload"]: d["reason"] for d in dead} == {**MALFORMED, **late_payloads}
    malformed = [d for d in dead if d["reason"] != "late"]
    first_bad_line = len(first) + 10 + 1
    lines = range(first_bad_line, first_bad_line + len(MALFORMED) + 1)
    assert sorted((d["record_id"].rsplit("/", 1)[-1], d["payload"]) for d in malformed) == sorted(
        (f"1.json:{line}", payload)
        for line, payload in zip(lines, [*MALFORMED, "{not json"], strict=True)
    )
    assert all(d["pipeline_version"] == "mdl" for d in dead)
    assert dropped == {}
    # Every record read is in the archive once: on time, late and malformed.
    assert _archived(spark, spec) == sorted(e.event_id for e in first + second + late)
    assert _archived_malformed(spark, spec) == sorted(
        [*MALFORMED.items(), ("{not json", "invalid JSON")]
    )
    counts = writer.history.values()
    assert sum(c.on_time for c in counts) == 300
    assert sum(c.late for c in counts) == len(late)
    assert sum(c.malformed for c in counts) == len(MALFORMED) + 1


def test_a_batch_runs_one_spark_job_per_write_and_one_to_summarise_it(
    spark: Any, serving: stores.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Spark job costs a batch 0.1-0.4 s however little it does (docs/benchmarks.md).
    One job summarises the batch (events.batch_summary) and fills its cache: its counts and,
    as the driver then holds them, the merge's rows, written without a job of their own;
    the archive and the dead letters are a job each, and a batch without dead letters has
    no job for them."""
    tracker = spark.sparkContext.statusTracker()
    jobs_per_batch: dict[int, int] = {}
    write_batch = pipeline.BatchWriter.__call__

    def counting(writer: pipeline.BatchWriter, batch: Any, batch_id: int) -> None:
        group = spark.sparkContext.getLocalProperty("spark.jobGroup.id")
        before = set(tracker.getJobIdsForGroup(group))
        write_batch(writer, batch, batch_id)
        jobs_per_batch[batch_id] = len(set(tracker.getJobIdsForGroup(group)) - before)

    monkeypatch.setattr(pipeline.BatchWriter, "__call__", counting)
    spec = make_spec(tmp_path / "bad", sink=serving.sink, version="bad")
    _, writer = _process(spark, spec, [*_jsons(generate(20, seed=4)), "{not json"])
    [with_dead_letters] = [n for n, c in writer.history.items() if c.malformed]
    assert jobs_per_batch[with_dead_letters] == 3
    spec = make_spec(tmp_path / "good", sink=serving.sink, version="good")
    _, writer = _process(spark, spec, _jsons(generate(20, seed=5)))
    [on_time_only] = [n for n, c in writer.history.items() if c.on_time and not c.malformed]
    assert jobs_per_batch[on_time_only] == 2


def test_a_batch_with_more_aggregate_rows_than_the_driver_takes_is_merged_all_the_same(
    spark: Any, serving: stores.Store, tmp_path: Path
) -> None:
    """Past BatchWriter.driver_max_rows, the counts come from a job of their own and the
    executors write the rows (each through the sink's row_writer): the same counts, the same
    table."""
    generated = generate(60, seed=6)
    raw = spark.createDataFrame(
        [(e.to_json(), e.time, f"r{n}") for n, e in enumerate(generated)]
        + [("{not json", BASE_TIME, "bad")],
        "payload string, arrival_time timestamp, record_id string",
    )
    batch = flag_late(parse_events(stamp_batch_time(raw), EVENT_FORMAT), ON_ARRIVAL)
    written: dict[str, Any] = {}
    for version, driver_max_rows in (("driver", 10_000), ("executors", 1)):
        spec = make_spec(tmp_path / version, sink=serving.sink, version=version)
        sink = open_sink(spec)
        sink.prepare()
        writer = pipeline.BatchWriter(spec, sink, driver_max_rows=driver_max_rows)
        writer(batch, 0)
        assert writer.history[0] == pipeline.BatchCounts(len(generated), 0, 1)
        written[version] = serving_view(serving.read_rows(spec.serving_table))
    assert written["driver"] == written["executors"]
    assert_matches_truth(written["executors"], truth(generated))


def test_epoch_millisecond_times_keep_the_watermark_with_the_events(
    spark: Any, serving: stores.Store, tmp_path: Path
) -> None:
    """Read as epoch seconds, the first file's times would lie some 55,000 years ahead."""
    spec = make_spec(tmp_path, sink=serving.sink, version="millis")
    first = generate(100, seed=51)  # 10:00 - 10:10
    second = generate(100, seed=52, start=BASE_TIME + timedelta(minutes=10))  # 10:10 - 10:20
    dropped, _ = _process(
        spark, spec, [e.to_json(epoch_millis=True) for e in first], _jsons(second)
    )
    assert dropped == {}
    assert_matches_truth(serving_view(serving.read_rows(spec.serving_table)), truth(first + second))
    assert _archived(spark, spec) == sorted(e.event_id for e in first + second)


def test_a_new_version_replays_beside_the_old_one_into_its_own_outputs(
    spark: Any, serving: stores.Store, tmp_path: Path
) -> None:
    """The Kappa replay: v2 starts later, from the earliest event, while v1 goes on."""
    v1 = make_spec(tmp_path, sink=serving.sink, version="v1")
    v2 = make_spec(tmp_path, sink=serving.sink, version="v2")  # same log, same base URIs
    first = generate(120, seed=71)
    second = generate(120, seed=72, start=BASE_TIME + timedelta(minutes=5))
    third = generate(60, seed=73, start=BASE_TIME + timedelta(minutes=9))
    old, _ = pipeline.start(spark, v1, trigger_seconds=0.5)
    try:
        _feed(v1, "1.json", [*_jsons(first), "{bad"])
        old.processAllAvailable()
        _feed(v1, "2.json", _jsons(second))
        old.processAllAvailable()
        assert v1.serving_table != v2.serving_table
        new, _ = pipeline.start(spark, v2, trigger_seconds=0.5)
        try:
            new.processAllAvailable()
            assert_matches_truth(
                serving_view(serving.read_rows(v2.serving_table)), truth(first + second)
            )
            _feed(v1, "3.json", _jsons(third))  # both versions read it
            old.processAllAvailable()
            new.processAllAvailable()
        finally:
            new.stop()
    finally:
        old.stop()
    everything = first + second + third
    for spec in (v1, v2):
        assert_matches_truth(serving_view(serving.read_rows(spec.serving_table)), truth(everything))
        assert _archived(spark, spec) == sorted(e.event_id for e in everything)
        [letter] = _dead_letters(spec)
        assert letter["pipeline_version"] == spec.pipeline_version
        assert (Path(spec.checkpoint_location) / "commits").is_dir()
    assert {p.name for p in (tmp_path / "checkpoints").iterdir()} == {"v1", "v2"}
    assert {p.name for p in (tmp_path / "archive").iterdir()} == {"v1", "v2"}


def test_late_events_are_kept_counted_and_logged_per_batch(
    spark: Any, serving: stores.Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A late event is dead-lettered with reason "late" and archived, never only counted;
    the batch's figures and log line show it."""
    spec = make_spec(tmp_path, sink=serving.sink, version="late", windowing=ON_ARRIVAL)
    on_time = generate(40, seed=81, start=BASE_TIME + timedelta(minutes=30))  # 10:30 - 10:40
    late = generate(4, seed=82, start=BASE_TIME, span=timedelta(minutes=1))  # 10:00 - 10:01
    arrival = BASE_TIME + timedelta(minutes=40)
    caplog.set_level(logging.INFO, logger="kappa.pipeline")
    dropped, writer = _process(spark, spec, _jsons(on_time + late), arrivals=[arrival])
    assert dropped == {}
    [(batch_id, counts)] = [(b, c) for b, c in writer.history.items() if c.on_time or c.late]
    assert (counts.on_time, counts.late, counts.malformed) == (40, 4, 0)
    assert f"batch {batch_id}: 40 on time, 4 late, 0 malformed events" in caplog.messages
    letters = _dead_letters(spec)
    assert sorted(d["payload"] for d in letters) == sorted(_jsons(late))
    assert {d["reason"] for d in letters} == {"late"}
    assert _archived(spark, spec) == sorted(e.event_id for e in on_time + late)
    assert_matches_truth(serving_view(serving.read_rows(spec.serving_table)), truth(on_time))


def test_a_backlog_read_in_any_order_loses_no_on_time_event(
    spark: Any, serving: stores.Store, tmp_path: Path
) -> None:
    """A backlog handed out newest first, as Pub/Sub may: on event time the first batch
    moved the watermark past every later batch's events, which Spark then dropped unseen.
    Each event here reached the source within five minutes of its event time: on time."""
    spec = make_spec(tmp_path, sink=serving.sink, version="backlog", windowing=ON_ARRIVAL)
    hours = [
        generate(30, seed=90 + n, start=BASE_TIME + timedelta(minutes=10 * n)) for n in range(6)
    ]
    files = [_jsons(events) for events in reversed(hours)]
    arrivals = [min(e.time for e in events) + timedelta(minutes=5) for events in reversed(hours)]
    dropped, writer = _process(spark, spec, *files, arrivals=arrivals)
    everything = [e for events in hours for e in events]
    assert dropped == {}
    assert sum(c.on_time for c in writer.history.values()) == len(everything)
    assert sum(c.late for c in writer.history.values()) == 0
    assert_matches_truth(serving_view(serving.read_rows(spec.serving_table)), truth(everything))


def test_run_reports_no_rows_dropped_by_the_watermark(
    spark: Any, serving: stores.Store, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path, sink=serving.sink, version="runner", windowing=ON_ARRIVAL)
    _feed(spec, "1.json", _jsons(generate(20, seed=83)), BASE_TIME + timedelta(minutes=10))
    marker = tmp_path / "stop-now"
    results: list[Any] = []
    runner = threading.Thread(
        target=lambda: results.append(run(spark, spec, StopRequest(str(marker)), poll_seconds=1)),
        daemon=True,
    )
    runner.start()
    try:
        _wait_for_rows(serving, spec.serving_table)
        _wait_for_commit(spec, batch_id=0)
    finally:
        marker.write_text("stop")
        runner.join(timeout=120)
    [result] = results
    assert result.batches >= 1
    assert result.dropped_by_watermark == {}


def _wait_for_commit(spec: PipelineSpec, batch_id: int) -> None:
    commit = Path(spec.checkpoint_location) / "commits" / str(batch_id)
    deadline = time.monotonic() + 120
    while not commit.exists():
        assert time.monotonic() < deadline, f"batch {batch_id} was not committed in 120 s"
        time.sleep(0.2)


def test_archive_is_partitioned_by_event_date_and_hour(
    spark: Any, serving: stores.Store, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path, sink=serving.sink, version="arc")
    events = generate(
        20, seed=5, start=BASE_TIME + timedelta(minutes=50), span=timedelta(minutes=20)
    )  # 10:50 - 11:10
    _feed(spec, "1.json", _jsons(events))
    query, _ = pipeline.start(spark, spec, trigger_seconds=0.5)
    try:
        query.processAllAvailable()
    finally:
        query.stop()
    # The batch's cache lives one batch: its columns are not compressed (pipeline.start).
    assert spark.conf.get("spark.sql.inMemoryColumnarStorage.compressed") == "false"
    hours = sorted(p.name for p in Path(spec.archive_location).glob("event_date=2026-11-25/*"))
    assert hours == ["event_hour=10", "event_hour=11"]
    rows = spark.read.parquet(spec.archive_location).collect()
    by_id = {r["event_id"]: r for r in rows}
    for event in events:
        assert by_id[event.event_id]["event_hour"] == event.time.hour
    files = sorted(Path(spec.archive_location).rglob("*.parquet"))
    assert files
    unique = set(unique_archive_columns(spec.event))
    for file in files:
        row_group = pq.ParquetFile(file).metadata.row_group(0)
        chunks = [row_group.column(i) for i in range(row_group.num_columns)]
        assert {chunk.compression for chunk in chunks} == {"ZSTD"}
        # Columns unique per record are written without trying a dictionary: arrival_time,
        # the same for every line of a file here, would otherwise keep one. The keys keep
        # theirs.
        with_dictionary = {c.path_in_schema for c in chunks if c.has_dictionary_page}
        assert not with_dictionary & unique
        assert spec.event.key_field in with_dictionary
        # Times in Parquet's timestamp type, not the deprecated INT96 (pipeline.start).
        schema = pq.ParquetFile(file).schema
        for name in (spec.event.time_field, "arrival_time"):
            column = schema.column(schema.names.index(name))
            logical = json.loads(column.logical_type.to_json())
            assert column.physical_type == "INT64", name
            assert (logical["Type"], logical["timeUnit"], logical["isAdjustedToUTC"]) == (
                "Timestamp",
                "microseconds",
                True,
            ), name


def test_an_archive_with_int96_files_from_before_reads_back_as_one_table(
    spark: Any, tmp_path: Path
) -> None:
    # Archives written before the job set Parquet's timestamp type hold INT96 times; the
    # batches written since sit beside them in the same partitions (docs/job.md).
    archive = tmp_path / "archive"
    moment = datetime(2026, 11, 25, 10, 5, 3, 123456)
    frame = spark.createDataFrame([(moment,)], "event_time timestamp")
    setting = "spark.sql.parquet.outputTimestampType"
    before = spark.conf.get(setting)
    try:
        for batch_id, encoding in ((0, "INT96"), (1, "TIMESTAMP_MICROS")):
            spark.conf.set(setting, encoding)
            frame.write.parquet(str(archive / f"batch_id={batch_id}"))
    finally:
        spark.conf.set(setting, before)
    types = {pq.ParquetFile(f).schema.column(0).physical_type for f in archive.rglob("*.parquet")}
    assert types == {"INT96", "INT64"}
    rows = spark.read.parquet(str(archive)).orderBy("batch_id").collect()
    assert [(r["batch_id"], r["event_time"]) for r in rows] == [(0, moment), (1, moment)]


def test_a_batch_replayed_after_a_crash_counts_nothing_twice(
    spark: Any, serving: stores.Store, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path, sink=serving.sink, version="crash")
    first = generate(100, seed=11)
    second = generate(100, seed=12, start=BASE_TIME + timedelta(minutes=5))
    _process(spark, spec, [*_jsons(first), "{bad"], [*_jsons(second), "{bad"])
    # A crash after the batch's writes but before Spark recorded it as committed: remove the
    # last commit, so the restarted query runs that batch again.
    commits = sorted(
        (Path(spec.checkpoint_location) / "commits").glob("[0-9]*"), key=lambda p: int(p.name)
    )
    last = commits[-1]
    letters_before_the_crash = _dead_letters(spec)
    last.unlink()
    last.with_name(f".{last.name}.crc").unlink(missing_ok=True)  # Hadoop's checksum beside it
    query, writer = pipeline.start(spark, spec, trigger_seconds=0.5)
    try:
        query.processAllAvailable()
        assert int(last.name) in writer.history, "the restarted query did not replay the batch"
        third = generate(30, seed=13, start=BASE_TIME + timedelta(minutes=8))
        _feed(spec, "3.json", _jsons(third))
        query.processAllAvailable()
    finally:
        query.stop()
    assert_matches_truth(
        serving_view(serving.read_rows(spec.serving_table)), truth(first + second + third)
    )
    assert _archived(spark, spec) == sorted(e.event_id for e in first + second + third)
    # The replayed batch rewrote its dead letters, the same in every field (the same record,
    # file and line, the same batch time), in place of its own.
    assert _dead_letters(spec) == letters_before_the_crash
    assert len(letters_before_the_crash) == 2


def test_a_batchs_writes_run_at_once_in_the_query_job_group(spark: Any, tmp_path: Path) -> None:
    context = spark.sparkContext
    # Both writes wait for each other: run one after the other, they would time out.
    both_started = threading.Barrier(2, timeout=60)
    job_groups: list[str] = []

    def write() -> None:
        both_started.wait()
        job_groups.append(context.getLocalProperty("spark.jobGroup.id"))

    write_lines(tmp_path / "input", "1.json", ["{}"])
    query = (
        spark.readStream.format("text")
        .load(str(tmp_path / "input"))
        .writeStream.option("checkpointLocation", str(tmp_path / "checkpoint"))
        .foreachBatch(lambda batch, batch_id: pipeline.run_together(spark, [write, write]))
        .start()
    )
    try:
        query.processAllAvailable()
    finally:
        query.stop()
    # Spark cancels a stopped query's jobs by its job group: the writes' jobs must carry it.
    assert job_groups == [str(query.runId)] * 2


def test_a_failed_write_fails_the_batch_once_the_other_writes_have_ended(spark: Any) -> None:
    """The merge is held until the archive has failed and the batch had time to give up; what
    had ended when the batch failed is recorded at that moment, so a batch that failed
    without waiting shows an unfinished merge whatever the timing."""
    archive_failed = threading.Event()
    release_merge = threading.Event()
    ended: list[str] = []
    when_the_batch_failed: list[list[str]] = []

    def archive() -> None:
        archive_failed.set()
        raise OSError("archive bucket unreachable")

    def merge() -> None:
        assert release_merge.wait(timeout=60)
        ended.append("merge")

    failures: list[OSError] = []

    def batch() -> None:
        try:
            pipeline.run_together(spark, [archive, merge])
        except OSError as error:
            when_the_batch_failed.append(list(ended))
            failures.append(error)

    running = threading.Thread(target=batch)
    running.start()
    assert archive_failed.wait(timeout=60)
    running.join(timeout=1)  # a batch that does not wait fails now, the merge still held
    release_merge.set()
    running.join(timeout=60)
    assert when_the_batch_failed == [["merge"]]
    assert [str(error) for error in failures] == ["archive bucket unreachable"]


def test_stop_marker_stops_the_run_after_the_batch_in_flight(
    spark: Any, serving: stores.Store, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path, sink=serving.sink, version="marker")
    events = generate(50, seed=17)
    _feed(spec, "1.json", _jsons(events))
    marker = tmp_path / "stop-now"
    stop = StopRequest(str(marker))
    results: list[Any] = []
    runner = threading.Thread(
        target=lambda: results.append(run(spark, spec, stop, poll_seconds=1)), daemon=True
    )
    runner.start()
    try:
        _wait_for_rows(serving, spec.serving_table)
    finally:
        marker.write_text("stop")
        runner.join(timeout=120)
    assert not runner.is_alive()
    [result] = results
    assert result.stop_reason == f"stop marker {marker}"
    assert result.batches >= 1
    assert_matches_truth(serving_view(serving.read_rows(spec.serving_table)), truth(events))
    assert not any(q.isActive for q in spark.streams.active)


def test_cli_stops_gracefully_on_sigterm_and_exits_zero(
    serving: stores.Store, postgres: Any, tmp_path: Path
) -> None:
    """Runs `python -m kappa --spec` as its own process (its own local Spark)."""
    spec = make_spec(tmp_path, sink=serving.sink, version="cli")
    events = generate(40, seed=19)
    _feed(spec, "1.json", _jsons(events))
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(spec.to_json())
    jobs = Path(__file__).resolve().parents[2] / "jobs"
    process = subprocess.Popen(
        [sys.executable, "-m", "kappa", "--spec", str(spec_path), "--master", "local[1]"],
        cwd=jobs,
        env={**os.environ, "PYTHONPATH": str(jobs)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_rows(serving, spec.serving_table, process=process)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]
    assert b"stopping after the batch in flight: SIGTERM" in output
    assert_matches_truth(serving_view(serving.read_rows(spec.serving_table)), truth(events))


def test_cli_rejects_an_invalid_spec_with_a_clear_message(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({"pipeline_version": "Bad Version"}))
    jobs = Path(__file__).resolve().parents[2] / "jobs"
    done = subprocess.run(
        [sys.executable, str(jobs / "run_pipeline.py"), "--spec", str(spec_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "pipeline_version" in done.stderr
    assert "source" in done.stderr
