"""What every serving sink is: the interface the pipeline calls, and its factory's shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from pyspark.sql import DataFrame

from ..spec import PipelineSpec, Sink

_Section = TypeVar("_Section")


class ServingSink(Protocol):
    def prepare(self) -> None:
        """Called once on the driver before the query starts (e.g. create a missing table)."""
        ...

    def upsert(self, aggregates: DataFrame, batch_id: int) -> None:
        """Merge one batch's aggregates (see events.aggregate) into the store, idempotently."""
        ...


# Registered in kappa.sinks.SINKS under the kind of the spec's sink section it writes.
SinkFactory = Callable[[PipelineSpec], ServingSink]


def section(spec: PipelineSpec, model: type[_Section]) -> _Section:
    """The spec's sink section as the model a sink's factory expects."""
    sink: Sink = spec.sink
    if not isinstance(sink, model):
        raise TypeError(f"a {model.__name__} sink was opened for a {sink.kind!r} sink section")
    return sink
