"""The last end offset a stream reader planned, kept beside the query's checkpoint.

Spark 4.0's Python `DataSourceStreamReader.latestOffset()` is not told where the query
stands, and after a restart Spark does not tell the new reader either: the checkpointed
offset only reaches `partitions(start, end)`. A reader that must look at the source to plan
its next end (Kinesis reads ahead; Pub/Sub numbers its pulls) therefore saves every end it
hands to Spark, before handing it over. Saved ends are never behind Spark's own offset log,
and since `partitions()` always reads from Spark's start, resuming from a saved end that
Spark never logged loses nothing.
"""

from __future__ import annotations

import json
from typing import Any

from .. import objects


class PlannedOffsets:
    def __init__(self, directory_uri: str) -> None:
        self._uri = objects.join(directory_uri, "latest-offset.json")

    def load(self) -> dict[str, Any] | None:
        if not objects.exists(self._uri):
            return None
        return json.loads(objects.read_bytes(self._uri))

    def save(self, offset: dict[str, Any]) -> None:
        objects.write_bytes(self._uri, json.dumps(offset, sort_keys=True).encode("utf-8"))
