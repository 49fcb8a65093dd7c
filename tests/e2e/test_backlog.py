"""Catching up on a backlog: every event is published before the job starts, and the job
reads it in many small batches, in the order the broker hands it out, and is killed once
(SIGKILL) in the middle and started again.

The backlog spans more than six watermarks of event time, sent at its own rate, so that each
on-time event reached the broker within the watermark of its event time: on time by the
job's arrival rule. Pub/Sub's fake hands a backlog out in no particular order; on Kinesis, 90%
of the keys go to one shard and the rest to the other, so the two shards' batches span very
different event times. A watermark on event time (the job before) moved with the batch that
reached furthest ahead and dropped on-time events of the next batches unseen, and dropped
late events without a trace: here the serving store would miss events (and Spark would report
rows dropped by its watermark), and the late events would be neither dead-lettered nor
archived. Now no event is lost: every late event is a dead letter with reason "late" and
nothing else is, every record is archived, Spark dropped nothing, and the serving store
equals the truth exactly.

The job drops a repeat read within its deduplication horizon (in its own reading time) of
the first copy. Pub/Sub's fake hands the backlog out in random order, so a producer's retry
may be read at the other end of the backlog, after the kill's restart: the run keeps ids for
DEDUPLICATION_SECONDS, longer than reading the whole backlog takes, as a stack catching up on
Pub/Sub must (pipelineDeduplicationSeconds). With the horizon at the watermark, 8 of 24
repeats were counted twice on Pub/Sub."""

from __future__ import annotations

from collections import Counter

import pytest
from kappa_local.local import RunReport, expected_view, serving_view
from kappa_local.synthetic import Kind, Mix

from .conftest import RunLocal

pytestmark = pytest.mark.e2e

WATERMARK_SECONDS = 5
# Longer than the job takes to read the backlog, its restart included (1-2 minutes here).
DEDUPLICATION_SECONDS = 600
WINDOW_SECONDS = 10
# 480 events at 15/s: 32 s of event time, over six watermarks.
MIX = Mix(events=480, keys=10, malformed=0.05, duplicates=0.05, late=0.03, seed=21, rate=15)
# Records per batch: per shard on Kinesis, per pull on Pub/Sub; a backlog of about 8 batches.
BATCH_LIMIT = 60
HOT_SHARE = 0.9


@pytest.fixture(scope="module", params=["aws", "gcp"])
def backlog(request: pytest.FixtureRequest, run_local: RunLocal) -> RunReport:
    flavour = request.param
    return run_local(
        f"backlog-{flavour}",
        flavour=flavour,
        mix=MIX,
        window_seconds=WINDOW_SECONDS,
        watermark_seconds=WATERMARK_SECONDS,
        deduplication_seconds=DEDUPLICATION_SECONDS,
        backlog=True,
        batch_limit=BATCH_LIMIT,
        skew=HOT_SHARE if flavour == "aws" else None,
        kill_at=(0.4,),
    )


def test_the_backlog_is_published_first_and_read_in_many_batches_with_a_kill(
    backlog: RunReport,
) -> None:
    on_time = [m.event_time_ms for m in backlog.sent if m.kind is Kind.VALID]
    assert (max(on_time) - min(on_time)) / 1000 >= 6 * WATERMARK_SECONDS
    assert backlog.last_event_at < backlog.job_started_at
    read = {b: p.input_rows for b, p in backlog.metrics.batches.items() if p.input_rows}
    limit = BATCH_LIMIT * max(1, len(backlog.shard_records))
    assert len(read) >= 6, read
    assert max(read.values()) <= limit, read
    # Killed once in the middle of catching up, in a batch that read events.
    assert (backlog.job_kills, backlog.job_starts) == (1, 2)
    assert 0 < backlog.read_at_kills[0] < MIX.events
    assert backlog.metrics.batches[backlog.killed_batches[0]].input_rows > 0
    if backlog.flavour == "aws":
        hot = max(backlog.shard_records.values())
        assert hot / sum(backlog.shard_records.values()) >= 0.85, backlog.shard_records


def test_no_event_is_lost_every_late_one_is_kept_and_spark_dropped_none(
    backlog: RunReport,
) -> None:
    """What the job before failed: on-time events dropped unseen by a watermark that a batch
    reaching far ahead in event time had moved, and late events dropped without a trace."""
    truth = backlog.truth
    assert set(backlog.archived_ids) == truth.archived_ids  # every valid event, once or more
    assert backlog.metrics.batches
    assert backlog.metrics.dropped_by_watermark == 0
    # Every late event is a dead letter with reason "late", and nothing else is.
    assert truth.late == 14
    late = [d for d in backlog.dead_letters if d["reason"] == "late"]
    assert Counter(d["payload"] for d in late) == Counter(m.payload for m in truth.late_events)
    others = [d for d in backlog.dead_letters if d["reason"] != "late"]
    assert Counter(d["payload"] for d in others) == Counter(m.payload for m in truth.malformed)
    assert len({d["record_id"] for d in backlog.dead_letters}) == len(backlog.dead_letters)
    # Archived once each and marked late, and never aggregated: the serving store holds the
    # truth's on-time events, every one, and no repeat counted twice.
    assert {row["event_id"] for row in backlog.archive if row["late"]} == truth.late_ids
    assert Counter(row["payload"] for row in backlog.archived_malformed) == Counter(
        m.payload for m in truth.malformed
    )
    assert {i for i, n in Counter(backlog.archived_ids).items() if n > 1} == set()
    assert serving_view(backlog.serving, truth.value_fields) == expected_view(truth)


def test_the_outputs_equal_the_truth_exactly(backlog: RunReport) -> None:
    assert backlog.problems == []
    truth = backlog.truth
    assert serving_view(backlog.serving, truth.value_fields) == expected_view(truth)
    assert Counter(backlog.archived_ids) == Counter(truth.archived_ids)
    assert sum(int(row["value_count"]) for row in backlog.serving) == truth.valid
