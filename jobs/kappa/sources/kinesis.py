"""Kinesis Data Streams as a Spark 4 Python streaming data source, over boto3.

Offsets: {"start": <where new shards begin>, "shards": {shard_id: position}} where a
position is "start" (nothing read yet), "after:<seq>" (read up to and including seq) or
"done:<seq>" (a closed shard read to its end; seq may be empty). Sequence numbers are
compared as integers, as Kinesis defines them.

Planning (driver): latestOffset() lists the shards and reads ahead from each open shard's
position, at most max_records_per_shard records (and about _MAX_BYTES_PER_SHARD bytes), to
fix the sequence number the batch ends at, which makes the batch replayable after a crash:
its end is a sequence number, not "whatever arrived by then". A shard whose parents (split
or merge) are not yet done is not read, so a child's records always come after all of its
parents' records. Shards are read at once (_READ_THREADS).

Reading: the records the read-ahead fetched are the batch's data. partitions() hands them to
the executors inside the input partitions (Arrow IPC bytes pickled into the tasks, about
_PARTITION_BYTES each), so every record is read from Kinesis once. Only a batch this reader
did not fetch itself, i.e. the batch Spark replays after a restart, is read from Kinesis
again: one partition per shard re-reads exactly (start, end] of that shard.

Pipelining: as soon as latestOffset() has returned a batch's end, the reader fetches the
next batch in the background while Spark processes this one; the next latestOffset() takes
that read-ahead and tops it up with what arrived since (one GetRecords call per shard that
was not full), so a batch's data is as fresh as without the background read.

Everything a batch holds passes through the driver (its memory, then the tasks): that is
this reader's ceiling (docs/job.md, "Where the readers' ceilings lie"). EMR's connector (spec
reader "emr-connector") reads on the executors.

Why this design (benchmarks/source_throughput.py's setting: 100,000 records in 4 shards on
moto, into Spark's no-op sink, local[2]; reader/raw GetRecords loop, medians of 3 rounds,
from the query's start and from its first batch): reading ahead and then again on the
executors, 0.45 / 0.50; the read-ahead handed over, shards one after the other, 0.64 /
0.73; shards at once, 0.72 / 0.83; and the next batch read while Spark processes this one,
0.80 / 0.94. Keeping the read-ahead in the checkpoint store instead (as the Pub/Sub reader
keeps its pulls) came to 0.80 / 0.93 on local disk and 0.71 / 0.82 on moto's S3: a write and
a read of every record through the object store (and its requests paid on S3), for a replay
that Kinesis serves as well for as long as it keeps the records. Spark's own
SimpleDataSourceStreamReader, which caches what the driver read in its block manager, came
to 0.83 / 0.98, within the noise of this design, but hands a batch on as one partition: the
job's parse would run in one task, and a replay would read every shard in one task. All of
these were measured with botocore parsing every arrival time into a datetime; taking them as
numbers (_kinesis) cut the reader's CPU to about 11 us a record and brought it to about
0.8 / 0.97 (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

from .planned import PlannedOffsets

NAME = "kappa-kinesis"
SCHEMA = "payload string, arrival_time timestamp, record_id string"

_GET_RECORDS_LIMIT = 10_000
# Kinesis may answer an empty page although records lie further on (MillisBehindLatest > 0):
# keep paging, within bounds, rather than end a read early.
_MAX_EMPTY_PAGES = 50
_MAX_ATTEMPTS = 10
# A shard's read-ahead stops once it holds this much (a GetRecords call returns up to
# 10 MiB): the records wait in the driver's memory until the batch hands them over. 64 MiB
# is 32 s of a shard's 2 MiB/s of reads.
_MAX_BYTES_PER_SHARD = 64 * 1024 * 1024
# Records travel to the executors inside the tasks, which Spark sends over RPC: a task must
# stay well below spark.rpc.message.maxSize (128 MiB by default), so a shard's batch is cut
# into partitions of about this size.
_PARTITION_BYTES = 16 * 1024 * 1024
# Shards read at once: a GetRecords call mostly waits on the network.
_READ_THREADS = 8
# A replay asks for at least this many records a call, should a batch hold more records
# than max_records_per_shard says (planned before the spec lowered it).
_MIN_REPLAY_PAGE = 100
# Kinesis expires a shard iterator after five minutes.
_ITERATOR_REUSE_SECONDS = 240.0

logger = logging.getLogger(__name__)


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
    """(start, end] of a shard, read from Kinesis on an executor (a replayed batch)."""

    def __init__(self, shard_id: str, start: str, query_start: str, end_sequence: str) -> None:
        super().__init__(shard_id)
        self.shard_id = shard_id
        self.start = start
        self.query_start = query_start
        self.end_sequence = end_sequence


class FetchedRecords(InputPartition):
    """Records of one shard the driver's read-ahead fetched, as an Arrow IPC stream in the
    source's schema: the executor only hands them on."""

    def __init__(self, shard_id: str, arrow: bytes) -> None:
        super().__init__(shard_id)
        self.shard_id = shard_id
        self.arrow = arrow


@dataclass(frozen=True)
class _Fetched:
    """What a read-ahead fetched from one shard: the records after `start` up to `end`, as
    Arrow IPC streams of about _PARTITION_BYTES each. `full`: it stopped on the record or
    byte limit, so there is nothing to top up."""

    start: str
    end: str
    parts: tuple[bytes, ...] = ()
    records: int = 0
    size: int = 0
    full: bool = False


@dataclass
class _Chunk:
    """Records being fetched, until they become one Arrow IPC stream."""

    payloads: list[str] = field(default_factory=list)
    arrivals: list[int] = field(default_factory=list)  # epoch microseconds
    sequences: list[str] = field(default_factory=list)
    size: int = 0

    def arrow(self, shard_id: str) -> bytes:
        import pyarrow as pa

        timestamp = pa.timestamp("us", tz="UTC")
        schema = pa.schema(
            [("payload", pa.string()), ("arrival_time", timestamp), ("record_id", pa.string())]
        )
        record_ids = [f"{shard_id}:{sequence}" for sequence in self.sequences]
        batch = pa.record_batch(
            [
                pa.array(self.payloads, pa.string()),
                pa.array(self.arrivals, timestamp),
                pa.array(record_ids, pa.string()),
            ],
            schema=schema,
        )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, schema) as writer:
            writer.write_batch(batch)
        return sink.getvalue().to_pybytes()


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
        # shard id -> what the read-ahead of the last planned batch fetched, until
        # partitions() hands it over.
        self._fetched: dict[str, _Fetched] = {}
        # The next batch's read-ahead, running in the background: (its start, its result).
        self._ahead: tuple[dict[str, Any], Future[dict[str, _Fetched]]] | None = None
        # shard id -> (position, the iterator the shard's last read ended with, when).
        self._iterators: dict[str, tuple[str, str, float]] = {}
        self._client: Any = None
        self._shard_pool: ThreadPoolExecutor | None = None
        self._background: ThreadPoolExecutor | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Shipped to executors for read(): clients and threads do not pickle, and fetched
        # records travel in the partitions, never with the reader.
        state = dict(self.__dict__)
        state.update(
            _client=None,
            _fetched={},
            _ahead=None,
            _iterators={},
            _shard_pool=None,
            _background=None,
        )
        return state

    def _kinesis(self) -> Any:
        if self._client is None:
            import boto3.session
            import botocore.session
            from botocore.config import Config

            # Timestamps as Kinesis sends them (epoch seconds): botocore would make a datetime
            # of every record's arrival time, which took 14 of the 20 us of CPU a record costs
            # in GetRecords (benchmarks/source_throughput.py); Arrow takes them as numbers.
            session = botocore.session.get_session()
            parsers = session.get_component("response_parser_factory")
            parsers.set_parser_defaults(timestamp_parser=_epoch_seconds)
            self._client = boto3.session.Session(botocore_session=session).client(
                "kinesis",
                region_name=self._options.region,
                endpoint_url=self._options.endpoint_url,
                config=Config(
                    retries={"mode": "standard", "max_attempts": _MAX_ATTEMPTS},
                    max_pool_connections=_READ_THREADS + 2,
                ),
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
        ahead = self._take_ahead(current)
        shards = self._list_shards()
        self._fetched = self._plan(current, shards, ahead)
        latest = {
            "start": current["start"],
            "shards": {shard_id: fetched.end for shard_id, fetched in self._fetched.items()},
        }
        PlannedOffsets(self._options.state_uri).save(latest)
        self._latest = latest
        self._read_ahead_in_background(latest, shards)
        return latest

    def _plan(
        self, offset: dict[str, Any], shards: list[_Shard], ahead: dict[str, _Fetched]
    ) -> dict[str, _Fetched]:
        """Every shard's read-ahead from `offset`: shard id -> what it fetched, in order.

        In rounds: a child joins once every parent is read to its end, here or before, so
        that a child's records always come after all of its parents' records.
        """
        known: dict[str, str] = offset["shards"]
        listed = {s.shard_id for s in shards}
        planned: dict[str, _Fetched] = {}
        pending = list(shards)
        while pending:
            ready = [
                shard
                for shard in pending
                if shard.shard_id in known
                or not [
                    p
                    for p in shard.parents
                    if p in listed and not (p in planned and _is_done(planned[p].end))
                ]
            ]
            if not ready:
                break
            pending = [shard for shard in pending if shard not in ready]

            def fetch(shard: _Shard) -> _Fetched:
                position = known.get(shard.shard_id, "start")
                if _is_done(position):
                    return _Fetched(position, position)
                return self._fetch(shard, position, offset["start"], ahead.get(shard.shard_id))

            for shard, fetched in zip(ready, self._each(fetch, ready), strict=True):
                planned[shard.shard_id] = fetched
        return dict(sorted(planned.items()))

    def _each(self, fetch: Any, shards: list[_Shard]) -> list[_Fetched]:
        if len(shards) == 1:
            return [fetch(shards[0])]
        if self._shard_pool is None:
            self._shard_pool = ThreadPoolExecutor(_READ_THREADS, thread_name_prefix="kinesis-shard")
        return list(self._shard_pool.map(fetch, shards))

    def _read_ahead_in_background(self, offset: dict[str, Any], shards: list[_Shard]) -> None:
        if self._background is None:
            self._background = ThreadPoolExecutor(1, thread_name_prefix="kinesis-ahead")
        self._ahead = (offset, self._background.submit(self._plan, offset, shards, {}))

    def _take_ahead(self, current: dict[str, Any]) -> dict[str, _Fetched]:
        """The background read-ahead from `current`, if one ran (else nothing: read now)."""
        ahead, self._ahead = self._ahead, None
        if ahead is None or ahead[0] != current:
            return {}
        try:
            return ahead[1].result()
        except Exception as error:
            # Read again in the foreground, which raises if the cause persists.
            logger.warning("the background read-ahead failed, reading again: %s", error)
            return {}

    def _fetch(
        self, shard: _Shard, position: str, query_start: str, ahead: _Fetched | None
    ) -> _Fetched:
        """The shard's records after `position`, within the batch's limits; starting from
        what a background read-ahead fetched from there, when it did."""
        if ahead is None or ahead.start != position:
            return self._read(shard, position, query_start, _Fetched(position, position))
        if ahead.full or _is_done(ahead.end):
            return ahead
        return self._read(shard, ahead.end, query_start, ahead)

    def _read(self, shard: _Shard, position: str, query_start: str, so_far: _Fetched) -> _Fetched:
        """Reads on from `position` and adds what it gets to `so_far`."""
        client = self._kinesis()
        iterator = self._iterator(shard.shard_id, position, query_start)
        last = _sequence(position)
        parts = list(so_far.parts)
        chunk = _Chunk()
        records, size = so_far.records, so_far.size
        reached_end = False
        empty_pages = 0

        def full() -> bool:
            held = size + chunk.size
            return records >= self._options.max_records_per_shard or held >= _MAX_BYTES_PER_SHARD

        while not full() and iterator:
            limit = min(self._options.max_records_per_shard - records, _GET_RECORDS_LIMIT)
            try:
                page = client.get_records(ShardIterator=iterator, Limit=limit)
            except client.exceptions.ExpiredIteratorException:
                # A kept iterator outlived Kinesis' five minutes: ask for a new one.
                position_now = f"after:{last}" if last else position
                iterator = _shard_iterator(
                    client, self._options.stream_name, shard.shard_id, position_now, query_start
                )
                continue
            fetched = page["Records"]
            iterator = page.get("NextShardIterator")
            if fetched:
                for record in fetched:
                    data = record["Data"]
                    chunk.size += len(data)
                    chunk.payloads.append(data.decode("utf-8", errors="replace"))
                    chunk.arrivals.append(_micros(record["ApproximateArrivalTimestamp"]))
                    chunk.sequences.append(record["SequenceNumber"])
                    if chunk.size >= _PARTITION_BYTES:
                        size += chunk.size
                        parts.append(chunk.arrow(shard.shard_id))
                        chunk = _Chunk()
                last = fetched[-1]["SequenceNumber"]
                records += len(fetched)
                empty_pages = 0
                continue
            empty_pages += 1
            if page.get("MillisBehindLatest", 0) == 0 or empty_pages >= _MAX_EMPTY_PAGES:
                reached_end = True
                break
        if chunk.sequences:
            size += chunk.size
            parts.append(chunk.arrow(shard.shard_id))
        # A closed shard is finished when Kinesis ends its iterator chain, or (emulators keep
        # handing out iterators) when it is closed and nothing is left to read.
        if iterator is None or (shard.closed and reached_end):
            end = f"done:{last or ''}"
        else:
            end = f"after:{last}" if last else "start"
            self._iterators[shard.shard_id] = (end, iterator, time.monotonic())
        return replace(so_far, end=end, parts=tuple(parts), records=records, size=size, full=full())

    def _iterator(self, shard_id: str, position: str, query_start: str) -> str:
        """A shard iterator for reading after `position`: the one the last read of the shard
        ended with, while it is fresh (each read-ahead would otherwise ask for one, and
        GetShardIterator allows five calls a second per shard), else a new one."""
        kept = self._iterators.pop(shard_id, None)
        fresh = kept is not None and time.monotonic() - kept[2] < _ITERATOR_REUSE_SECONDS
        if kept is not None and fresh and kept[0] == position:
            return kept[1]
        return _shard_iterator(
            self._kinesis(), self._options.stream_name, shard_id, position, query_start
        )

    def partitions(self, start: dict, end: dict) -> list[InputPartition]:
        ranges: list[InputPartition] = []
        for shard_id, end_position in sorted(end["shards"].items()):
            start_position = start.get("shards", {}).get(shard_id, "start")
            end_sequence = _sequence(end_position)
            fetched = self._fetched.pop(shard_id, None)
            if end_sequence is None or end_sequence == _sequence(start_position):
                continue
            if (
                fetched is not None
                and fetched.start == start_position
                and _sequence(fetched.end) == end_sequence
            ):
                ranges += [FetchedRecords(shard_id, part) for part in fetched.parts]
            else:
                # Not what this reader fetched: a batch Spark replays after a restart (or one
                # it planned from further back than the read-ahead began). Read it again.
                ranges.append(ShardRange(shard_id, start_position, end["start"], end_sequence))
        return ranges

    def read(self, partition: InputPartition) -> Iterator[Any]:
        """Arrow record batches of fetched records, or rows of a range read from Kinesis
        (Spark takes either from a Python data source; batches spare a row-by-row copy)."""
        if isinstance(partition, FetchedRecords):
            import pyarrow as pa

            yield from pa.ipc.open_stream(partition.arrow)
            return
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
        # The planning took at most max_records_per_shard records: asking for no more spares
        # reading (and paying the shard's reads for) records past the batch's end.
        wanted = self._options.max_records_per_shard
        empty_pages = 0
        while iterator:
            limit = min(_GET_RECORDS_LIMIT, wanted if wanted > 0 else _MIN_REPLAY_PAGE)
            page = client.get_records(ShardIterator=iterator, Limit=limit)
            wanted -= len(page["Records"])
            for record in page["Records"]:
                sequence = int(record["SequenceNumber"])
                if sequence > end:
                    return
                arrival = _micros(record["ApproximateArrivalTimestamp"]) / 1_000_000
                yield (
                    record["Data"].decode("utf-8", errors="replace"),
                    datetime.fromtimestamp(arrival, tz=UTC),
                    f"{partition.shard_id}:{record['SequenceNumber']}",
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

    def stop(self) -> None:
        self._ahead = None
        for pool in (self._background, self._shard_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._background = self._shard_pool = None


def _epoch_seconds(value: Any) -> float:
    """botocore's timestamp parser for the reader's client: Kinesis' JSON protocol sends
    epoch seconds; anything else is parsed as botocore would."""
    if isinstance(value, int | float):
        return float(value)
    from botocore.utils import parse_timestamp

    return parse_timestamp(value).timestamp()


def _micros(arrival: float | datetime) -> int:
    """An arrival time (epoch seconds, or a datetime from another client) in whole epoch
    microseconds, to the millisecond Kinesis gives it."""
    seconds = arrival.timestamp() if isinstance(arrival, datetime) else arrival
    return round(seconds * 1000) * 1000


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
