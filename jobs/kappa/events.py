"""Pure DataFrame functions: parse raw payloads, shape archive and dead-letter rows, aggregate.

Everything here is Spark SQL expressions (no Python UDF), works the same on a batch or a
streaming DataFrame, and knows nothing of sources or sinks.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .spec import SERVING_KEY_ATTRIBUTE, SERVING_WINDOW_ATTRIBUTE, EventFormat, Windowing

# Columns every source produces. RECORD_ID is the record's identity in its source, the same
# whenever the record is read again (a replayed batch, a redelivery): Kinesis shard and
# sequence number, the Pub/Sub message id, a file's path and line number.
PAYLOAD = "payload"
ARRIVAL_TIME = "arrival_time"
RECORD_ID = "record_id"

# Columns of a parsed event, whatever the spec calls the fields in the JSON.
EVENT_ID = "event_id"
EVENT_KEY = "event_key"
EVENT_TIME = "event_time"
VALUES = "values"
ERROR = "error"
# Whether a valid event reached the source too long after its event time (flag_late).
LATE = "late"
# The micro-batch's own time: what the deduplication's watermark follows (deduplicate).
PROCESSED_AT = "processed_at"

# Columns the archive adds; the spec's field names must not take them.
EVENT_DATE = "event_date"
EVENT_HOUR = "event_hour"
BATCH_ID = "batch_id"
RESERVED_ARCHIVE_COLUMNS = (
    PAYLOAD,
    ARRIVAL_TIME,
    RECORD_ID,
    ERROR,
    LATE,
    EVENT_DATE,
    EVENT_HOUR,
    BATCH_ID,
)
LATE_REASON = "late"

MALFORMED_ID_PREFIX = "malformed:"

_CORRUPT = "_corrupt_record"
_ISO_UTC = "yyyy-MM-dd'T'HH:mm:ss'Z'"
# Epoch milliseconds: a whole number of 12 to 15 digits, i.e. from 1973-03-03T09:46:40Z to
# the year 33658. Other whole numbers are refused rather than guessed at: they are nearly
# always another unit (epoch seconds have 10 digits today, micro- and nanoseconds 16 and 19),
# and read as milliseconds they would be decades off, drop as late or drag the watermark.
_EPOCH_MILLIS = r"^[1-9][0-9]{11,14}$"
# An ISO-8601 time starts with a whole date; Spark's cast alone would also take "2026".
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"


class EventFormatError(ValueError):
    """The event format cannot be used by the job (e.g. a field name the archive reserves)."""


def check_event_format(event: EventFormat) -> None:
    names = [event.id_field, event.key_field, event.time_field, *event.value_fields]
    clashes = sorted(set(names) & set(RESERVED_ARCHIVE_COLUMNS))
    if clashes:
        raise EventFormatError(
            f"event field names {clashes} clash with columns the archive adds "
            f"({', '.join(RESERVED_ARCHIVE_COLUMNS)}); rename them in the spec's event format"
        )


def stat_columns(value_field: str) -> tuple[str, str, str, str]:
    """Names of the aggregate columns (count, sum, min, max) of one value field."""
    return (
        f"{value_field}_count",
        f"{value_field}_sum",
        f"{value_field}_min",
        f"{value_field}_max",
    )


def _typed_schema(event: EventFormat) -> T.StructType:
    return T.StructType(
        [
            T.StructField(event.id_field, T.StringType()),
            T.StructField(event.key_field, T.StringType()),
            # As text: a JSON number read into a timestamp would be taken as epoch seconds.
            T.StructField(event.time_field, T.StringType()),
            *(T.StructField(name, T.DoubleType()) for name in event.value_fields),
            T.StructField(_CORRUPT, T.StringType()),
        ]
    )


def _text_schema(event: EventFormat) -> T.StructType:
    names = [event.id_field, event.key_field, event.time_field, *event.value_fields]
    return T.StructType([T.StructField(name, T.StringType()) for name in names])


def event_time(text: Column) -> Column:
    """The time field's text -> timestamp, or null when it is not a time the job accepts.

    A whole number (a JSON number, or a string of digits) is epoch milliseconds within
    _EPOCH_MILLIS; a string starting with a date is ISO-8601 (without a zone: UTC, the
    session's time zone). Anything else gives null, neither an error nor a guess.
    """
    return F.when(text.rlike(_EPOCH_MILLIS), F.timestamp_millis(text.cast("long"))).when(
        text.rlike(_ISO_DATE), F.try_to_timestamp(text)
    )


def payload_digest(payload: Column) -> Column:
    """SHA-256 of a payload (hex): tells the dead letters that carry the same bytes."""
    return F.sha2(F.coalesce(payload, F.lit("")), 256)


def malformed_id(record_id: Column, payload: Column) -> Column:
    """The deduplication id of a malformed record: "malformed:" and its identity in the
    source, or (a source that has none, e.g. a hand-made frame) "malformed:sha256:" and the
    payload's digest."""
    identity = F.coalesce(record_id, F.concat(F.lit("sha256:"), payload_digest(payload)))
    return F.concat(F.lit(MALFORMED_ID_PREFIX), identity)


def _blank_text(value: Column) -> Column:
    """Absent, or text of nothing but white space (never null)."""
    return value.isNull() | (F.length(F.trim(value)) == 0)


def _not_finite(value: Column) -> Column:
    """NaN or an infinity (null for an absent value)."""
    return F.isnan(value) | (F.abs(value) == F.lit(float("inf")))


def _well_formed(typed: Column, event: EventFormat) -> Column:
    """Whether an event is valid (never null): a cheap test that lets the costly reason
    (_reason, arrays of field names) be worked out only for the few events that fail it.
    It parsed cleanly, its id and key are non-blank text, its time is one the job accepts
    and every value field is a finite number."""

    checks = [
        typed[_CORRUPT].isNull(),
        ~_blank_text(typed[event.id_field]),
        ~_blank_text(typed[event.key_field]),
        event_time(typed[event.time_field]).isNotNull(),
        *(typed[name].isNotNull() & ~_not_finite(typed[name]) for name in event.value_fields),
    ]
    return F.coalesce(reduce(operator.and_, checks), F.lit(False))


def _reason(payload: Column, typed: Column, event: EventFormat) -> Column:
    """Why an event is malformed, or null when it is valid."""
    corrupt = typed[_CORRUPT]
    # Parsing everything as text tells "present but of the wrong type" from "absent". It is
    # only evaluated under `corrupt` (CASE WHEN is lazy), i.e. for malformed rows only.
    as_text = F.from_json(payload, _text_schema(event))
    names = [event.id_field, event.key_field, event.time_field, *event.value_fields]

    # The time is text in `typed` too; a record made corrupt by another field may lose it there.
    time_text = F.coalesce(
        typed[event.time_field], F.when(corrupt.isNotNull(), as_text[event.time_field])
    )

    def is_blank(name: str) -> Column:
        if name in (event.id_field, event.key_field):
            return _blank_text(typed[name])
        return typed[name].isNull()

    def missing(name: str) -> Column:
        if name == event.time_field:
            return time_text.isNull()
        return is_blank(name) & (corrupt.isNull() | as_text[name].isNull())

    def invalid(name: str) -> Column:
        if name == event.time_field:
            return time_text.isNotNull() & event_time(time_text).isNull()
        wrong_type = typed[name].isNull() & corrupt.isNotNull() & as_text[name].isNotNull()
        return wrong_type | _not_finite(typed[name]) if name in event.value_fields else wrong_type

    missing_names = [F.when(missing(n), F.lit(n)) for n in names]
    invalid_names = [F.when(invalid(n), F.lit(n)) for n in names]

    def listed(label: str, items: list[Column]) -> Column:
        present = F.filter(F.array(*items), lambda item: item.isNotNull())
        return F.when(F.size(present) > 0, F.concat(F.lit(label), F.array_join(present, ", ")))

    fields_reason = F.concat_ws(
        "; ",
        listed("missing field(s): ", missing_names),
        listed("invalid field(s): ", invalid_names),
    )
    # Spark's from_json never returns null for text: it marks the record corrupt, for a
    # syntax error and for valid JSON that is no object alike; these two tell them apart.
    not_an_object = corrupt.isNotNull() & F.json_object_keys(payload).isNull()
    return (
        F.when(payload.isNull() | (F.length(F.trim(payload)) == 0), F.lit("empty payload"))
        .when(not_an_object & F.try_parse_json(payload).isNull(), F.lit("invalid JSON"))
        .when(not_an_object, F.lit("invalid JSON: not a JSON object"))
        .when(fields_reason != "", fields_reason)
    )


def stamp_batch_time(raw: DataFrame) -> DataFrame:
    """Add PROCESSED_AT to a source's rows: the micro-batch's time (current_timestamp() is the
    batch's start in a streaming query, the same for every row of it), which the
    deduplication's watermark follows (deduplicate).

    Stamped before the parse, not after it: Spark writes that time as a constant into the
    generated code of the projection that computes it, which is thus new code every batch.
    Here that projection is the source's small one. Stamped after the parse, it was the
    parse's own (about 1,250 lines of Java), compiled again every batch and run slowly until
    the JIT compiler caught up: the deduplicated run took 7.4 s instead of 6.4 s and the job
    10.7 s instead of 9.4 s, its slowest rounds 13.4 s instead of 9.8 s
    (benchmarks/job_throughput.py's input, medians of 6 rounds)."""
    return raw.withColumn(PROCESSED_AT, F.current_timestamp())


def parse_events(raw: DataFrame, event: EventFormat) -> DataFrame:
    """Raw (payload, arrival_time, record_id) rows -> parsed events, valid or not.

    Output columns: payload, arrival_time, record_id, event_id, event_key, event_time, values
    (struct of the value fields), error, and the raw rows' other columns as they are (the
    batch time, stamp_batch_time). A valid row has a null error. A malformed row keeps
    its payload and gets the reason in `error`, a null event_time and the id
    "malformed:<record_id>" (malformed_id): the record's identity in its source, not its
    payload's. So two records that carry the same bad bytes (empty records, a producer sending
    one broken body again and again) are two dead letters, while the same record read twice
    within a batch (a redelivery) is one, and a batch replayed after a crash dead-letters the
    very same rows. A null event time neither advances the watermark nor is dropped as late by
    it, and deduplication keeps the id only until the end of the batch once there is a
    watermark (see deduplicate): the same record redelivered in a later batch (Pub/Sub) is
    dead-lettered again, with the same record_id.
    """
    typed = F.from_json(
        F.col(PAYLOAD), _typed_schema(event), {"columnNameOfCorruptRecord": _CORRUPT}
    )
    passed_through = [c for c in raw.columns if c not in (PAYLOAD, ARRIVAL_TIME, RECORD_ID)]
    parsed = raw.select(
        F.col(PAYLOAD),
        F.col(ARRIVAL_TIME),
        F.col(RECORD_ID),
        *passed_through,
        typed.alias("_typed"),
    )
    fields = F.col("_typed")
    valid = _well_formed(fields, event)
    # Both tests agree (tests/jobs/test_events.py); should they ever not, the event is still
    # dead-lettered with a reason rather than kept half-parsed.
    error = F.when(
        ~valid, F.coalesce(_reason(F.col(PAYLOAD), fields, event), F.lit("malformed event"))
    )
    return parsed.select(
        PAYLOAD,
        ARRIVAL_TIME,
        RECORD_ID,
        F.when(valid, fields[event.id_field])
        .otherwise(malformed_id(F.col(RECORD_ID), F.col(PAYLOAD)))
        .alias(EVENT_ID),
        F.when(valid, fields[event.key_field]).alias(EVENT_KEY),
        F.when(valid, event_time(fields[event.time_field])).alias(EVENT_TIME),
        F.when(valid, F.struct(*(fields[n].alias(n) for n in event.value_fields))).alias(VALUES),
        error.alias(ERROR),
        *passed_through,
    )


def deduplicate(parsed: DataFrame, windowing: Windowing) -> DataFrame:
    """Drop repeated event ids within the watermark (sources are at-least-once), dropping
    nothing else.

    The watermark follows the job's own clock, not event time: every row carries its
    micro-batch's time (PROCESSED_AT, stamp_batch_time, which must have been applied to the
    rows before the parse), and Spark keeps an id until the watermark, the previous batch's
    time minus the delay, passes that time plus the delay. A row is never older than
    the watermark, since each batch starts after the one before, so Spark's operator never
    drops a row as late, whatever the order in which the source hands out a backlog (Pub/Sub
    delivers one in no particular order; Kinesis shards with uneven backlogs span different
    event times per batch). On event time, one batch reaching far ahead moved the watermark
    past the on-time events of the next batches, which Spark then dropped unseen.

    So a repeat read within the deduplication horizon (the spec's deduplication_seconds, by
    default the watermark) of its first copy is dropped, live or catching up; whether an
    event is late is decided per record instead (flag_late). Every id, valid or malformed,
    leaves the state about two horizons after it was read: the state holds what the job read
    in that time, however long the run (tests/jobs/test_deduplication_state.py). A repeat
    read later than that is counted again: the horizon must cover the longest time between
    reading a record and its repeat (spec.Windowing.deduplication_seconds).
    """
    return parsed.withWatermark(
        PROCESSED_AT, f"{windowing.deduplication_horizon_seconds} seconds"
    ).dropDuplicatesWithinWatermark([EVENT_ID])


def flag_late(events: DataFrame, windowing: Windowing) -> DataFrame:
    """Add LATE: a valid event that reached the source more than the watermark after its
    event time.

    Decided by two times the record carries, its event time and its arrival time in the
    source, so the same record is late or on time whenever and in whatever order it is read:
    live, after an outage, or replayed by a new pipeline version. Lateness "none" marks no
    event late (a backfill of old events from files).
    """
    if windowing.lateness == "none":
        return events.withColumn(LATE, F.lit(False))
    deadline = F.col(ARRIVAL_TIME) - F.make_dt_interval(secs=F.lit(windowing.watermark_seconds))
    late = F.col(ERROR).isNull() & (F.col(EVENT_TIME) < deadline)
    return events.withColumn(LATE, F.coalesce(late, F.lit(False)))


def dead_letters(events: DataFrame, pipeline_version: str) -> DataFrame:
    """One row per malformed record and per late event: its payload, the reason ("late" for
    a late event), its identity in the source (the same record redelivered in a later batch
    carries the same record_id), the payload's SHA-256 (tells the records that carry the
    same bytes) and when the job read it: the micro-batch's time (PROCESSED_AT). A time
    taken here instead would be a new constant in this plan's generated code every batch,
    which Spark compiles anew each time (twice per batch, measured)."""
    return _dead_letter_rows(pipeline_version).apply(events)


@dataclass(frozen=True)
class _Selection:
    """Some of a frame's rows (those where `condition` holds; all without one) as `columns`:
    the columns are built once and serve any frame that has what they name (BatchFrames)."""

    columns: list[Column]
    condition: Column | None = None

    def apply(self, frame: DataFrame, *more: Column) -> DataFrame:
        if self.condition is not None:
            frame = frame.where(self.condition)
        return frame.select(*self.columns, *more)


def _dead_letter_rows(pipeline_version: str) -> _Selection:
    columns = [
        F.col(PAYLOAD),
        F.coalesce(F.col(ERROR), F.lit(LATE_REASON)).alias("reason"),
        F.col(RECORD_ID),
        payload_digest(F.col(PAYLOAD)).alias("payload_sha256"),
        F.col(ARRIVAL_TIME),
        F.col(PROCESSED_AT).alias("detected_at"),
        F.lit(pipeline_version).alias("pipeline_version"),
    ]
    return _Selection(columns, F.col(ERROR).isNotNull() | F.col(LATE))


def archive_rows(events: DataFrame, event: EventFormat, batch_id: int) -> DataFrame:
    """Every record read, under the spec's own field names, with its partition columns: the
    log beyond the broker's retention, from which a later version can account for each one.

    On-time and late events (LATE) alike; a malformed record with its payload and ERROR, its
    event fields null and so its event_date and event_hour (Spark writes them as
    __HIVE_DEFAULT_PARTITION__ and reads them back as null).
    """
    return _archive_rows(event).apply(events, _batch_id_column(batch_id))


def _archive_rows(event: EventFormat) -> _Selection:
    """Without the batch id, a different constant each batch (_batch_id_column)."""
    valid = F.col(ERROR).isNull()
    columns = [
        F.when(valid, F.col(EVENT_ID)).alias(event.id_field),
        F.col(EVENT_KEY).alias(event.key_field),
        F.col(EVENT_TIME).alias(event.time_field),
        *(F.col(VALUES)[n].alias(n) for n in event.value_fields),
        F.col(PAYLOAD),
        F.col(ARRIVAL_TIME),
        F.col(RECORD_ID),
        F.col(ERROR),
        F.col(LATE),
        F.date_format(EVENT_TIME, "yyyy-MM-dd").alias(EVENT_DATE),
        F.hour(EVENT_TIME).alias(EVENT_HOUR),
    ]
    return _Selection(columns)


def _batch_id_column(batch_id: int) -> Column:
    return F.lit(batch_id).cast("long").alias(BATCH_ID)


def unique_archive_columns(event: EventFormat) -> tuple[str, ...]:
    """The archive's columns that differ from record to record (archive_rows)."""
    return (event.id_field, event.time_field, PAYLOAD, ARRIVAL_TIME, RECORD_ID)


# Columns of a batch summary (batch_summary) beside the aggregate's: how many of the batch's
# records a summary row stands for. A value field's stat columns end in _count, _sum, _min or
# _max, so they never take these names.
SUMMARY_RECORDS = "records"
SUMMARY_LATE = "late_events"
SUMMARY_MALFORMED = "malformed_events"


def window_start(time: Column, window_seconds: int) -> Column:
    """The start of the tumbling window (aligned to the epoch, as Spark's window()) that holds
    `time`; null for a null time. Spark's window() would instead drop the rows whose time is
    null from a grouping, and batch_summary groups those too."""
    micros = F.unix_micros(time)
    return F.timestamp_micros(micros - F.pmod(micros, F.lit(window_seconds * 1_000_000)))


def batch_summary(events: DataFrame, event: EventFormat, windowing: Windowing) -> DataFrame:
    """A batch's aggregates and its counts, in one grouping over every record of it.

    One row per key and tumbling event-time window of the on-time valid events, with
    aggregate()'s columns; plus, when the batch has any, one row whose key and window start
    are null for all its late and malformed records. Every row also counts the records it
    stands for: SUMMARY_RECORDS, of which SUMMARY_LATE late and SUMMARY_MALFORMED malformed.
    So the batch's counts are the columns' sums, and the per-batch count needs no pass of
    its own over the batch (pipeline.BatchWriter)."""
    return _SummaryColumns.of(event, windowing).apply(events)


@dataclass(frozen=True)
class _SummaryColumns:
    grouping: list[Column]
    aggregations: list[Column]
    output: list[Column]

    @classmethod
    def of(cls, event: EventFormat, windowing: Windowing) -> _SummaryColumns:
        on_time = F.col(ERROR).isNull() & ~F.col(LATE)
        stats = []
        for name in event.value_fields:
            value = F.when(on_time, F.col(VALUES)[name])
            count, total, low, high = stat_columns(name)
            stats += [
                F.count(value).alias(count),
                F.sum(value).alias(total),
                F.min(value).alias(low),
                F.max(value).alias(high),
            ]
        return cls(
            grouping=[
                F.when(on_time, F.col(EVENT_KEY)).alias(SERVING_KEY_ATTRIBUTE),
                F.when(on_time, window_start(F.col(EVENT_TIME), windowing.window_seconds)).alias(
                    "_window_start"
                ),
            ],
            aggregations=[
                *stats,
                F.count(F.lit(1)).alias(SUMMARY_RECORDS),
                F.count_if(F.col(LATE)).alias(SUMMARY_LATE),
                F.count_if(F.col(ERROR).isNotNull()).alias(SUMMARY_MALFORMED),
            ],
            output=[
                F.col(SERVING_KEY_ATTRIBUTE),
                F.date_format("_window_start", _ISO_UTC).alias(SERVING_WINDOW_ATTRIBUTE),
                *(F.col(c) for name in event.value_fields for c in stat_columns(name)),
                F.col(SUMMARY_RECORDS),
                F.col(SUMMARY_LATE),
                F.col(SUMMARY_MALFORMED),
            ],
        )

    def apply(self, events: DataFrame) -> DataFrame:
        return events.groupBy(*self.grouping).agg(*self.aggregations).select(*self.output)


def summary_aggregates(summary: DataFrame, event: EventFormat) -> DataFrame:
    """The aggregate rows of a batch_summary (see aggregate)."""
    return _aggregate_rows(event).apply(summary)


def _aggregate_rows(event: EventFormat) -> _Selection:
    columns = [
        F.col(SERVING_KEY_ATTRIBUTE),
        F.col(SERVING_WINDOW_ATTRIBUTE),
        *(F.col(c) for name in event.value_fields for c in stat_columns(name)),
    ]
    return _Selection(columns, F.col(SERVING_KEY_ATTRIBUTE).isNotNull())


class BatchFrames:
    """What the job derives from each micro-batch (batch_summary, summary_aggregates,
    archive_rows, dead_letters), their columns built once for the query instead of once per
    batch.

    Each Column that PySpark builds is a call into the driver's JVM (py4j), and building a
    batch's frames took about 660 of them. While the executors' tasks keep the cores busy,
    each call waits its turn: a few hundred milliseconds of every batch on the 2-core
    benchmark machine (benchmarks/job_throughput.py, calls counted at py4j's socket). A
    built Column is a plain expression, valid for any frame with the columns it names, so
    the same ones serve every batch. Needs an active SparkContext, as any Column does."""

    def __init__(self, event: EventFormat, windowing: Windowing, pipeline_version: str) -> None:
        self._summary = _SummaryColumns.of(event, windowing)
        self._aggregates = _aggregate_rows(event)
        self._archive = _archive_rows(event)
        self._dead_letters = _dead_letter_rows(pipeline_version)

    def summary(self, batch: DataFrame) -> DataFrame:
        return self._summary.apply(batch)

    def aggregates(self, summary: DataFrame) -> DataFrame:
        return self._aggregates.apply(summary)

    def archive(self, batch: DataFrame, batch_id: int) -> DataFrame:
        return self._archive.apply(batch, _batch_id_column(batch_id))

    def dead_letters(self, batch: DataFrame) -> DataFrame:
        return self._dead_letters.apply(batch)


def aggregate(events: DataFrame, event: EventFormat, windowing: Windowing) -> DataFrame:
    """Per key and tumbling event-time window: count, sum, min and max of each value field,
    over the valid events that are on time.

    Output: key, window_start (ISO-8601 UTC text, e.g. 2026-11-25T10:05:00Z) and the
    stat_columns() of every value field. Times are rendered in the session time zone, which
    the job pins to UTC.
    """
    return summary_aggregates(batch_summary(events, event, windowing), event)
