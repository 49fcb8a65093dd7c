"""The Kappa replay: v1 runs live; once a tenth of the events is sent, v2 (a new pipeline
version: its own checkpoint, outputs and serving table) starts beside it at `earliest` and
reads the stream from its start while v1 goes on and events keep coming. Both end exact, and
v2's serving table equals v1's.

On gcp, v2 reads its own subscription, made before the first event was published and so
holding the whole log: Google's fake cannot seek a subscription back over messages it holds
(what a new version's subscription does in the cloud, PubSubSource.replay_window_seconds), see
GcpFlavour.provision_version."""

from __future__ import annotations

from collections import Counter

import pytest
from kappa_local.local import RunReport, expected_view, serving_view
from kappa_local.synthetic import Mix

from .conftest import RunLocal

pytestmark = pytest.mark.e2e

# 36 s of events: v2 starts after the first 54, catches up and then reads live beside v1.
MIX = Mix(events=540, keys=8, malformed=0.05, duplicates=0.05, late=0.02, seed=31, rate=15)


@pytest.fixture(scope="module", params=["aws", "gcp"])
def replayed(request: pytest.FixtureRequest, run_local: RunLocal) -> RunReport:
    flavour = request.param
    return run_local(f"replay-{flavour}", flavour=flavour, mix=MIX, replay_at=0.1)


def test_v2_starts_beside_v1_while_events_still_come(replayed: RunReport) -> None:
    assert replayed.replay is not None
    assert replayed.replay.version == "v2"
    assert 0 < replayed.replay_started_after < MIX.events // 2
    # v1 ran on throughout: one start, no kill, and both stopped by their stop markers.
    assert (replayed.job_starts, replayed.job_kills) == (1, 0)
    assert replayed.job_exit_code == replayed.replay.job_exit_code == 0


def test_both_versions_equal_the_truth_and_each_other(replayed: RunReport) -> None:
    assert replayed.problems == []
    assert replayed.replay is not None
    assert replayed.replay.problems == []
    truth = replayed.truth
    v1 = serving_view(replayed.serving, truth.value_fields)
    v2 = serving_view(replayed.replay.serving, truth.value_fields)
    assert v2 == v1 == expected_view(truth)


def test_v2_replays_every_record_the_way_v1_read_it(replayed: RunReport) -> None:
    """The same dead letters (late events by their own times, whenever read) and the same
    archive, also of the events sent before v2 started."""
    v2 = replayed.replay
    assert v2 is not None

    def letters(letters: list[dict[str, object]]) -> Counter[tuple[object, object]]:
        return Counter((d["payload"], d["reason"]) for d in letters)

    assert letters(v2.dead_letters) == letters(replayed.dead_letters)
    assert {d["pipeline_version"] for d in v2.dead_letters} == {"v2"}
    assert Counter(v2.archived_ids) == Counter(replayed.archived_ids)
    before = {m.event_id for m in replayed.sent[: replayed.replay_started_after] if m.event_id}
    assert before <= set(v2.archived_ids)
    assert v2.metrics.dropped_by_watermark == replayed.metrics.dropped_by_watermark == 0
