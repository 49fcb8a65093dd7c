"""A streaming source for the tests that replays given micro-batches of source rows.

Each batch is a list of (payload, arrival time as epoch milliseconds, record id) rows, the
columns every source of the job yields. Every trigger takes the next batch, so a test decides
what each micro-batch holds, records read twice within one included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from kappa.events import ARRIVAL_TIME, PAYLOAD, RECORD_ID
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

NAME = "kappa-test-listed"
Row = tuple[str | None, int, str | None]


class _Batch(InputPartition):
    def __init__(self, rows: list[Row]) -> None:
        super().__init__(len(rows))
        self.rows = rows


class ListedSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return NAME

    def schema(self) -> str:
        return f"{PAYLOAD} string, {ARRIVAL_TIME} timestamp, {RECORD_ID} string"

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return _Reader(json.loads(self.options["batches"]))


class _Reader(DataSourceStreamReader):
    def __init__(self, batches: list[list[Row]]) -> None:
        self._batches = batches
        self._next = 0

    def initialOffset(self) -> dict:
        return {"batch": -1}

    def latestOffset(self) -> dict:
        if self._next < len(self._batches):
            self._next += 1
        return {"batch": self._next - 1}

    def partitions(self, start: dict, end: dict) -> list[InputPartition]:
        numbers = range(int(start["batch"]) + 1, int(end["batch"]) + 1)
        return [_Batch(self._batches[n]) for n in numbers]

    def read(self, partition: InputPartition) -> Iterator[tuple[Any, ...]]:
        assert isinstance(partition, _Batch)
        for payload, millis, record_id in partition.rows:
            yield payload, datetime.fromtimestamp(millis / 1000, tz=UTC), record_id


def listed_stream(spark: SparkSession, batches: Sequence[Sequence[Row]]) -> DataFrame:
    """A streaming DataFrame whose micro-batch n holds batches[n]."""
    spark.dataSource.register(ListedSource)
    return spark.readStream.format(NAME).option("batches", json.dumps(batches)).load()
