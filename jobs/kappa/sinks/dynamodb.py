"""DynamoDB serving sink: BatchGetItem, merge (fenced by batch id), BatchWriteItem.

The table (hash key SERVING_KEY_ATTRIBUTE, range key SERVING_WINDOW_ATTRIBUTE, both strings)
is created by infra; the job only writes items. Each Spark partition of a batch's aggregates
is written by the executor that holds it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from pyspark.sql import Row

from ..spec import (
    SERVING_EXPIRY_ATTRIBUTE,
    SERVING_KEY_ATTRIBUTE,
    SERVING_WINDOW_ATTRIBUTE,
    DynamoDbSink,
    PipelineSpec,
)
from .base import RowWriter, ServingSink, section
from .merge import chunks, merge, window_epoch_seconds

# BatchGetItem takes at most 100 keys and BatchWriteItem 25 items per call.
_GET_LIMIT = 100
_WRITE_LIMIT = 25
_MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class _Target:
    table: str
    region: str
    endpoint_url: str | None
    value_fields: tuple[str, ...]
    expiry_seconds: int  # 0: no expiry attribute


class DynamoDbServingSink(ServingSink):
    def __init__(
        self, sink: DynamoDbSink, table: str, value_fields: Sequence[str], window_seconds: int
    ) -> None:
        expiry = sink.ttl_days * 86_400 + window_seconds if sink.ttl_days > 0 else 0
        self._target = _Target(table, sink.region, sink.endpoint_url, tuple(value_fields), expiry)

    @classmethod
    def from_spec(cls, spec: PipelineSpec) -> DynamoDbServingSink:
        return cls(
            section(spec, DynamoDbSink),
            spec.serving_table,
            spec.event.value_fields,
            window_seconds=spec.windowing.window_seconds,
        )

    def prepare(self) -> None:
        client = _client(self._target)
        try:
            client.describe_table(TableName=self._target.table)
        except client.exceptions.ResourceNotFoundException:
            raise RuntimeError(
                f"DynamoDB table {self._target.table!r} does not exist in "
                f"{self._target.region}: infra creates it (hash key "
                f"{SERVING_KEY_ATTRIBUTE!r}, range key {SERVING_WINDOW_ATTRIBUTE!r})"
            ) from None

    def row_writer(self, batch_id: int) -> RowWriter:
        return partial(write_partition, self._target, batch_id)


def _client(target: _Target) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        region_name=target.region,
        endpoint_url=target.endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": _MAX_ATTEMPTS}),
    )


def _to_number(value: float | int) -> dict[str, str]:
    # repr() is the shortest text that round-trips a float; DynamoDB keeps 38 digits.
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, typed in item.items():
        if "N" in typed:
            number = Decimal(typed["N"])
            values[name] = int(number) if number == number.to_integral_value() else float(number)
        elif "S" in typed:
            values[name] = typed["S"]
    return values


def _to_item(row: dict[str, Any], expiry_seconds: int) -> dict[str, Any]:
    item = {
        name: {"S": value} if isinstance(value, str) else _to_number(value)
        for name, value in row.items()
    }
    if expiry_seconds:
        expires = window_epoch_seconds(row[SERVING_WINDOW_ATTRIBUTE]) + expiry_seconds
        item[SERVING_EXPIRY_ATTRIBUTE] = {"N": str(expires)}
    return item


def _key(key: str, window_start: str) -> dict[str, Any]:
    return {SERVING_KEY_ATTRIBUTE: {"S": key}, SERVING_WINDOW_ATTRIBUTE: {"S": window_start}}


def _batch_get(client: Any, table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
    for attempt in range(_MAX_ATTEMPTS):
        response = client.batch_get_item(RequestItems=request)
        items.extend(response.get("Responses", {}).get(table, []))
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return items
        time.sleep(min(2.0, 0.05 * 2**attempt))
    raise RuntimeError(f"DynamoDB kept keys of {table!r} unprocessed after {_MAX_ATTEMPTS} tries")


def _batch_write(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    request: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in items]}
    for attempt in range(_MAX_ATTEMPTS):
        response = client.batch_write_item(RequestItems=request)
        request = response.get("UnprocessedItems") or {}
        if not request:
            return
        time.sleep(min(2.0, 0.05 * 2**attempt))
    raise RuntimeError(f"DynamoDB kept items of {table!r} unprocessed after {_MAX_ATTEMPTS} tries")


def write_partition(target: _Target, batch_id: int, rows: Iterable[Row]) -> None:
    client = _client(target)
    for chunk in chunks((row.asDict() for row in rows), _GET_LIMIT):
        keys = [_key(r[SERVING_KEY_ATTRIBUTE], r[SERVING_WINDOW_ATTRIBUTE]) for r in chunk]
        stored = {
            (i[SERVING_KEY_ATTRIBUTE]["S"], i[SERVING_WINDOW_ATTRIBUTE]["S"]): _from_item(i)
            for i in _batch_get(client, target.table, keys)
        }
        merged = [
            merge(
                stored.get((r[SERVING_KEY_ATTRIBUTE], r[SERVING_WINDOW_ATTRIBUTE])),
                r,
                target.value_fields,
                batch_id,
            )
            for r in chunk
        ]
        items = [_to_item(m, target.expiry_seconds) for m in merged if m is not None]
        for part in chunks(items, _WRITE_LIMIT):
            _batch_write(client, target.table, part)
