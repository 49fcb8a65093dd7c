"""Merging one batch's aggregates into a serving row, fenced by batch id.

A serving row holds running count/sum/min/max per value field and the id of the last batch
merged into it. Merging batch N into a row that already saw batch N (or later) changes
nothing, so a batch replayed after a crash never counts twice. That fence is only safe with
one writer per row: each pipeline version has its own table and runs one query, and within
a batch each (key, window) occurs in exactly one aggregate row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

from ..events import stat_columns
from ..spec import SERVING_KEY_ATTRIBUTE, SERVING_WINDOW_ATTRIBUTE

LAST_BATCH_ATTRIBUTE = "last_batch_id"

_T = TypeVar("_T")


def merge(
    existing: Mapping[str, Any] | None,
    update: Mapping[str, Any],
    value_fields: Sequence[str],
    batch_id: int,
) -> dict[str, Any] | None:
    """The row to write, or None when the stored row already holds this batch."""
    if existing is not None and int(existing[LAST_BATCH_ATTRIBUTE]) >= batch_id:
        return None
    merged: dict[str, Any] = {
        SERVING_KEY_ATTRIBUTE: update[SERVING_KEY_ATTRIBUTE],
        SERVING_WINDOW_ATTRIBUTE: update[SERVING_WINDOW_ATTRIBUTE],
        LAST_BATCH_ATTRIBUTE: batch_id,
    }
    for name in value_fields:
        count, total, low, high = stat_columns(name)
        if existing is None:
            merged.update({c: update[c] for c in (count, total, low, high)})
            continue
        merged[count] = int(existing[count]) + int(update[count])
        merged[total] = float(existing[total]) + float(update[total])
        merged[low] = min(float(existing[low]), float(update[low]))
        merged[high] = max(float(existing[high]), float(update[high]))
    return merged


def window_epoch_seconds(window_start: str) -> int:
    """Epoch seconds of an ISO-8601 UTC window start such as 2026-11-25T10:05:00Z."""
    return int(
        datetime.strptime(window_start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    )


def chunks(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
