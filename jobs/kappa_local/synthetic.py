"""Synthetic events, and the truth about them computed in plain Python (no Spark).

Deterministic: the same mix, seed and start time give the same messages in the same order.
The truth is what the job must produce once it has read every message: in the serving
store, per key and event-time window, count, sum, min and max of each value field over the
valid, unique, on-time events; in the dead letters, every malformed record and every late
event; in the archive, every unique valid event and every malformed record. Values are
whole numbers, so every sum is exact whatever order Spark adds them in, and the final check
can compare without a tolerance.

Lateness is the job's arrival rule: an event is late when it reaches the broker more than the
watermark after its event time. A message reaches the broker when it is sent, so on-time
events carry times that follow `start` at the mix's rate (sent on that schedule, each
arrives within the jitter of its time), and late ones lie further back than the watermark
before `start`: late whenever they are sent after it.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from kappa.spec import EventFormat


class Kind(StrEnum):
    VALID = "valid"  # the first delivery of a unique, on-time event
    DUPLICATE = "duplicate"  # the same event again, as a producer retry would send it
    MALFORMED = "malformed"  # not an event the job can parse: it goes to the dead letters
    # Sent more than the watermark after its event time: the job dead-letters it with reason
    # "late" and archives it, but does not aggregate it.
    LATE = "late"


# Each kind of malformed payload, so that the dead letters show every reason the job gives.
# All but "repeated_body" carry their event id, so each is unique; "repeated_body" is one
# broken body sent again and again, as a faulty producer does: each record is a dead letter.
MALFORMED_KINDS = (
    "truncated_json",
    "not_an_object",
    "missing_value",
    "bad_time",
    "bad_value",
    "repeated_body",
)
REPEATED_BODY = '{"broken": '

# On-time events arrive up to 2 s out of order, as events from many producers do: each
# reaches the broker up to that much after its event time (a watermark must be longer).
JITTER_MS = 2_000
# A late event is this much older than `start`, beyond the watermark, so it is late by a wide
# margin whenever it is sent.
_LATE_MARGIN_MS = (60_000, 600_000)
# A duplicate repeats one of the valid events sent in about the last second, as a producer's
# retry does; the job drops a repeat read within its watermark of the first copy. At most
# this many messages back (and so many when the rate is unlimited).
_DUPLICATE_SECONDS = 1.0
_DUPLICATE_HORIZON = 200
_VALUE_RANGE = (0, 1_000)


@dataclass(frozen=True)
class Mix:
    """What to send: `events` messages in all, of which the given shares are malformed,
    duplicates and late; the rest are unique on-time events spread over `keys` keys."""

    events: int
    keys: int = 10
    malformed: float = 0.0
    duplicates: float = 0.0
    late: float = 0.0
    seed: int = 42
    # Events per second; event times advance at this pace (0: as fast as possible, 1 ms apart).
    rate: float = 100.0

    def __post_init__(self) -> None:
        problems = []
        if self.events < 1:
            problems.append(f"events must be at least 1 (got {self.events})")
        if self.keys < 1:
            problems.append(f"keys must be at least 1 (got {self.keys})")
        if self.rate < 0:
            problems.append(f"rate must be 0 (unlimited) or more (got {self.rate})")
        for name in ("malformed", "duplicates", "late"):
            share = getattr(self, name)
            if not 0.0 <= share < 1.0:
                problems.append(f"{name} is a share: 0 <= {name} < 1 (got {share})")
        if self.malformed + self.duplicates + self.late >= 1.0:
            problems.append("malformed + duplicates + late must leave room for valid events")
        if problems:
            raise ValueError("; ".join(problems))

    def counts(self) -> dict[Kind, int]:
        malformed = round(self.events * self.malformed)
        duplicates = round(self.events * self.duplicates)
        late = round(self.events * self.late)
        valid = self.events - malformed - duplicates - late
        if valid < 1:
            raise ValueError(f"{self.events} events leave no valid event with these shares")
        return {
            Kind.VALID: valid,
            Kind.DUPLICATE: duplicates,
            Kind.MALFORMED: malformed,
            Kind.LATE: late,
        }


@dataclass(frozen=True)
class Message:
    payload: str
    partition_key: str
    kind: Kind
    event_id: str = ""
    key: str = ""
    event_time_ms: int = 0
    values: tuple[int, ...] = ()
    malformed_kind: str = ""


def iso_millis(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


def window_start(epoch_ms: int, window_seconds: int) -> str:
    """The job's window start for an event time: ISO-8601 UTC, as events.aggregate writes it."""
    width = window_seconds * 1000
    start = datetime.fromtimestamp((epoch_ms - epoch_ms % width) // 1000, tz=UTC)
    return f"{start:%Y-%m-%dT%H:%M:%SZ}"


def _document(
    fmt: EventFormat, event_id: str, key: str, event_time_ms: int, values: tuple[int, ...]
) -> dict[str, Any]:
    document: dict[str, Any] = {
        fmt.id_field: event_id,
        fmt.key_field: key,
        fmt.time_field: iso_millis(event_time_ms),
    }
    document.update(zip(fmt.value_fields, values, strict=True))
    return document


def _malformed_payload(kind: str, document: dict[str, Any], fmt: EventFormat) -> str:
    """A payload the job must reject; each carries the event id, so each is unique, but for
    the repeated body."""
    if kind == "repeated_body":
        return REPEATED_BODY
    if kind == "truncated_json":
        text = json.dumps(document)
        return text[: len(text) // 2]
    if kind == "not_an_object":
        return json.dumps(list(document.values()))
    broken = dict(document)
    if kind == "missing_value":
        del broken[fmt.value_fields[0]]
    elif kind == "bad_time":
        broken[fmt.time_field] = "not-a-time"
    elif kind == "bad_value":
        broken[fmt.value_fields[0]] = "n/a"
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    return json.dumps(broken)


def _ordered_kinds(mix: Mix, rng: random.Random) -> list[Kind]:
    kinds = [kind for kind, count in mix.counts().items() for _ in range(count)]
    rng.shuffle(kinds)
    # A duplicate repeats an earlier valid event: none may come before the first valid one.
    first_valid = kinds.index(Kind.VALID)
    head = kinds[:first_valid]
    moved = [k for k in head if k is Kind.DUPLICATE]
    kept = [k for k in head if k is not Kind.DUPLICATE]
    return [*kept, Kind.VALID, *moved, *kinds[first_valid + 1 :]]


def generate(
    mix: Mix,
    start: datetime,
    *,
    event_format: EventFormat | None = None,
    watermark_seconds: int = 600,
) -> list[Message]:
    """The messages to send, in order. On-time event times follow `start` at the mix's rate,
    up to JITTER_MS early: sent from `start` at that rate, each reaches the broker within the
    jitter of its event time, and is on time for any watermark longer than that (plus what
    the producer falls behind its schedule). Late ones lie further back than the watermark
    before `start`, so they are late whenever they are sent."""
    fmt = event_format or EventFormat()
    rng = random.Random(mix.seed)  # noqa: S311 - reproducible test data, not a secret
    start_ms = int(start.timestamp() * 1000)
    spacing_ms = 1000.0 / mix.rate if mix.rate > 0 else 1.0
    horizon = _DUPLICATE_HORIZON
    if mix.rate > 0:
        horizon = max(1, min(horizon, round(mix.rate * _DUPLICATE_SECONDS)))
    # The valid events of the last `horizon` messages, with their positions (at least one).
    recent: deque[tuple[int, Message]] = deque()
    messages: list[Message] = []
    for position, kind in enumerate(_ordered_kinds(mix, rng)):
        event_id = f"e{mix.seed}-{position:07d}"
        key = f"k{rng.randrange(mix.keys):03d}"
        values = tuple(rng.randint(*_VALUE_RANGE) for _ in fmt.value_fields)
        if kind is Kind.DUPLICATE:
            while len(recent) > 1 and recent[0][0] < position - horizon:
                recent.popleft()
            _, original = rng.choice(recent)
            messages.append(replace(original, kind=Kind.DUPLICATE))
            continue
        if kind is Kind.LATE:
            event_time = start_ms - watermark_seconds * 1000 - rng.randrange(*_LATE_MARGIN_MS)
        else:
            event_time = start_ms + round(position * spacing_ms) - rng.randrange(JITTER_MS)
        document = _document(fmt, event_id, key, event_time, values)
        if kind is Kind.MALFORMED:
            malformed_kind = MALFORMED_KINDS[rng.randrange(len(MALFORMED_KINDS))]
            payload = _malformed_payload(malformed_kind, document, fmt)
            messages.append(Message(payload, event_id, kind, malformed_kind=malformed_kind))
            continue
        message = Message(json.dumps(document), key, kind, event_id, key, event_time, values)
        messages.append(message)
        if kind is Kind.VALID:
            recent.append((position, message))
    return messages


@dataclass(frozen=True)
class Stats:
    count: int
    total: float
    low: float
    high: float

    def add(self, value: float) -> Stats:
        return Stats(
            self.count + 1, self.total + value, min(self.low, value), max(self.high, value)
        )


@dataclass(frozen=True)
class Truth:
    """What the job must produce from a sequence of sent messages."""

    value_fields: tuple[str, ...]
    # (key, window start) -> value field -> stats, over valid, unique, on-time events.
    aggregates: Mapping[tuple[str, str], Mapping[str, Stats]]
    # The unique valid events that are on time: aggregated and archived.
    on_time_ids: frozenset[str]
    malformed: tuple[Message, ...]
    # The late events: dead-lettered with reason "late" and archived, not aggregated.
    late_events: tuple[Message, ...]
    sent: int
    duplicates: int

    @property
    def valid(self) -> int:
        """Unique on-time events."""
        return len(self.on_time_ids)

    @property
    def late(self) -> int:
        return len(self.late_events)

    @property
    def late_ids(self) -> frozenset[str]:
        return frozenset(m.event_id for m in self.late_events)

    @property
    def archived_ids(self) -> frozenset[str]:
        """The ids of the valid events the archive must hold, each once: on time and late."""
        return self.on_time_ids | self.late_ids

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "valid": self.valid,
            "duplicates": self.duplicates,
            "late": self.late,
            "malformed": len(self.malformed),
            "aggregates": [
                {
                    "key": key,
                    "window_start": window,
                    **{
                        f"{name}_{stat}": getattr(stats[name], attribute)
                        for name in self.value_fields
                        for stat, attribute in (
                            ("count", "count"),
                            ("sum", "total"),
                            ("min", "low"),
                            ("max", "high"),
                        )
                    },
                }
                for (key, window), stats in sorted(self.aggregates.items())
            ],
        }


def truth_of(
    messages: Iterable[Message], *, window_seconds: int, value_fields: tuple[str, ...]
) -> Truth:
    aggregates: dict[tuple[str, str], dict[str, Stats]] = {}
    seen: set[str] = set()
    malformed: list[Message] = []
    late: list[Message] = []
    sent = duplicates = 0
    for message in messages:
        sent += 1
        if message.kind is Kind.MALFORMED:
            malformed.append(message)
            continue
        if message.kind is Kind.LATE:
            late.append(message)
            continue
        if message.event_id in seen:
            duplicates += 1
            continue
        seen.add(message.event_id)
        where = (message.key, window_start(message.event_time_ms, window_seconds))
        row = aggregates.setdefault(where, {})
        for name, value in zip(value_fields, message.values, strict=True):
            current = row.get(name)
            row[name] = current.add(value) if current else Stats(1, value, value, value)
    return Truth(
        value_fields=value_fields,
        aggregates=aggregates,
        on_time_ids=frozenset(seen),
        malformed=tuple(malformed),
        late_events=tuple(late),
        sent=sent,
        duplicates=duplicates,
    )
