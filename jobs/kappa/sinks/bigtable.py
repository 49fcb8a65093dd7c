"""Bigtable serving sink: read the stored rows, merge (fenced by batch id), mutate.

Row key: the key, escaped and terminated by a 0x00 byte, then the window start (ISO-8601
UTC). The escaping (0x00 -> 0x00 0xFF) keeps the byte order of the keys, and the terminator
sorts below every escaped byte, so rows sort by key then window even when one key is a
prefix of another; a scan of one key is a prefix scan of `encode_key(key)`.

Cells (one column family, latest version read): the key and window start, each stat column
and last_batch_id, as UTF-8 decimal text so that `cbt read` shows them as they are. The
table and its column family are created by infra (with a max-versions GC rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pyspark.sql import Row

from ..events import stat_columns
from ..spec import SERVING_KEY_ATTRIBUTE, SERVING_WINDOW_ATTRIBUTE, BigtableSink, PipelineSpec
from .base import RowWriter, ServingSink, section
from .merge import LAST_BATCH_ATTRIBUTE, chunks, merge

_ROWS_PER_CALL = 500
_KEY_END = b"\x00"


@dataclass(frozen=True)
class _Target:
    project: str
    instance: str
    table: str
    column_family: str
    value_fields: tuple[str, ...]


def encode_key(key: str) -> bytes:
    return key.encode("utf-8").replace(b"\x00", b"\x00\xff") + _KEY_END


def row_key(key: str, window_start: str) -> bytes:
    return encode_key(key) + window_start.encode("ascii")


class BigtableServingSink(ServingSink):
    def __init__(self, sink: BigtableSink, table: str, value_fields: Sequence[str]) -> None:
        self._target = _Target(
            sink.project, sink.instance, table, sink.column_family, tuple(value_fields)
        )

    @classmethod
    def from_spec(cls, spec: PipelineSpec) -> BigtableServingSink:
        return cls(section(spec, BigtableSink), spec.serving_table, spec.event.value_fields)

    def prepare(self) -> None:
        if not _table(self._target).exists():
            raise RuntimeError(
                f"Bigtable table {self._target.table!r} does not exist in instance "
                f"{self._target.instance!r} of project {self._target.project!r}: infra creates "
                f"it with column family {self._target.column_family!r}"
            )

    def row_writer(self, batch_id: int) -> RowWriter:
        return partial(write_partition, self._target, batch_id)


def _table(target: _Target) -> Any:
    from google.cloud import bigtable

    # BIGTABLE_EMULATOR_HOST, when set, is honoured by the client itself.
    client = bigtable.Client(project=target.project, admin=True)
    return client.instance(target.instance).table(target.table)


def _numeric_columns(value_fields: Sequence[str]) -> list[str]:
    return [c for name in value_fields for c in stat_columns(name)] + [LAST_BATCH_ATTRIBUTE]


def _decode(row: Any, family: str, value_fields: Sequence[str]) -> dict[str, Any]:
    cells = row.cells.get(family, {})
    values: dict[str, Any] = {}
    for column in _numeric_columns(value_fields):
        versions = cells.get(column.encode("utf-8"))
        if versions:
            text = versions[0].value.decode("utf-8")
            values[column] = (
                int(text)
                if column.endswith("_count") or (column == LAST_BATCH_ATTRIBUTE)
                else float(text)
            )
    return values


def _text(value: Any) -> bytes:
    return (repr(value) if isinstance(value, float) else str(value)).encode("utf-8")


def write_partition(target: _Target, batch_id: int, rows: Iterable[Row]) -> None:
    from google.cloud.bigtable import row_filters
    from google.cloud.bigtable.row_set import RowSet

    table = _table(target)
    latest = row_filters.CellsColumnLimitFilter(1)
    for chunk in chunks((row.asDict() for row in rows), _ROWS_PER_CALL):
        keys = [row_key(r[SERVING_KEY_ATTRIBUTE], r[SERVING_WINDOW_ATTRIBUTE]) for r in chunk]
        wanted = RowSet()
        for key in keys:
            wanted.add_row_key(key)
        stored = {
            row.row_key: _decode(row, target.column_family, target.value_fields)
            for row in table.read_rows(row_set=wanted, filter_=latest)
        }
        mutations = []
        for key, update in zip(keys, chunk, strict=True):
            existing = stored.get(key)
            merged = merge(existing or None, update, target.value_fields, batch_id)
            if merged is None:
                continue
            direct = table.direct_row(key)
            for column, value in merged.items():
                direct.set_cell(target.column_family, column.encode("utf-8"), _text(value))
            mutations.append(direct)
        if not mutations:
            continue
        failed = [
            (status.code, status.message)
            for status in table.mutate_rows(mutations)
            if status.code != 0
        ]
        if failed:
            raise RuntimeError(
                f"Bigtable rejected {len(failed)} of {len(mutations)} rows of table "
                f"{target.table!r}; first: {failed[0]}"
            )
