"""Where a batch's aggregate rows are written from: the driver for a few, the executors for
many (kappa.sinks.base.write_aggregates). Both paths hand every row to the sink's writer once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from kappa.sinks.base import write_aggregates

pytestmark = pytest.mark.spark


class FileWriter:
    """A picklable writer that leaves one JSON file per call, so calls made on executors
    (in Spark's Python workers) can be counted from the test."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self, rows: Iterable[Any]) -> None:
        keys = [row["key"] for row in rows]
        (self.directory / f"{uuid.uuid4().hex}.json").write_text(json.dumps(keys))

    def calls(self) -> list[list[str]]:
        return [json.loads(p.read_text()) for p in sorted(self.directory.glob("*.json"))]


def _aggregates(spark: Any, count: int) -> Any:
    return spark.createDataFrame([(f"k{n}", n) for n in range(count)], "key string, n long")


def test_a_few_rows_are_written_once_from_the_driver(spark: Any) -> None:
    received: list[list[str]] = []
    write_aggregates(
        _aggregates(spark, 5).repartition(2),
        lambda rows: received.append([row["key"] for row in rows]),
        driver_max_rows=5,
    )
    # A closure appending to the driver's own list only sees calls made in this process.
    assert [sorted(call) for call in received] == [[f"k{n}" for n in range(5)]]


def test_more_rows_than_the_limit_are_written_by_the_executors_partition_by_partition(
    spark: Any, tmp_path: Path
) -> None:
    received: list[list[str]] = []
    files = FileWriter(tmp_path)

    def write(rows: Iterable[Any]) -> None:
        received.append([])  # only reached if the driver wrote
        files(rows)

    write_aggregates(_aggregates(spark, 6).repartition(2), write, driver_max_rows=5)
    assert received == []
    calls = files.calls()
    assert len(calls) == 2
    assert sorted(key for call in calls for key in call) == sorted(f"k{n}" for n in range(6))


def test_no_rows_open_no_connection(spark: Any) -> None:
    received: list[list[str]] = []
    write_aggregates(
        _aggregates(spark, 0), lambda rows: received.append([row["key"] for row in rows])
    )
    assert received == []
