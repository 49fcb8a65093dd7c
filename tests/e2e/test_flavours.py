"""Each flavour end to end with 10% malformed events (plus duplicates and late events): the
serving store equals the truth computed in plain Python, exactly; every malformed record is in
the dead letters once with its reason, also records that carry the same body; every late event
is kept, dead-lettered with reason "late" and archived but not aggregated; every record read
is archived once; and nothing the run started is left running."""

from __future__ import annotations

from collections import Counter

import pytest
from kappa_local.local import RunReport, expected_view, serving_view
from kappa_local.stand_ins import require_free_port
from kappa_local.synthetic import MALFORMED_KINDS, Mix

from .conftest import RunLocal

pytestmark = pytest.mark.e2e

MIX = Mix(events=600, keys=8, malformed=0.10, duplicates=0.05, late=0.02, seed=7, rate=100)

# What the job answers for each kind of malformed payload the producer makes.
REASONS = {
    "truncated_json": "invalid JSON",
    "not_an_object": "invalid JSON: not a JSON object",
    "missing_value": "missing field(s): value",
    "bad_time": "invalid field(s): event_time",
    "bad_value": "invalid field(s): value",
    "repeated_body": "invalid JSON",
}


@pytest.fixture(scope="module", params=["aws", "gcp", "postgres"])
def report(request: pytest.FixtureRequest, run_local: RunLocal) -> RunReport:
    return run_local(request.param, flavour=request.param, mix=MIX)


def test_serving_totals_equal_the_truth_exactly(report: RunReport) -> None:
    assert report.problems == []
    truth = report.truth
    assert serving_view(report.serving, truth.value_fields) == expected_view(truth)
    assert sum(int(row["value_count"]) for row in report.serving) == truth.valid == 498
    assert report.job_exit_code == 0


def test_every_malformed_record_is_dead_lettered_once_with_its_reason(report: RunReport) -> None:
    malformed = report.truth.malformed
    assert len(malformed) == 60  # 10% of 600
    kinds = {m.payload: m.malformed_kind for m in malformed}
    assert set(kinds.values()) == set(MALFORMED_KINDS)
    # Some records carry the same body: still one dead letter per record.
    assert len(kinds) < len(malformed)
    letters = [d for d in report.dead_letters if d["reason"] != "late"]
    assert len(letters) == len(malformed)
    assert len({d["record_id"] for d in letters}) == len(malformed)
    assert Counter(d["payload"] for d in letters) == Counter(m.payload for m in malformed)
    for letter in letters:
        assert letter["reason"] == REASONS[kinds[letter["payload"]]], letter
        assert letter["pipeline_version"] == "v1"


def test_every_record_read_is_archived_once(report: RunReport) -> None:
    archived = Counter(report.archived_ids)
    assert set(archived) == report.truth.archived_ids  # on time and late
    assert set(archived.values()) == {1}
    malformed = report.archived_malformed
    assert Counter(row["payload"] for row in malformed) == Counter(
        m.payload for m in report.truth.malformed
    )
    assert all(row["error"] and row["record_id"] for row in malformed)
    assert len(report.archive) == report.truth.sent - report.truth.duplicates


def test_the_job_drops_the_duplicates_and_keeps_the_late_events(report: RunReport) -> None:
    truth = report.truth
    assert (truth.duplicates, truth.late) == (30, 12)
    assert report.metrics.duplicates_dropped == 30
    # Late: dead-lettered once each with reason "late", archived and marked late, and not
    # aggregated (the serving store holds the on-time events only: see the first test).
    late_letters = [d for d in report.dead_letters if d["reason"] == "late"]
    assert Counter(d["payload"] for d in late_letters) == Counter(
        m.payload for m in truth.late_events
    )
    assert len({d["record_id"] for d in late_letters}) == 12
    marked_late = {row["event_id"] for row in report.archive if row["late"]}
    assert marked_late == truth.late_ids
    assert report.metrics.late_written == 12  # the job's own count, logged per batch
    # Spark's deduplication dropped nothing as older than its watermark.
    assert report.metrics.batches
    assert report.metrics.dropped_by_watermark == 0


def test_everything_the_run_started_is_shut_down(report: RunReport) -> None:
    # Ports free again: moto, the Google fakes, and Debian's PostgreSQL when the run started
    # it (one already running is left so). The job exited by itself on its stop marker.
    for port in report.ports_used:
        require_free_port(port, "--any")
    assert report.job_exit_code == 0
