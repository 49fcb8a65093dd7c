"""What every serving sink is: the interface the pipeline calls, and its factory's shape."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Row

from ..spec import PipelineSpec, Sink

_Section = TypeVar("_Section")


class ServingSink(Protocol):
    """A store's sink. Each sink subclasses this, so that `upsert` is the same for all."""

    def prepare(self) -> None:
        """Called once on the driver before the query starts (e.g. create a missing table)."""
        ...

    def row_writer(self, batch_id: int) -> RowWriter:
        """A picklable function that merges rows of batch `batch_id`'s aggregates into the
        store, fenced by batch id, on the driver or an executor: what upsert hands the rows
        to, and what the pipeline calls itself with rows it already holds."""
        ...

    def upsert(self, aggregates: DataFrame, batch_id: int) -> None:
        """Merge one batch's aggregates (see events.aggregate) into the store, idempotently."""
        write_aggregates(aggregates, self.row_writer(batch_id))


# A batch's aggregates are one row per (key, window) it touched: usually a few hundred or
# thousand rows however many events the batch held. That many the driver writes itself in
# less time than Spark takes to ship them to Python workers on the executors and open a
# connection from each (benchmarks/job_throughput.py's 400,000 events: the whole job took
# 12.3 s instead of 15.2 s). Beyond it, one client's round trips would bound the batch, and
# the executors write in parallel.
DRIVER_WRITE_MAX_ROWS = 10_000

RowWriter = Callable[[Iterable[Row]], None]


def write_aggregates(
    aggregates: DataFrame, write: RowWriter, *, driver_max_rows: int | None = None
) -> None:
    """Hand a batch's aggregate rows to `write`: all at once on the driver when they are at
    most `driver_max_rows` (default DRIVER_WRITE_MAX_ROWS), else each partition on its
    executor. `write` must be picklable and idempotent per batch (the sinks' batch fence),
    since a failed batch is replayed whole either way."""
    limit = DRIVER_WRITE_MAX_ROWS if driver_max_rows is None else driver_max_rows
    # Kept so that, past the limit, the executors write the rows already aggregated instead
    # of aggregating the batch a second time.
    aggregates.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        rows = rows_if_few(aggregates, limit)
        if rows is None:
            aggregates.foreachPartition(write)
        elif rows:
            write(rows)
    finally:
        aggregates.unpersist()


def rows_if_few(frame: DataFrame, limit: int) -> list[Row] | None:
    """All of `frame`'s rows on the driver when there are at most `limit`, else None; one
    Spark job either way."""
    # One partition: Spark's limit otherwise scans the partitions in growing rounds, a Spark
    # job each, until it has enough rows, and a batch's few rows never suffice.
    head = frame.coalesce(1).limit(limit + 1).collect()
    return head if len(head) <= limit else None


# Registered in kappa.sinks.SINKS under the kind of the spec's sink section it writes.
SinkFactory = Callable[[PipelineSpec], ServingSink]


def section(spec: PipelineSpec, model: type[_Section]) -> _Section:
    """The spec's sink section as the model a sink's factory expects."""
    sink: Sink = spec.sink
    if not isinstance(sink, model):
        raise TypeError(f"a {model.__name__} sink was opened for a {sink.kind!r} sink section")
    return sink
