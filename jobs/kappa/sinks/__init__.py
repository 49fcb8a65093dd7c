"""Serving sinks: where each batch's aggregates are upserted, chosen by spec.sink.kind."""

from __future__ import annotations

from typing import Protocol

from pyspark.sql import DataFrame

from ..spec import BigtableSink, DynamoDbSink, PipelineSpec, PostgresSink


class ServingSink(Protocol):
    def prepare(self) -> None:
        """Called once on the driver before the query starts (e.g. create a missing table)."""
        ...

    def upsert(self, aggregates: DataFrame, batch_id: int) -> None:
        """Merge one batch's aggregates (see events.aggregate) into the store, idempotently."""
        ...


def open_sink(spec: PipelineSpec) -> ServingSink:
    sink = spec.sink
    fields = tuple(spec.event.value_fields)
    if isinstance(sink, DynamoDbSink):
        from .dynamodb import DynamoDbServingSink

        return DynamoDbServingSink(
            sink, spec.serving_table, fields, window_seconds=spec.windowing.window_seconds
        )
    if isinstance(sink, BigtableSink):
        from .bigtable import BigtableServingSink

        return BigtableServingSink(sink, spec.serving_table, fields)
    if isinstance(sink, PostgresSink):
        from .postgres import PostgresServingSink

        return PostgresServingSink(sink, spec.serving_table, fields)
    raise TypeError(f"unsupported sink kind {sink.kind!r}")
