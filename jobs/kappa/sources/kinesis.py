"""Kinesis Data Streams as a Spark 4 Python streaming data source, over boto3.

Offsets: {"start": <where new shards begin>, "shards": {shard_id: position}} where a
position is "start" (nothing read yet), "after:<seq>" (read up to and including seq) or
"done:<seq>" (a closed shard read to its end; seq may be empty). Sequence numbers are
compared as integers, as Kinesis defines them.

Planning (driver): latestOffset() lists the shards and reads ahead from each open shard's
position, at most max_records_per_shard records, to learn the sequence number the batch
ends at. A shard whose parents (split or merge) are not yet done is not read, so a child's
records always come after all of its parents' records. Reading (executors): one partition
per shard with new records re-reads exactly (start, end] of that shard.

The read-ahead costs a second GetRecords pass over every record; it is what makes a batch
replayable after a crash (its end is a sequence number, not "whatever arrived by then").
On EMR the built-in connector (spec reader "emr-connector") avoids that cost.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

from .planned import PlannedOffsets

NAME = "kappa-kinesis"
SCHEMA = "payload string, arrival_time timestamp"

_GET_RECORDS_LIMIT = 10_000
# Kinesis may answer an empty page although records lie further on (MillisBehindLatest > 0):
# keep paging, within bounds, rather than end a read early.
_MAX_EMPTY_PAGES = 50
_MAX_ATTEMPTS = 10


class KinesisReadError(RuntimeError):
    """A planned shard range could not be read back; the message names shard and range."""


def resolve_start(position: str, now: datetime | None = None) -> str:
    """The spec's starting position as a replayable start: "trim_horizon" or "at:<epoch ms>".

    "latest" becomes the moment the query first starts, so that replaying its first batch
    reads the same records, and shards that appear later start there too.
    """
    if position == "earliest":
        return "trim_horizon"
    if position == "latest":
        moment = now or datetime.now(UTC)
        return f"at:{int(moment.timestamp() * 1000)}"
    return f"at:{int(datetime.fromisoformat(position).timestamp() * 1000)}"


@dataclass(frozen=True)
class _Shard:
    shard_id: str
    parents: tuple[str, ...]
    closed: bool


class ShardRange(InputPartition):
    def __init__(self, shard_id: str, start: str, query_start: str, end_sequence: str) -> None:
        super().__init__(shard_id)
        self.shard_id = shard_id
        self.start = start
        self.query_start = query_start
        self.end_sequence = end_sequence


def _sequence(position: str) -> str | None:
    _, _, sequence = position.partition(":")
    return sequence if position.startswith(("after:", "done:")) and sequence else None


def _is_done(position: str | None) -> bool:
    return position is not None and position.startswith("done:")


class _Options:
    def __init__(self, options: dict[str, str]) -> None:
        self.stream_name = options["stream_name"]
        self.region = options["region"]
        self.endpoint_url = options.get("endpoint_url") or None
        self.starting_position = options.get("starting_position", "earliest")
        self.max_records_per_shard = int(options.get("max_records_per_shard", "10000"))
        self.state_uri = options["state_uri"]


class KinesisDataSource(DataSource):
    """Options: stream_name, region, endpoint_url, starting_position ("earliest", "latest" or
    an ISO-8601 time), max_records_per_shard, state_uri (where planned offsets are kept)."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def schema(self) -> str:
        return SCHEMA

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return KinesisStreamReader(dict(self.options))


class KinesisStreamReader(DataSourceStreamReader):
    def __init__(self, options: dict[str, str]) -> None:
        self._options = _Options(options)
        self._initial: dict[str, Any] | None = None
        self._latest: dict[str, Any] | None = None
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Shipped to executors for read(): a boto3 client does not pickle, and is made there.
        state = dict(self.__dict__)
        state["_client"] = None
        return state

    def _kinesis(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "kinesis",
                region_name=self._options.region,
                endpoint_url=self._options.endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": _MAX_ATTEMPTS}),
            )
        return self._client

    def initialOffset(self) -> dict:
        if self._initial is None:
            self._initial = {
                "start": resolve_start(self._options.starting_position),
                "shards": {},
            }
        return self._initial

    def _current(self) -> dict[str, Any]:
        if self._latest is None:
            saved = PlannedOffsets(self._options.state_uri).load()
            self._latest = saved if saved is not None else self.initialOffset()
        return self._latest

    def _list_shards(self) -> list[_Shard]:
        client = self._kinesis()
        shards: list[_Shard] = []
        request: dict[str, Any] = {"StreamName": self._options.stream_name}
        while True:
            response = client.list_shards(**request)
            for shard in response["Shards"]:
                parents = tuple(
                    p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p
                )
                closed = "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
                shards.append(_Shard(shard["ShardId"], parents, closed))
            token = response.get("NextToken")
            if not token:
                return sorted(shards, key=lambda s: s.shard_id)
            request = {"NextToken": token}

    def latestOffset(self) -> dict:
        current = self._current()
        known: dict[str, str] = current["shards"]
        shards = self._list_shards()
        listed = {s.shard_id for s in shards}
        planned: dict[str, str] = {}
        for shard in shards:
            position = known.get(shard.shard_id)
            if position is None:
                waiting = [p for p in shard.parents if p in listed and not _is_done(planned.get(p))]
                if waiting:
                    continue  # a child starts only once every parent is read to its end
                position = "start"
            if not _is_done(position):
                position = self._read_ahead(shard, position, current["start"])
            planned[shard.shard_id] = position
        latest = {"start": current["start"], "shards": planned}
        PlannedOffsets(self._options.state_uri).save(latest)
        self._latest = latest
        return latest

    def _read_ahead(self, shard: _Shard, position: str, query_start: str) -> str:
        client = self._kinesis()
        iterator = _shard_iterator(
            client, self._options.stream_name, shard.shard_id, position, query_start
        )
        last = _sequence(position)
        remaining = self._options.max_records_per_shard
        reached_end = False
        empty_pages = 0
        while remaining > 0 and iterator:
            page = client.get_records(
                ShardIterator=iterator, Limit=min(remaining, _GET_RECORDS_LIMIT)
            )
            records = page["Records"]
            iterator = page.get("NextShardIterator")
            if records:
                last = records[-1]["SequenceNumber"]
                remaining -= len(records)
                empty_pages = 0
                continue
            empty_pages += 1
            if page.get("MillisBehindLatest", 0) == 0 or empty_pages >= _MAX_EMPTY_PAGES:
                reached_end = True
                break
        # A closed shard is finished when Kinesis ends its iterator chain, or (emulators keep
        # handing out iterators) when it is closed and nothing is left to read.
        if iterator is None or (shard.closed and reached_end):
            return f"done:{last or ''}"
        return f"after:{last}" if last else "start"

    def partitions(self, start: dict, end: dict) -> list[ShardRange]:
        ranges = []
        for shard_id, end_position in sorted(end["shards"].items()):
            start_position = start.get("shards", {}).get(shard_id, "start")
            end_sequence = _sequence(end_position)
            if end_sequence is None or end_sequence == _sequence(start_position):
                continue
            ranges.append(ShardRange(shard_id, start_position, end["start"], end_sequence))
        return ranges

    def read(self, partition: InputPartition) -> Iterator[tuple[str, datetime]]:
        assert isinstance(partition, ShardRange)
        client = self._kinesis()
        iterator = _shard_iterator(
            client,
            self._options.stream_name,
            partition.shard_id,
            partition.start,
            partition.query_start,
        )
        end = int(partition.end_sequence)
        empty_pages = 0
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=_GET_RECORDS_LIMIT)
            for record in page["Records"]:
                sequence = int(record["SequenceNumber"])
                if sequence > end:
                    return
                yield (
                    record["Data"].decode("utf-8", errors="replace"),
                    record["ApproximateArrivalTimestamp"],
                )
                if sequence == end:
                    return
            iterator = page.get("NextShardIterator")
            if page["Records"]:
                empty_pages = 0
                continue
            empty_pages += 1
            if empty_pages >= _MAX_EMPTY_PAGES:
                raise KinesisReadError(
                    f"shard {partition.shard_id} of {self._options.stream_name}: sequence "
                    f"{partition.end_sequence} (planned end of this batch) was not found "
                    f"after {partition.start}; were the records trimmed by retention?"
                )
            if page.get("MillisBehindLatest", 0) == 0:
                time.sleep(0.2)


def _shard_iterator(
    client: Any, stream: str, shard_id: str, position: str, query_start: str
) -> str:
    request: dict[str, Any] = {"StreamName": stream, "ShardId": shard_id}
    sequence = _sequence(position)
    if sequence:
        request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=sequence)
    elif query_start == "trim_horizon":
        request["ShardIteratorType"] = "TRIM_HORIZON"
    else:
        millis = int(query_start.removeprefix("at:"))
        request.update(
            ShardIteratorType="AT_TIMESTAMP",
            Timestamp=datetime.fromtimestamp(millis / 1000, tz=UTC),
        )
    return client.get_shard_iterator(**request)["ShardIterator"]
