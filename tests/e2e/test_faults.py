"""Faults: the job killed outright mid-batch three times and started again (both flavours);
the job started on an empty stream, and a Kinesis shard split while events flow (aws)."""

from __future__ import annotations

from collections import Counter

import pytest
from kappa_local.local import RunReport, expected_view, serving_view
from kappa_local.synthetic import Mix

from .conftest import RunLocal

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["aws", "gcp"])
def killed(request: pytest.FixtureRequest, run_local: RunLocal) -> RunReport:
    # Kinesis re-reads after a restart; Pub/Sub replays the batches the reader stored and
    # redelivers what was pulled but not stored: both must come out exact.
    mix = Mix(events=800, keys=8, malformed=0.05, duplicates=0.05, late=0.02, seed=11, rate=40)
    flavour = request.param
    return run_local(f"killed-{flavour}", flavour=flavour, mix=mix, kill_at=(0.25, 0.5, 0.75))


@pytest.fixture(scope="module")
def split(run_local: RunLocal) -> RunReport:
    mix = Mix(events=600, keys=8, malformed=0.05, duplicates=0.05, late=0.02, seed=13, rate=40)
    return run_local("split", flavour="aws", mix=mix, split_at=0.5, idle_seconds=5.0)


def test_a_job_killed_three_times_mid_batch_loses_and_doubles_nothing(killed: RunReport) -> None:
    assert (killed.job_kills, killed.job_starts) == (3, 4)
    # Each kill aims at a batch in flight, carrying events (one that lands just after its
    # commit is possible but rare); each such batch was replayed by the next incarnation.
    assert killed.kills_mid_batch >= 2
    replayed = [killed.metrics.batches[b].input_rows for b in killed.killed_batches]
    assert sum(rows > 0 for rows in replayed) >= 2, replayed
    assert killed.problems == []
    truth = killed.truth
    assert serving_view(killed.serving, truth.value_fields) == expected_view(truth)
    assert sum(int(row["value_count"]) for row in killed.serving) == truth.valid
    assert Counter(killed.archived_ids) == Counter(truth.archived_ids)
    assert Counter(d["payload"] for d in killed.dead_letters) == Counter(
        m.payload for m in (*truth.malformed, *truth.late_events)
    )
    assert killed.metrics.dropped_by_watermark == 0


def test_a_job_started_before_the_stream_has_data_reads_what_comes(split: RunReport) -> None:
    assert split.first_event_at - split.query_started_at >= 5.0
    assert split.problems == []
    assert serving_view(split.serving, split.truth.value_fields) == expected_view(split.truth)


def test_a_shard_split_mid_stream_loses_and_doubles_nothing(split: RunReport) -> None:
    # The stream starts with two shards; shard 0 is split once half the events are sent, so
    # the other half of its keys only reach the job through the two new shards.
    assert split.split_shards == ["shardId-000000000000"]
    positions = split.source_offset["shards"]
    assert positions["shardId-000000000000"].startswith("done:"), "parent read to its end"
    children = [positions.get(f"shardId-00000000000{n}", "") for n in (2, 3)]
    assert all(p.startswith("after:") for p in children), f"both children read: {positions}"
    assert split.problems == []
    assert Counter(split.archived_ids) == Counter(split.truth.archived_ids)
    assert split.metrics.duplicates_dropped == split.truth.duplicates
