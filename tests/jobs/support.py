"""Events for the tests, and the truth about them computed in plain Python (no Spark)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kappa.events import stat_columns
from kappa.spec import (
    SERVING_KEY_ATTRIBUTE,
    SERVING_WINDOW_ATTRIBUTE,
    EventFormat,
    FilesSource,
    PipelineSpec,
    Sink,
    Source,
    Storage,
    Windowing,
)

BASE_TIME = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
VALUE_FIELDS = ("value", "weight")
EVENT_FORMAT = EventFormat(value_fields=VALUE_FIELDS)
# The test events carry fixed times (BASE_TIME) and reach their source whenever a test runs,
# days later: judged by arrival every one would be late. Tests of lateness judge it.
WINDOWING = Windowing(window_seconds=60, watermark_seconds=600, trigger_seconds=1, lateness="none")
ON_ARRIVAL = WINDOWING.model_copy(update={"lateness": "arrival"})


@dataclass(frozen=True)
class Event:
    event_id: str
    key: str
    time: datetime
    values: tuple[float, ...]

    def to_json(self, *, epoch_millis: bool = False) -> str:
        """The event as its producer sends it: the time as ISO-8601 text, or epoch milliseconds."""
        time: str | int = (
            (self.time - _EPOCH) // _MILLISECOND
            if epoch_millis
            else self.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        )
        document: dict[str, Any] = {"event_id": self.event_id, "key": self.key, "event_time": time}
        document.update(zip(VALUE_FIELDS, self.values, strict=True))
        return json.dumps(document)


def generate(
    count: int,
    *,
    seed: int,
    start: datetime = BASE_TIME,
    span: timedelta = timedelta(minutes=10),
    keys: Sequence[str] = ("alpha", "beta", "gamma", "delta"),
    prefix: str = "e",
) -> list[Event]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    return [
        Event(
            event_id=f"{prefix}{seed}-{n}",
            key=rng.choice(keys),
            # Whole milliseconds, so that both of a producer's time formats are exact.
            time=start + timedelta(milliseconds=round(rng.uniform(0, span / _MILLISECOND))),
            values=(round(rng.uniform(-100, 100), 3), float(rng.randint(0, 9))),
        )
        for n in range(count)
    ]


def window_start(moment: datetime, window_seconds: int = WINDOWING.window_seconds) -> str:
    epoch = int(moment.timestamp())
    start = datetime.fromtimestamp(epoch - epoch % window_seconds, tz=UTC)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def truth(events: Iterable[Event]) -> dict[tuple[str, str], dict[str, float]]:
    """Aggregates per (key, window start) of distinct event ids, in plain Python."""
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    result: dict[tuple[str, str], dict[str, float]] = {}
    for event in unique.values():
        row = result.setdefault((event.key, window_start(event.time)), {})
        for name, value in zip(VALUE_FIELDS, event.values, strict=True):
            count, total, low, high = stat_columns(name)
            row[count] = row.get(count, 0) + 1
            row[total] = row.get(total, 0.0) + value
            row[low] = min(row.get(low, value), value)
            row[high] = max(row.get(high, value), value)
    return result


def serving_view(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """Serving-store rows in the shape truth() returns (bookkeeping columns left out)."""
    columns = [c for name in VALUE_FIELDS for c in stat_columns(name)]
    return {
        (row[SERVING_KEY_ATTRIBUTE], row[SERVING_WINDOW_ATTRIBUTE]): {
            c: float(row[c]) for c in columns
        }
        for row in rows
    }


def assert_matches_truth(
    actual: dict[tuple[str, str], dict[str, float]],
    expected: dict[tuple[str, str], dict[str, float]],
) -> None:
    assert sorted(actual) == sorted(expected), "serving rows are not the expected (key, window)s"
    for where, row in expected.items():
        for column, value in row.items():
            got = actual[where][column]
            assert abs(got - value) <= 1e-6 * max(1.0, abs(value)), (
                f"{where} {column}: serving store has {got}, truth is {value}"
            )


def write_lines(
    directory: Path, name: str, lines: Iterable[str], *, arrival: datetime | None = None
) -> Path:
    """Write a JSON-lines file atomically, so that the file source never sees half of it.

    `arrival`: the file's modification time, which the files source takes as its records'
    arrival time (now when not given)."""
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory.parent / f".{name}.tmp"
    temporary.write_text("".join(f"{line}\n" for line in lines))
    if arrival is not None:
        seconds = arrival.timestamp()
        os.utime(temporary, (seconds, seconds))
    target = directory / name
    temporary.replace(target)
    return target


def make_spec(
    tmp: Path,
    *,
    sink: Sink,
    source: Source | None = None,
    version: str = "v1",
    windowing: Windowing = WINDOWING,
) -> PipelineSpec:
    (tmp / "input").mkdir(parents=True, exist_ok=True)
    return PipelineSpec(
        pipeline_version=version,
        source=source or FilesSource(path=str(tmp / "input")),
        event=EVENT_FORMAT,
        windowing=windowing,
        storage=Storage(
            archive_uri=str(tmp / "archive"),
            dead_letter_uri=str(tmp / "dead-letters"),
            checkpoint_uri=str(tmp / "checkpoints"),
        ),
        sink=sink,
    )
