"""Serving stores on local servers: create the table as infra would, and read every row back.

`LOCAL_STORES` has one entry per sink kind the job registers (kappa.sinks.SINKS): the shared
sink contract tests (tests/jobs/test_sinks.py) run on each, and fail for a kind without one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from kappa.sinks.merge import LAST_BATCH_ATTRIBUTE
from kappa.spec import (
    SERVING_KEY_ATTRIBUTE,
    SERVING_WINDOW_ATTRIBUTE,
    BigtableSink,
    DynamoDbSink,
    PostgresSink,
)

from .servers import Postgres

Rows = list[dict[str, Any]]


def _job_creates_its_table(table: str) -> None:
    """For stores whose sink creates its table in prepare()."""


@dataclass
class Store:
    sink: Any
    read_rows: Callable[[str], Rows]
    # Creates a version's table as infra would, before the sink starts.
    create_table: Callable[[str], None] = field(default=_job_creates_its_table)


def dynamodb_store(endpoint: str, *, ttl_days: int = 0) -> Store:
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)
    sink = DynamoDbSink(table="agg", region="us-east-1", endpoint_url=endpoint, ttl_days=ttl_days)

    def read_rows(table: str) -> Rows:
        items = client.get_paginator("scan").paginate(TableName=table)
        rows = []
        for page in items:
            for item in page["Items"]:
                rows.append(
                    {
                        name: (typed["S"] if "S" in typed else float(Decimal(typed["N"])))
                        for name, typed in item.items()
                    }
                )
        return rows

    return Store(sink, read_rows, partial(create_dynamodb_table, endpoint))


def create_dynamodb_table(endpoint: str, table: str) -> None:
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": SERVING_KEY_ATTRIBUTE, "KeyType": "HASH"},
            {"AttributeName": SERVING_WINDOW_ATTRIBUTE, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": SERVING_KEY_ATTRIBUTE, "AttributeType": "S"},
            {"AttributeName": SERVING_WINDOW_ATTRIBUTE, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def postgres_store(server: Postgres) -> Store:
    import psycopg
    from psycopg import sql
    from psycopg.rows import dict_row

    sink = PostgresSink(
        host=server.host,
        port=server.port,
        database=server.database,
        user=server.user,
        table="agg",
        sslmode="disable",
    )

    def read_rows(table: str) -> Rows:
        query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))
        with (
            psycopg.connect(
                host=server.host, port=server.port, user=server.user, dbname=server.database
            ) as connection,
            connection.cursor(row_factory=dict_row) as cursor,
        ):
            return list(cursor.execute(query).fetchall())

    return Store(sink, read_rows)


def bigtable_store() -> Store:
    from google.cloud import bigtable

    sink = BigtableSink(project="test-project", instance="test-instance", table="agg")

    def read_rows(table: str) -> Rows:
        client = bigtable.Client(project=sink.project, admin=True)
        rows = []
        for row in client.instance(sink.instance).table(table).read_rows():
            cells = row.cells[sink.column_family]
            values: dict[str, Any] = {"_row_key": row.row_key}
            for column, versions in cells.items():
                text = versions[0].value.decode("utf-8")
                name = column.decode("utf-8")
                values[name] = (
                    text
                    if name in (SERVING_KEY_ATTRIBUTE, SERVING_WINDOW_ATTRIBUTE)
                    else float(text)
                )
            rows.append(values)
        return rows

    return Store(sink, read_rows, partial(create_bigtable_table, family=sink.column_family))


def create_bigtable_table(table: str, family: str = "agg") -> None:
    from google.cloud import bigtable
    from google.cloud.bigtable import column_family

    client = bigtable.Client(project="test-project", admin=True)
    handle = client.instance("test-instance").table(table)
    if not handle.exists():
        handle.create(column_families={family: column_family.MaxVersionsGCRule(1)})


def _dynamodb_on_moto(request: pytest.FixtureRequest) -> Store:
    return dynamodb_store(request.getfixturevalue("moto_endpoint"))


def _postgres_throwaway(request: pytest.FixtureRequest) -> Store:
    return postgres_store(request.getfixturevalue("postgres"))


def _bigtable_on_emulator(request: pytest.FixtureRequest) -> Store:
    request.getfixturevalue("bigtable_emulator")  # the client finds it by BIGTABLE_EMULATOR_HOST
    return bigtable_store()


# sink kind -> its store on a local server, from the test's fixtures (servers: conftest.py).
LOCAL_STORES: dict[str, Callable[[pytest.FixtureRequest], Store]] = {
    "dynamodb": _dynamodb_on_moto,
    "postgres": _postgres_throwaway,
    "bigtable": _bigtable_on_emulator,
}


def local_store(kind: str, request: pytest.FixtureRequest) -> Store:
    """The store of `kind` on its local server; a kind without one fails, never skips."""
    if kind not in LOCAL_STORES:
        pytest.fail(
            f"sink kind {kind!r} has no local store: add one to LOCAL_STORES in "
            "tests/jobs/stores.py, so the sink contract tests run against it"
        )
    return LOCAL_STORES[kind](request)


__all__ = ["LAST_BATCH_ATTRIBUTE", "LOCAL_STORES", "Store", "local_store"]
