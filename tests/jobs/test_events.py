"""Pure DataFrame functions on tiny batch frames: parsing, reasons, aggregation."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kappa import events
from kappa.spec import EventFormat
from pyspark.sql import functions as F

from tests.jobs.listed import listed_stream
from tests.jobs.support import (
    EVENT_FORMAT,
    ON_ARRIVAL,
    WINDOWING,
    generate,
    serving_view,
    truth,
)

pytestmark = pytest.mark.spark


def _raw(
    spark: Any, payloads: Sequence[str | None], record_ids: Sequence[str | None] | None = None
) -> Any:
    """Rows as a source yields them; record n is "r<n>" unless the ids are given."""
    ids = record_ids if record_ids is not None else [f"r{n}" for n in range(len(payloads))]
    return spark.createDataFrame(
        [(p, datetime(2026, 11, 25, tzinfo=UTC), i) for p, i in zip(payloads, ids, strict=True)],
        "payload string, arrival_time timestamp, record_id string",
    )


def _event(**overrides: Any) -> str:
    document = {
        "event_id": "id-1",
        "key": "k",
        "event_time": "2026-11-25T10:05:03Z",
        "value": 1.5,
        "weight": 2,
    }
    document.update(overrides)
    return json.dumps({k: v for k, v in document.items() if v is not ...})


# The micro-batch's time, which deduplication adds to every row (events.deduplicate).
_BATCH_TIME = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)


def _read_in_a_batch(parsed: Any) -> Any:
    return parsed.withColumn(events.PROCESSED_AT, F.lit(_BATCH_TIME))


def _flagged(spark: Any, payloads: Sequence[str | None], record_ids: Any = None) -> Any:
    """Parsed, read in a batch and judged for lateness, as the job hands rows to its writes."""
    parsed = events.parse_events(_raw(spark, payloads, record_ids), EVENT_FORMAT)
    return events.flag_late(_read_in_a_batch(parsed), WINDOWING)


def _reasons(spark: Any, payloads: list[str | None]) -> dict[str | None, str | None]:
    rows = events.parse_events(_raw(spark, payloads), EVENT_FORMAT).collect()
    return {row["payload"]: row["error"] for row in rows}


def test_valid_event_is_parsed_into_typed_columns(spark: Any) -> None:
    [row] = events.parse_events(_raw(spark, [_event()]), EVENT_FORMAT).collect()
    assert row["error"] is None
    assert (row["event_id"], row["event_key"]) == ("id-1", "k")
    assert row["event_time"].replace(tzinfo=None) == datetime(2026, 11, 25, 10, 5, 3)
    assert row["values"].asDict() == {"value": 1.5, "weight": 2.0}


def test_malformed_events_get_a_reason_naming_what_is_wrong(spark: Any) -> None:
    payloads = {
        "{not json": "invalid JSON",
        _event()[:40]: "invalid JSON",  # truncated
        "[1, 2]": "invalid JSON: not a JSON object",
        f"[{_event()}]": "invalid JSON: not a JSON object",
        "123": "invalid JSON: not a JSON object",
        "null": "invalid JSON: not a JSON object",
        "": "empty payload",
        _event(value=...): "missing field(s): value",
        _event(event_id="", key=...): "missing field(s): event_id, key",
        _event(value="abc"): "invalid field(s): value",
        _event(event_time="yesterday", weight="x"): "invalid field(s): event_time, weight",
        _event(value="NaN"): "invalid field(s): value",
        _event(value=None): "missing field(s): value",
    }
    reasons = _reasons(spark, list(payloads))
    assert reasons == payloads


def test_malformed_rows_have_null_event_time_and_their_record_identity_as_id(
    spark: Any,
) -> None:
    payloads = ["{bad", "{bad", "{worse"]
    rows = events.parse_events(_raw(spark, payloads, ["s:1", "s:2", "s:3"]), EVENT_FORMAT)
    assert all(row["event_time"] is None for row in rows.collect())
    # Two records with the same bytes are two records; each is known again by its identity.
    assert [row["event_id"] for row in rows.collect()] == [
        "malformed:s:1",
        "malformed:s:2",
        "malformed:s:3",
    ]


def test_a_malformed_row_without_a_record_identity_is_known_by_its_payload(spark: Any) -> None:
    [row] = events.parse_events(_raw(spark, ["{bad"], [None]), EVENT_FORMAT).collect()
    assert row["event_id"] == "malformed:sha256:" + hashlib.sha256(b"{bad").hexdigest()


def test_records_with_the_same_bad_payload_are_each_kept_and_a_redelivery_dropped(
    spark: Any, tmp_path: Path
) -> None:
    """Empty records and a producer repeating one broken body are distinct records; the same
    record read twice within a batch (same identity) is one. Deduplication only runs on a
    stream, so this one micro-batch comes from a listed source."""
    millis = 1_795_601_103_000
    batch = [
        ("", millis, "s:1"),
        ("", millis, "s:2"),
        ("{broken", millis, "s:3"),
        ("{broken", millis, "s:4"),
        ("{broken", millis, "s:3"),  # s:3 again: a redelivery
        (_event(), millis, "s:5"),
    ]
    parsed = events.parse_events(
        events.stamp_batch_time(listed_stream(spark, [batch])), EVENT_FORMAT
    )
    kept: list[Any] = []
    query = (
        events.deduplicate(parsed, WINDOWING)
        .writeStream.option("checkpointLocation", str(tmp_path))
        .foreachBatch(lambda frame, _: kept.extend(frame.where("error IS NOT NULL").collect()))
        .start()
    )
    try:
        query.processAllAvailable()
    finally:
        query.stop()
    assert sorted((row["record_id"], row["payload"]) for row in kept) == [
        ("s:1", ""),
        ("s:2", ""),
        ("s:3", "{broken"),
        ("s:4", "{broken"),
    ]


_NO_DATA_BATCHES = "spark.sql.streaming.noDataMicroBatches.enabled"


def test_the_batch_time_is_not_written_into_the_parses_generated_code(
    spark: Any, tmp_path: Path
) -> None:
    """Spark writes the batch time as a constant into the generated code of the projection
    that computes it, so that projection is compiled again every batch (stamp_batch_time).
    It must be the source's small one: the parse's large projection (the one that names a
    malformed record) must take the time as a column from below."""
    millis = 1_795_601_103_000
    stamped = events.stamp_batch_time(listed_stream(spark, [[(_event(), millis, "s:1")]]))
    # Without the batch that follows to move the watermark, the last plan is the one that read.
    spark.conf.set(_NO_DATA_BATCHES, "false")
    try:
        query = (
            events.deduplicate(events.parse_events(stamped, EVENT_FORMAT), WINDOWING)
            .writeStream.format("noop")
            .option("checkpointLocation", str(tmp_path))
            .start()
        )
        query.processAllAvailable()
        java_query: Any = query._jsq
        lines = java_query.explainInternal(False).splitlines()  # what query.explain() prints
        query.stop()
    finally:
        spark.conf.unset(_NO_DATA_BATCHES)
    [parse] = [line for line in lines if events.MALFORMED_ID_PREFIX in line]
    assert re.search(rf"\b{events.PROCESSED_AT}#\d+", parse)
    assert not re.search(rf"AS {events.PROCESSED_AT}#", parse)
    # One projection computes it: the one that parses the JSON, which is small.
    [stamp] = [line for line in lines if re.search(rf"AS {events.PROCESSED_AT}#", line)]
    assert "from_json" in stamp


def test_dead_letters_carry_the_record_identity_and_the_payloads_digest(spark: Any) -> None:
    parsed = _flagged(spark, ["{bad", _event(), "{bad"], ["s:1", "s:2", "s:3"])
    letters = events.dead_letters(parsed, "v1").collect()
    assert [(d["record_id"], d["payload"], d["reason"]) for d in letters] == [
        ("s:1", "{bad", "invalid JSON"),
        ("s:3", "{bad", "invalid JSON"),
    ]
    assert {d["payload_sha256"] for d in letters} == {hashlib.sha256(b"{bad").hexdigest()}
    # When the job read them: the batch's time, the same for every row of the batch.
    assert {d["detected_at"] for d in letters} == {
        row[events.PROCESSED_AT] for row in parsed.collect()
    }


_INSTANT = datetime(2026, 11, 25, 10, 5, 3, 250_000, tzinfo=UTC)
_INSTANT_MILLIS = 1_795_601_103_250


def _times(spark: Any, times: list[Any]) -> list[tuple[datetime | None, str | None]]:
    rows = events.parse_events(
        _raw(spark, [_event(event_time=t) for t in times]), EVENT_FORMAT
    ).collect()
    return [
        (row["event_time"] and row["event_time"].replace(tzinfo=UTC), row["error"]) for row in rows
    ]


def test_a_numeric_time_is_epoch_milliseconds_and_a_text_time_iso_8601(spark: Any) -> None:
    assert datetime.fromtimestamp(_INSTANT_MILLIS / 1000, tz=UTC) == _INSTANT  # the truth
    forms = [
        _INSTANT_MILLIS,
        str(_INSTANT_MILLIS),
        "2026-11-25T10:05:03.250Z",
        "2026-11-25T11:05:03.250+01:00",
        "2026-11-25 10:05:03.250",  # no zone: UTC
    ]
    assert _times(spark, forms) == [(_INSTANT, None)] * len(forms)


def test_times_that_are_neither_epoch_milliseconds_nor_iso_8601_are_dead_lettered(
    spark: Any,
) -> None:
    nonsense = [
        _INSTANT_MILLIS // 1000,  # epoch seconds
        _INSTANT_MILLIS * 1000,  # epoch microseconds
        _INSTANT_MILLIS * 1_000_000,  # epoch nanoseconds: beyond a long's milliseconds too
        -_INSTANT_MILLIS,
        _INSTANT_MILLIS + 0.5,
        1.7e12,
        True,
        {"at": _INSTANT_MILLIS},
        "2026",
        "2026-11-25T25:00:00Z",
        "yesterday",
    ]
    invalid = (None, "invalid field(s): event_time")
    assert _times(spark, nonsense) == [invalid] * len(nonsense)
    assert _times(spark, [None]) == [(None, "missing field(s): event_time")]


def test_the_quick_validity_test_agrees_with_the_reasons_on_every_kind_of_event(
    spark: Any,
) -> None:
    """parse_events works a reason out only for events that fail the quick test: the two
    must agree, or a malformed event would be kept or a valid one dead-lettered."""
    payloads = [
        None,
        "",
        "   ",
        "{bad",
        "[]",
        "{}",
        "null",
        _event(),
        _event(event_id=42, key=7),  # numbers are read as text
        _event(key="  k  "),
        _event(key="   "),
        _event(event_id=None),
        _event(extra={"nested": [1, 2]}),
        _event(value="Infinity"),
        _event(value=float("-inf")),
        _event(value=True),
        _event(weight=[1]),
        _event(event_time=_INSTANT_MILLIS),
        _event(event_time=str(_INSTANT_MILLIS // 1000)),
        _event(event_time="2026-11-25 10:05:03"),
        _event(event_time="2026-13-01T00:00:00Z"),
        _event(event_time=None, value=...),
        '{"event_id": "a", "event_id": "b", "key": "k", "event_time": 1764065103250, '
        '"value": 1, "weight": 1}',
    ]
    typed = F.from_json(
        F.col("payload"),
        events._typed_schema(EVENT_FORMAT),
        {"columnNameOfCorruptRecord": events._CORRUPT},
    )
    checked = (
        _raw(spark, payloads)
        .select("payload", typed.alias("typed"))
        .select(
            "payload",
            events._well_formed(F.col("typed"), EVENT_FORMAT).alias("quick"),
            events._reason(F.col("payload"), F.col("typed"), EVENT_FORMAT).alias("reason"),
        )
        .collect()
    )
    assert len(checked) == len(payloads)
    disagreements = [row for row in checked if row["quick"] != (row["reason"] is None)]
    assert disagreements == []
    assert {row["quick"] for row in checked} == {True, False}


def test_field_names_come_from_the_event_format(spark: Any) -> None:
    fmt = EventFormat(id_field="uuid", key_field="device", time_field="ts", value_fields=("t",))
    payload = json.dumps({"uuid": "u", "device": "d", "ts": "2026-11-25T00:00:00Z", "t": 3})
    [row] = events.parse_events(_raw(spark, [payload]), fmt).collect()
    assert (row["error"], row["event_id"], row["event_key"]) == (None, "u", "d")


def test_event_fields_that_clash_with_archive_columns_are_rejected() -> None:
    fmt = EventFormat(value_fields=("batch_id",))
    with pytest.raises(events.EventFormatError, match="batch_id"):
        events.check_event_format(fmt)


@pytest.mark.parametrize("epoch_millis", [False, True], ids=["iso-8601", "epoch-millis"])
def test_aggregates_match_a_truth_computed_in_plain_python(spark: Any, epoch_millis: bool) -> None:
    generated = generate(300, seed=7)
    payloads = [e.to_json(epoch_millis=epoch_millis) for e in generated]
    parsed = _flagged(spark, payloads)
    rows = [r.asDict() for r in events.aggregate(parsed, EVENT_FORMAT, WINDOWING).collect()]
    expected = truth(generated)
    actual = serving_view(rows)
    assert sorted(actual) == sorted(expected)
    for where, row in expected.items():
        assert actual[where] == pytest.approx(row)


def test_aggregation_ignores_malformed_rows(spark: Any) -> None:
    parsed = _flagged(spark, [_event(), "{bad"])
    rows = events.aggregate(parsed, EVENT_FORMAT, WINDOWING).collect()
    assert [(r["key"], r["window_start"], r["value_count"]) for r in rows] == [
        ("k", "2026-11-25T10:05:00Z", 1)
    ]


def test_a_batch_summary_holds_its_aggregates_and_counts_every_record(spark: Any) -> None:
    late_arrival = datetime(2026, 12, 1, tzinfo=UTC)
    frame = spark.createDataFrame(
        [
            (_event(), None, "s:1"),
            (_event(event_id="id-2", value=2.5), None, "s:2"),
            (_event(event_id="id-3", key="j"), None, "s:3"),
            (_event(event_id="id-4"), late_arrival, "s:4"),  # late
            ("{bad", None, "s:5"),
            ("", None, "s:6"),
        ],
        "payload string, arrival_time timestamp, record_id string",
    )
    judged = events.flag_late(
        _read_in_a_batch(events.parse_events(frame, EVENT_FORMAT)), ON_ARRIVAL
    )
    rows = {
        (r["key"], r["window_start"]): r.asDict()
        for r in events.batch_summary(judged, EVENT_FORMAT, ON_ARRIVAL).collect()
    }
    counted = (events.SUMMARY_RECORDS, events.SUMMARY_LATE, events.SUMMARY_MALFORMED)
    # The late event and both malformed records are counted in one row of their own, outside
    # every aggregate; the on-time events in their key's window, which the late one misses.
    assert {where: tuple(row[c] for c in counted) for where, row in rows.items()} == {
        ("k", "2026-11-25T10:05:00Z"): (2, 0, 0),
        ("j", "2026-11-25T10:05:00Z"): (1, 0, 0),
        (None, None): (3, 1, 2),
    }
    k = rows[("k", "2026-11-25T10:05:00Z")]
    assert (k["value_count"], k["value_sum"], k["value_min"], k["value_max"]) == (2, 4.0, 1.5, 2.5)
    assert rows[(None, None)]["value_count"] == 0
    # aggregate() is the summary's keyed rows, without the counts.
    assert sorted(
        (r["key"], r["value_count"])
        for r in events.aggregate(judged, EVENT_FORMAT, ON_ARRIVAL).collect()
    ) == [("j", 1), ("k", 2)]


def test_a_batch_with_only_on_time_events_has_no_uncounted_row(spark: Any) -> None:
    summary = events.batch_summary(_flagged(spark, [_event()]), EVENT_FORMAT, WINDOWING)
    assert [(r["key"], r[events.SUMMARY_RECORDS]) for r in summary.collect()] == [("k", 1)]


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25 10:05:03",
        "2026-11-25 10:05:00",  # on a window's start
        "2026-11-25 10:05:59.999999",
        "1969-12-31 23:59:30",  # before the epoch: the window still starts on a minute
        "1960-02-29 12:00:01.5",
    ],
)
def test_window_start_is_where_sparks_own_window_starts(spark: Any, text: str) -> None:
    # aggregate() computes the window itself, since Spark's window() drops rows without a
    # time from a grouping and batch_summary counts those too; it must not differ from it.
    frame = spark.createDataFrame([(text,)], "t string").select(F.to_timestamp("t").alias("t"))
    [row] = frame.select(
        events.window_start(F.col("t"), 60).alias("ours"),
        F.window("t", "60 seconds").start.alias("spark"),
    ).collect()
    assert row["ours"] == row["spark"]
    assert frame.select(events.window_start(F.lit(None).cast("timestamp"), 60)).first()[0] is None


def test_archive_rows_use_spec_field_names_and_partition_columns(spark: Any) -> None:
    parsed = _flagged(spark, [_event(), "{bad"], ["s:1", "s:2"])
    row, bad = events.archive_rows(parsed, EVENT_FORMAT, batch_id=4).collect()
    assert row["event_id"] == "id-1"
    assert (row["event_date"], row["event_hour"], row["batch_id"]) == ("2026-11-25", 10, 4)
    assert json.loads(row["payload"])["key"] == "k"
    assert (row["record_id"], row["error"], row["late"]) == ("s:1", None, False)
    # A malformed record is archived too: its payload, identity and reason, no event fields.
    assert (bad["payload"], bad["record_id"], bad["error"]) == ("{bad", "s:2", "invalid JSON")
    assert (bad["event_id"], bad["event_date"], bad["event_hour"]) == (None, None, None)
    assert (bad["late"], bad["batch_id"]) == (False, 4)


def test_one_batch_frames_serves_every_batch_with_the_functions_rows(spark: Any) -> None:
    # The job builds the columns once (events.BatchFrames) and applies them to every batch;
    # each batch must get what the functions give it, whatever the batch before it held.
    frames = events.BatchFrames(EVENT_FORMAT, WINDOWING, "v1")
    batches = [
        _flagged(spark, [_event(), _event(event_id="id-2", key="j"), "{bad"]),
        _flagged(spark, [_event(event_id="id-3", value=9.0), ""], ["s:7", "s:8"]),
    ]

    def rows(frame: Any) -> list[Any]:
        return sorted(frame.collect(), key=repr)

    for batch_id, batch in enumerate(batches):
        summary = events.batch_summary(batch, EVENT_FORMAT, WINDOWING)
        assert rows(frames.summary(batch)) == rows(summary)
        assert rows(frames.aggregates(frames.summary(batch))) == rows(
            events.summary_aggregates(summary, EVENT_FORMAT)
        )
        assert rows(frames.archive(batch, batch_id)) == rows(
            events.archive_rows(batch, EVENT_FORMAT, batch_id)
        )
        assert rows(frames.dead_letters(batch)) == rows(events.dead_letters(batch, "v1"))
    assert [r["batch_id"] for r in frames.archive(batches[1], 1).collect()] == [1, 1]
    assert [r["payload"] for r in frames.dead_letters(batches[1]).collect()] == [""]


_ON_TIME_UNTIL = datetime(2026, 11, 25, 10, 15, 3, tzinfo=UTC)  # _event()'s time + 600 s


@pytest.mark.parametrize(
    ("arrival", "late"),
    [
        (_ON_TIME_UNTIL, False),  # exactly the watermark after its event time
        (_ON_TIME_UNTIL + timedelta(milliseconds=1), True),
        (datetime(2026, 11, 25, 10, 0, tzinfo=UTC), False),  # before its event time
        (datetime(2026, 12, 25, tzinfo=UTC), True),
    ],
)
def test_an_event_is_late_when_it_reached_the_source_a_watermark_after_its_time(
    spark: Any, arrival: datetime, late: bool
) -> None:
    frame = spark.createDataFrame(
        [(_event(), arrival, "s:1"), ("{bad", arrival, "s:2")],
        "payload string, arrival_time timestamp, record_id string",
    )
    parsed = events.parse_events(frame, EVENT_FORMAT)
    judged = events.flag_late(parsed, ON_ARRIVAL).collect()
    assert [(row["record_id"], row["late"]) for row in judged] == [("s:1", late), ("s:2", False)]
    # Lateness "none" (a backfill) marks nothing late.
    assert {row["late"] for row in events.flag_late(parsed, WINDOWING).collect()} == {False}


def test_late_events_are_dead_lettered_with_their_payload_and_not_aggregated(spark: Any) -> None:
    frame = spark.createDataFrame(
        [(_event(), datetime(2026, 12, 1, tzinfo=UTC), "s:1"), ("{bad", None, "s:2")],
        "payload string, arrival_time timestamp, record_id string",
    )
    judged = events.flag_late(
        _read_in_a_batch(events.parse_events(frame, EVENT_FORMAT)), ON_ARRIVAL
    )
    letters = events.dead_letters(judged, "v1").collect()
    assert [(d["record_id"], d["reason"], d["payload"]) for d in letters] == [
        ("s:1", "late", _event()),
        ("s:2", "invalid JSON", "{bad"),
    ]
    assert events.aggregate(judged, EVENT_FORMAT, ON_ARRIVAL).collect() == []
