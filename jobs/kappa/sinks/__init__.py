"""Serving sinks: where each batch's aggregates are upserted, chosen by spec.sink.kind.

One module per store (`dynamodb.py`, `bigtable.py`, `postgres.py`), each a subclass of
`ServingSink` with `prepare` and `row_writer` (`upsert` is the base's) and a `from_spec`
factory, registered in `SINKS` under the kind of its sink model in `kappa.spec.Sink`. Every
sink keeps the same row contract (key, window start, the stat columns of each value field,
last batch id) and the same batch fence (`merge.py`), so replay and cutover work alike on
all of them. Its
`row_writer` merges rows wherever it runs; `upsert` hands them to it through
`base.write_aggregates` (from the driver when a batch has few, from the executors when it
has many), and the pipeline calls it itself with the rows its batch summary brought to the
driver. tests/jobs/test_sinks.py runs the contract tests on every kind registered here, both
ways. PostgreSQL has no infra store yet: it serves local runs.

Adding a store, on this side: its module here with a `from_spec` factory, registered in
`SINKS`; its sink model in `kappa.spec`, added to the `Sink` union (the models stay there,
not beside their sinks, because infra imports `kappa.spec` and the sink modules import
Spark); and its local server in `LOCAL_STORES` of tests/jobs/stores.py. The infra side and
the whole list: `infra/stores.py`.
"""

from __future__ import annotations

from ..spec import PipelineSpec
from .base import ServingSink, SinkFactory
from .bigtable import BigtableServingSink
from .dynamodb import DynamoDbServingSink
from .postgres import PostgresServingSink

# spec.sink.kind -> the sink that writes that store.
SINKS: dict[str, SinkFactory] = {
    "bigtable": BigtableServingSink.from_spec,
    "dynamodb": DynamoDbServingSink.from_spec,
    "postgres": PostgresServingSink.from_spec,
}


def open_sink(spec: PipelineSpec) -> ServingSink:
    factory = SINKS.get(spec.sink.kind)
    if factory is None:
        raise TypeError(
            f"unsupported sink kind {spec.sink.kind!r}; registered: {', '.join(sorted(SINKS))}"
        )
    return factory(spec)


__all__ = ["SINKS", "ServingSink", "SinkFactory", "open_sink"]
