"""The local run's final check, record by record: the dead letters hold every malformed record
and every late event once (counted as records, not payloads), the archive every unique valid
event and every malformed record once, and Spark drops nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kappa_local.local import compare
from kappa_local.synthetic import REPEATED_BODY, Kind, Message, Mix, Truth, generate, truth_of

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _truth() -> Truth:
    """Six malformed records, three of which carry the same body, and four late events."""
    messages = generate(Mix(events=40, late=0.1, seed=5), START)
    kept = [m for m in messages if m.kind in (Kind.VALID, Kind.LATE)]
    bad = [Message(REPEATED_BODY, f"p{n}", Kind.MALFORMED) for n in range(3)]
    bad += [Message(f"{{broken {n}", f"q{n}", Kind.MALFORMED) for n in range(3)]
    return truth_of([*kept, *bad], window_seconds=60, value_fields=("value",))


def _letters(truth: Truth) -> list[dict[str, Any]]:
    malformed = [
        {"payload": m.payload, "reason": "invalid JSON", "record_id": f"shardId-0:{n}"}
        for n, m in enumerate(truth.malformed)
    ]
    late = [
        {"payload": m.payload, "reason": "late", "record_id": f"shardId-1:{n}"}
        for n, m in enumerate(truth.late_events)
    ]
    return malformed + late


def _archive(truth: Truth) -> list[dict[str, Any]]:
    valid = [
        {"event_id": i, "late": i in truth.late_ids, "error": None, "payload": "{}"}
        for i in sorted(truth.archived_ids)
    ]
    malformed = [
        {"event_id": None, "late": False, "error": "invalid JSON", "payload": m.payload}
        for m in truth.malformed
    ]
    return [{**row, "record_id": f"shardId-0:{n}"} for n, row in enumerate(valid + malformed, 100)]


def _serving(truth: Truth) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "window_start": window,
            **{
                f"value_{stat}": getattr(stats["value"], attribute)
                for stat, attribute in (
                    ("count", "count"),
                    ("sum", "total"),
                    ("min", "low"),
                    ("max", "high"),
                )
            },
        }
        for (key, window), stats in truth.aggregates.items()
    ]


def _problems(
    truth: Truth,
    letters: list[dict[str, Any]] | None = None,
    archive: list[dict[str, Any]] | None = None,
    dropped_by_watermark: int = 0,
) -> list[str]:
    return compare(
        truth,
        _serving(truth),
        _letters(truth) if letters is None else letters,
        _archive(truth) if archive is None else archive,
        dropped_by_watermark=dropped_by_watermark,
    )


def test_the_truth_keeps_late_events_apart_from_the_aggregates() -> None:
    truth = _truth()
    assert (truth.late, len(truth.malformed)) == (4, 6)
    assert truth.late_ids <= truth.archived_ids
    assert not truth.late_ids & truth.on_time_ids
    assert sum(s["value"].count for s in truth.aggregates.values()) == truth.valid


def test_outputs_that_hold_every_record_once_pass() -> None:
    assert _problems(_truth()) == []


def test_records_with_the_same_body_dead_lettered_once_in_all_fail() -> None:
    """What the job did when it told malformed records apart by their payload."""
    truth = _truth()
    letters = _letters(truth)
    collapsed = [d for d in letters if d["payload"] != REPEATED_BODY] + [
        next(d for d in letters if d["payload"] == REPEATED_BODY)
    ]
    assert _problems(truth, collapsed) == [
        f"dead letters: 2 malformed records missing: {REPEATED_BODY}"
    ]


def test_a_record_dead_lettered_twice_fails() -> None:
    truth = _truth()
    letters = _letters(truth)
    problems = _problems(truth, [*letters, letters[0]])
    assert problems == [
        "dead letters: 1 record(s) dead-lettered more than once: shardId-0:0",
        f"dead letters: 1 more than were sent malformed: {REPEATED_BODY}",
    ]


def test_a_dead_letter_without_the_records_identity_fails() -> None:
    truth = _truth()
    letters = _letters(truth)
    letters[-1] = {**letters[-1], "record_id": None}
    assert _problems(truth, letters) == [
        "dead letters: 1 without the record's identity (record_id)"
    ]


def test_late_events_dropped_instead_of_kept_fail_everywhere() -> None:
    """What the job did when its watermark dropped late events: in neither output."""
    truth = _truth()
    letters = [d for d in _letters(truth) if d["reason"] != "late"]
    archive = [row for row in _archive(truth) if not row["late"]]
    problems = _problems(truth, letters, archive, dropped_by_watermark=4)
    assert [p.split(":")[0] for p in problems] == [
        "dead letters",
        "archive",
        "Spark dropped 4 rows as older than the deduplication's watermark",
    ]
    assert problems[0].startswith("dead letters: 4 late events missing: ")
    assert problems[1].startswith("archive: 4 events missing: ")


def test_an_on_time_event_dead_lettered_as_late_fails() -> None:
    truth = _truth()
    on_time = sorted(truth.on_time_ids)[0]
    letters = [*_letters(truth), {"payload": "{on time}", "reason": "late", "record_id": "x:1"}]
    archive = [
        {**row, "late": True} if row["event_id"] == on_time else row for row in _archive(truth)
    ]
    problems = _problems(truth, letters, archive)
    assert len(problems) == 2
    assert problems[0].startswith("dead letters: 1 more than were sent late: {on time} ")
    assert problems[1] == f"archive: 1 events marked late that were sent on time: {on_time}"


def test_an_archive_without_the_malformed_records_or_with_a_doubled_event_fails() -> None:
    truth = _truth()
    archive = [row for row in _archive(truth) if row["event_id"] is not None]
    doubled = sorted(truth.on_time_ids)[0]
    archive.append(next(row for row in archive if row["event_id"] == doubled))
    assert _problems(truth, archive=archive) == [
        f"archive: 1 events archived more than once: {doubled}",
        f"archive: 6 malformed records missing: {REPEATED_BODY}, {{broken 0, {{broken 1 (+1 more)",
    ]
