"""The local run's final check of the dead letters: it counts records, not payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kappa_local.local import compare
from kappa_local.synthetic import REPEATED_BODY, Kind, Message, Mix, Truth, generate, truth_of

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _truth() -> Truth:
    """Six malformed records, three of which carry the same body."""
    messages = [m for m in generate(Mix(events=40, seed=5), START) if m.kind is Kind.VALID]
    bad = [Message(REPEATED_BODY, f"p{n}", Kind.MALFORMED) for n in range(3)]
    bad += [Message(f"{{broken {n}", f"q{n}", Kind.MALFORMED) for n in range(3)]
    return truth_of([*messages, *bad], window_seconds=60, value_fields=("value",))


def _letters(truth: Truth) -> list[dict[str, Any]]:
    return [
        {"payload": m.payload, "reason": "invalid JSON", "record_id": f"shardId-0:{n}"}
        for n, m in enumerate(truth.malformed)
    ]


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


def _problems(truth: Truth, letters: list[dict[str, Any]]) -> list[str]:
    return compare(truth, _serving(truth), letters, sorted(truth.archived_ids))


def test_one_dead_letter_per_malformed_record_passes() -> None:
    truth = _truth()
    assert _problems(truth, _letters(truth)) == []


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
