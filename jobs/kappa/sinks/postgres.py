"""PostgreSQL serving sink: INSERT ... ON CONFLICT DO UPDATE, fenced by batch id.

The fence lives in the statement itself (`WHERE target.last_batch_id < excluded.last_batch_id`),
so a replayed batch is a no-op row by row, without a read first. The job creates its table if
it is missing: each pipeline version gets a fresh one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pyspark.sql import Row

from ..events import stat_columns
from ..spec import SERVING_KEY_ATTRIBUTE, SERVING_WINDOW_ATTRIBUTE, PipelineSpec, PostgresSink
from .base import RowWriter, ServingSink, section
from .merge import LAST_BATCH_ATTRIBUTE, chunks

_ROWS_PER_TRANSACTION = 5_000


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    database: str
    user: str
    password: str | None
    sslmode: str
    table: str
    value_fields: tuple[str, ...]


class PostgresServingSink(ServingSink):
    def __init__(self, sink: PostgresSink, table: str, value_fields: Sequence[str]) -> None:
        # Read on the driver and shipped with the tasks, so executors need no extra environment.
        password = os.environ.get(sink.password_env)
        self._target = _Target(
            sink.host,
            sink.port,
            sink.database,
            sink.user,
            password,
            sink.sslmode,
            table,
            tuple(value_fields),
        )

    @classmethod
    def from_spec(cls, spec: PipelineSpec) -> PostgresServingSink:
        return cls(section(spec, PostgresSink), spec.serving_table, spec.event.value_fields)

    def prepare(self) -> None:
        with _connect(self._target) as connection:
            target = self._target
            connection.execute(create_table_statement(target.table, target.value_fields))

    def row_writer(self, batch_id: int) -> RowWriter:
        return partial(write_partition, self._target, batch_id)


def _connect(target: _Target) -> Any:
    import psycopg

    return psycopg.connect(
        host=target.host,
        port=target.port,
        dbname=target.database,
        user=target.user,
        password=target.password,
        sslmode=target.sslmode,
        connect_timeout=30,
        application_name="kappa-streaming-job",
        autocommit=True,
    )


def _columns(value_fields: Sequence[str]) -> list[str]:
    return [
        SERVING_KEY_ATTRIBUTE,
        SERVING_WINDOW_ATTRIBUTE,
        *(c for name in value_fields for c in stat_columns(name)),
        LAST_BATCH_ATTRIBUTE,
    ]


def create_table_statement(table: str, value_fields: Sequence[str]) -> Any:
    from psycopg import sql

    stats = []
    for name in value_fields:
        count, total, low, high = stat_columns(name)
        stats += [
            sql.SQL("{} bigint NOT NULL").format(sql.Identifier(count)),
            sql.SQL("{} double precision NOT NULL").format(sql.Identifier(total)),
            sql.SQL("{} double precision NOT NULL").format(sql.Identifier(low)),
            sql.SQL("{} double precision NOT NULL").format(sql.Identifier(high)),
        ]
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {table} ({key} text NOT NULL, {window} text NOT NULL, "
        "{stats}, {last} bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), "
        "PRIMARY KEY ({key}, {window}))"
    ).format(
        table=sql.Identifier(table),
        key=sql.Identifier(SERVING_KEY_ATTRIBUTE),
        window=sql.Identifier(SERVING_WINDOW_ATTRIBUTE),
        stats=sql.SQL(", ").join(stats),
        last=sql.Identifier(LAST_BATCH_ATTRIBUTE),
    )


def upsert_statement(table: str, value_fields: Sequence[str]) -> Any:
    from psycopg import sql

    columns = _columns(value_fields)
    target = sql.Identifier(table)

    def current(column: str) -> Any:
        return sql.SQL("{}.{}").format(target, sql.Identifier(column))

    def excluded(column: str) -> Any:
        return sql.SQL("EXCLUDED.{}").format(sql.Identifier(column))

    updates = []
    for name in value_fields:
        count, total, low, high = stat_columns(name)
        for column, template in (
            (count, sql.SQL("{} = {} + {}")),
            (total, sql.SQL("{} = {} + {}")),
            (low, sql.SQL("{} = LEAST({}, {})")),
            (high, sql.SQL("{} = GREATEST({}, {})")),
        ):
            updates.append(
                template.format(sql.Identifier(column), current(column), excluded(column))
            )
    updates.append(
        sql.SQL("{} = {}").format(
            sql.Identifier(LAST_BATCH_ATTRIBUTE), excluded(LAST_BATCH_ATTRIBUTE)
        )
    )
    updates.append(sql.SQL("updated_at = now()"))
    return sql.SQL(
        "INSERT INTO {table} ({columns}) VALUES ({values}) "
        "ON CONFLICT ({key}, {window}) DO UPDATE SET {updates} "
        "WHERE {fence} < {incoming}"
    ).format(
        table=target,
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        values=sql.SQL(", ").join(sql.Placeholder() for _ in columns),
        key=sql.Identifier(SERVING_KEY_ATTRIBUTE),
        window=sql.Identifier(SERVING_WINDOW_ATTRIBUTE),
        updates=sql.SQL(", ").join(updates),
        fence=current(LAST_BATCH_ATTRIBUTE),
        incoming=excluded(LAST_BATCH_ATTRIBUTE),
    )


def write_partition(target: _Target, batch_id: int, rows: Iterable[Row]) -> None:
    columns = _columns(target.value_fields)
    statement = upsert_statement(target.table, target.value_fields)
    with _connect(target) as connection:
        for chunk in chunks(rows, _ROWS_PER_TRANSACTION):
            values = [
                tuple(batch_id if c == LAST_BATCH_ATTRIBUTE else row[c] for c in columns)
                for row in chunk
            ]
            with connection.transaction(), connection.cursor() as cursor:
                cursor.executemany(statement, values)
