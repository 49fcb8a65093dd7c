"""What the deduplication keeps in its state store, read from the query's progress
(numRowsTotal of the state operator) and from the state itself (Spark's state reader).

The deduplication's watermark follows the micro-batches' own times (events.deduplicate), so
every id, valid or malformed, leaves the state about two watermarks after it was read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from kappa import events
from kappa.spec import Windowing

from tests.jobs.listed import Row, listed_stream
from tests.jobs.support import EVENT_FORMAT

pytestmark = pytest.mark.spark

_START_MILLIS = 1_795_600_000_000
_SPACING_MILLIS = 100
# One batch a second (the trigger) and ids kept for about two seconds of it: the
# deduplication horizon, not the (lateness) watermark, which would keep them all run long.
_TRIGGER = "1 second"
_WATERMARK = Windowing(
    window_seconds=60, watermark_seconds=600, deduplication_seconds=1, trigger_seconds=1
)
# An id read by batch k has expired by the end of batch k + 4 when batches start a second
# apart (the watermark of k + 4 is the time of k + 3 less 1 s, past k's time plus 1 s); a
# slower machine starts them further apart and holds fewer. So the state holds at most the
# ids of the last four batches.
_BATCHES_HELD = 4


def _valid(number: int) -> str:
    moment = _START_MILLIS + number * _SPACING_MILLIS
    document = {"event_id": f"e{number}", "key": "k", "event_time": moment, "value": 1}
    return json.dumps({**document, "weight": 1})


def _batches(count: int, size: int, malformed_every: int) -> list[list[Row]]:
    """Records numbered through the run; every malformed_every-th is malformed, half of
    those with one body repeated, the others empty records."""
    batches = []
    for batch in range(count):
        rows: list[Row] = []
        for n in range(batch * size, (batch + 1) * size):
            moment = _START_MILLIS + n * _SPACING_MILLIS
            payload = ("{broken" if n % 2 else "") if n % malformed_every == 0 else _valid(n)
            rows.append((payload, moment, f"shard:{n}"))
        batches.append(rows)
    return batches


def _run(spark: Any, batches: Sequence[Sequence[Row]], checkpoint: Path) -> list[Any]:
    """The job's parse and deduplication over the batches, one a trigger, into the no-op
    sink: the progress of every batch that ran the state operator."""
    parsed = events.parse_events(
        events.stamp_batch_time(listed_stream(spark, batches)), EVENT_FORMAT
    )
    query = (
        events.deduplicate(parsed, _WATERMARK)
        .writeStream.format("noop")
        .trigger(processingTime=_TRIGGER)
        .option("checkpointLocation", str(checkpoint))
        .start()
    )
    try:
        query.processAllAvailable()
    finally:
        query.stop()
    return [p for p in query.recentProgress if p.stateOperators]


def _state_keys(spark: Any, checkpoint: Path) -> list[str]:
    rows = spark.read.format("statestore").load(str(checkpoint)).collect()
    return [row["key"][0] for row in rows]


def test_state_stays_bounded_over_a_long_run_with_a_steady_share_of_malformed_records(
    spark: Any, tmp_path: Path
) -> None:
    count, size, malformed_every = 12, 50, 5
    progress = _run(spark, _batches(count, size, malformed_every), tmp_path)
    # Every record came through as new, the malformed ones too, though half of them share
    # one body and the rest are all empty.
    assert sum(p.stateOperators[0].numRowsUpdated for p in progress) == count * size
    held = [p.stateOperators[0].numRowsTotal for p in progress]
    assert len(held) >= count
    assert max(held) <= _BATCHES_HELD * size, held
    # Nothing Spark dropped: the watermark never passes a batch's own rows.
    assert sum(p.stateOperators[0].numRowsDroppedByWatermark for p in progress) == 0
    keys = set(_state_keys(spark, tmp_path))
    assert keys
    first_batches = {f"e{n}" for n in range(size * (count - _BATCHES_HELD))}
    first_batches |= {f"malformed:shard:{n}" for n in range(size * (count - _BATCHES_HELD))}
    assert not keys & first_batches


def test_a_run_of_malformed_records_alone_expires_as_any_other(spark: Any, tmp_path: Path) -> None:
    """On event time, malformed ids (no event time) stayed until a first valid event set
    the watermark; on the batches' own time they expire like the rest."""
    size = 20
    malformed_only = [
        [("{broken", _START_MILLIS, f"b{b}:{n}") for n in range(size)] for b in range(10)
    ]
    progress = _run(spark, malformed_only, tmp_path)
    held = [p.stateOperators[0].numRowsTotal for p in progress]
    assert max(held) <= _BATCHES_HELD * size, held
    keys = _state_keys(spark, tmp_path)
    assert keys
    assert all(k.startswith(events.MALFORMED_ID_PREFIX) for k in keys)
    assert not [k for k in keys if k.split(":")[1] in {"b0", "b1", "b2", "b3", "b4"}]
