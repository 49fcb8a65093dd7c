"""What the deduplication keeps in its state store, read from the query's progress
(numRowsTotal of the state operator) and from the state itself (Spark's state reader).

A malformed row has no event time; deduplication keeps its id only until the end of its
batch once a valid event has set a watermark (events.deduplicate)."""

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
_SPACING_MILLIS = 100  # 100 records a batch: ten seconds of event time per batch
_WATERMARK = Windowing(window_seconds=60, watermark_seconds=30, trigger_seconds=1)


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
    """The job's parse and deduplication over the batches into the no-op sink: the progress
    of every batch that ran the state operator."""
    parsed = events.parse_events(listed_stream(spark, batches), EVENT_FORMAT)
    query = (
        events.deduplicate(parsed, _WATERMARK)
        .writeStream.format("noop")
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
    count, size, malformed_every = 30, 100, 5
    progress = _run(spark, _batches(count, size, malformed_every), tmp_path)
    # Every record came through as new, the malformed ones too, though half of them share
    # one body and the rest are all empty.
    assert sum(p.stateOperators[0].numRowsUpdated for p in progress) == count * size
    held = [p.stateOperators[0].numRowsTotal for p in progress]
    assert len(held) >= count
    # Spark keeps a valid id until the watermark (the latest event time less 30 s) passes
    # its event time plus 30 s: about 60 s of event time, i.e. six batches of 80 valid ids,
    # and the batch that just came in. No malformed id outlives its batch.
    valid_per_batch = size - size // malformed_every
    bound = (2 * _WATERMARK.watermark_seconds // 10 + 1) * valid_per_batch
    assert max(held) <= bound, held
    # Flat over the second half of the run: the state does not grow with the records read.
    assert len(set(held[count // 2 : count])) == 1, held
    keys = _state_keys(spark, tmp_path)
    assert keys
    assert not [k for k in keys if k.startswith(events.MALFORMED_ID_PREFIX)]


def test_before_any_valid_event_malformed_ids_stay_until_one_sets_the_watermark(
    spark: Any, tmp_path: Path
) -> None:
    """The one case that holds malformed ids across batches: a new query whose first
    records are all malformed has no watermark yet, so nothing expires."""
    malformed_only = [[("{broken", _START_MILLIS, f"b{b}:{n}") for n in range(5)] for b in range(3)]
    first_valid = [(_valid(1_000), _START_MILLIS, "v")]
    progress = _run(spark, [*malformed_only, first_valid], tmp_path)
    held = [p.stateOperators[0].numRowsTotal for p in progress]
    assert held[:4] == [5, 10, 15, 16]
    # The batch after the first valid one (Spark runs one when the watermark moves) expires
    # every malformed id.
    assert held[-1] == 1
    assert _state_keys(spark, tmp_path) == ["e1000"]
