"""The Kinesis reader against moto_server (Kinesis) and the pipeline from Kinesis to DynamoDB.

moto differs from Kinesis in two ways the tests allow for: sequence numbers restart at 1 in
every shard, and a merge copies the parents' records into the child (so they come twice;
the job's deduplication absorbs that, as it would any redelivery).
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from kappa import pipeline
from kappa.sources import kinesis as kinesis_source
from kappa.sources.kinesis import KinesisStreamReader
from kappa.spec import KinesisSource

from infra.sizing import KINESIS_READ_PASSES
from tests.jobs import stores
from tests.jobs.support import assert_matches_truth, generate, make_spec, serving_view, truth

_streams = itertools.count()
_HALF = str(2**127)


@pytest.fixture
def kinesis(moto_endpoint: str) -> Any:
    import boto3

    return boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto_endpoint)


def _stream(kinesis: Any, shards: int = 2) -> str:
    name = f"events-{next(_streams)}"
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return name


def _put(kinesis: Any, stream: str, payloads: list[str], hash_key: str = "0") -> None:
    kinesis.put_records(
        StreamName=stream,
        Records=[
            {"Data": p.encode(), "PartitionKey": p or "-", "ExplicitHashKey": hash_key}
            for p in payloads
        ],
    )


def _reader(endpoint: str, stream: str, state: Path, **options: str) -> KinesisStreamReader:
    return KinesisStreamReader(
        {
            "stream_name": stream,
            "region": "us-east-1",
            "endpoint_url": endpoint,
            "state_uri": str(state),
            **options,
        }
    )


def _rows(reader: KinesisStreamReader, start: dict, end: dict) -> list[tuple[Any, ...]]:
    """What the executors get for a batch: rows of a range read from Kinesis, or Arrow
    record batches of records the read-ahead fetched, as (payload, arrival_time, record_id)."""
    return _rows_of(reader, reader.partitions(start, end))


def _rows_of(reader: KinesisStreamReader, parts: list[Any]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for part in parts:
        for item in reader.read(part):
            if isinstance(item, pa.RecordBatch):
                rows += [tuple(row.values()) for row in item.to_pylist()]
            else:
                rows.append(tuple(item))
    return rows


def _read(reader: KinesisStreamReader, start: dict, end: dict) -> list[str]:
    return [payload for payload, *_ in _rows(reader, start, end)]


def test_every_record_is_read_once_across_batches(
    kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    stream = _stream(kinesis)
    first = [f"a{i}" for i in range(12)] + [f"b{i}" for i in range(5)]
    _put(kinesis, stream, first[:12], hash_key="0")
    _put(kinesis, stream, first[12:], hash_key=_HALF)
    reader = _reader(moto_endpoint, stream, tmp_path, max_records_per_shard="5")
    offsets = [reader.initialOffset()]
    seen: list[str] = []
    for _ in range(4):
        offsets.append(reader.latestOffset())
        seen += _read(reader, offsets[-2], offsets[-1])
    assert sorted(seen) == sorted(first)
    _put(kinesis, stream, ["late-a"], hash_key="0")
    offsets.append(reader.latestOffset())
    assert _read(reader, offsets[-2], offsets[-1]) == ["late-a"]


class _Counting:
    """A Kinesis client that counts the records GetRecords returns, whichever thread asks."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.records = 0
        self._lock = threading.Lock()

    def get_records(self, **request: Any) -> Any:
        page = self._client.get_records(**request)
        with self._lock:
            self.records += len(page["Records"])
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _counting(reader: KinesisStreamReader, kinesis: Any) -> _Counting:
    counting = _Counting(kinesis)
    reader._client = counting
    return counting


def _idle(reader: KinesisStreamReader) -> None:
    """Until the reader's background read-ahead (if any) has ended."""
    ahead = getattr(reader, "_ahead", None)
    if ahead is not None:
        ahead[1].result(timeout=60)


def test_each_record_is_read_from_kinesis_once(
    kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    """Planning, the background read-ahead and the executors' reads together fetch every
    record once: the passes per record that infra/sizing.py sizes the shards for."""
    stream = _stream(kinesis)
    records = [f"r{i}" for i in range(40)]
    _put(kinesis, stream, records[:25], hash_key="0")
    _put(kinesis, stream, records[25:], hash_key=_HALF)
    reader = _reader(moto_endpoint, stream, tmp_path, max_records_per_shard="10")
    counting = _counting(reader, kinesis)
    offsets = [reader.initialOffset()]
    seen: list[str] = []
    for _ in range(4):
        offsets.append(reader.latestOffset())
        seen += _read(reader, offsets[-2], offsets[-1])
    _idle(reader)
    assert sorted(seen) == sorted(records)
    assert counting.records / len(records) == KINESIS_READ_PASSES["python"] == 1


def test_a_batch_replayed_after_a_restart_is_read_again_from_kinesis(
    kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    """A restarted reader holds no fetched records: it reads the replayed batch's planned
    range from Kinesis, and gets the very rows the batch had, asking for no more records
    than a batch may hold (here 3 a shard), so not for what came after the batch."""
    stream = _stream(kinesis)
    _put(kinesis, stream, ["x", "{broken", "y"], hash_key="0")
    _put(kinesis, stream, ["z"], hash_key=_HALF)
    first = _reader(moto_endpoint, stream, tmp_path, max_records_per_shard="3")
    start = first.initialOffset()
    end = first.latestOffset()
    handed_over = first.partitions(start, end)
    assert {type(p).__name__ for p in handed_over} == {"FetchedRecords"}
    original = sorted(_rows_of(first, handed_over))
    _put(kinesis, stream, ["after the crash"], hash_key="0")
    restarted = _reader(moto_endpoint, stream, tmp_path, max_records_per_shard="3")
    counting = _counting(restarted, kinesis)
    replayed = restarted.partitions(start, end)
    assert {type(p).__name__ for p in replayed} == {"ShardRange"}
    assert sorted(_rows_of(restarted, replayed)) == original
    assert counting.records == 4
    assert sorted(payload for payload, *_ in original) == ["x", "y", "z", "{broken"]


def test_what_arrives_during_the_background_read_ahead_is_in_the_next_batch(
    kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    """The next batch is read while Spark processes this one; what arrives after that read
    ended is still taken (one more GetRecords call per shard), and nothing twice."""
    stream = _stream(kinesis)
    _put(kinesis, stream, ["a1", "a2"], hash_key="0")
    reader = _reader(moto_endpoint, stream, tmp_path)
    counting = _counting(reader, kinesis)
    first = reader.initialOffset()
    second = reader.latestOffset()
    assert _read(reader, first, second) == ["a1", "a2"]
    _put(kinesis, stream, ["b1"], hash_key="0")
    _idle(reader)  # the background read-ahead has fetched b1
    _put(kinesis, stream, ["b2"], hash_key="0")
    _put(kinesis, stream, ["c1"], hash_key=_HALF)
    third = reader.latestOffset()
    assert sorted(_read(reader, second, third)) == ["b1", "b2", "c1"]
    _idle(reader)
    assert counting.records == 5


def test_a_shards_batch_is_cut_into_partitions_in_order(
    kinesis: Any, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records reach the executors inside the tasks, which must stay small enough for Spark's
    RPC: a shard's batch is cut into partitions of about _PARTITION_BYTES."""
    monkeypatch.setattr(kinesis_source, "_PARTITION_BYTES", 10)
    stream = _stream(kinesis)
    payloads = [f"record-{i}" for i in range(5)]  # 8 bytes each: two to a partition
    _put(kinesis, stream, payloads, hash_key="0")
    reader = _reader(moto_endpoint, stream, tmp_path)
    start = reader.initialOffset()
    end = reader.latestOffset()
    parts = reader.partitions(start, end)
    assert len(parts) == 3
    assert [payload for payload, *_ in _rows_of(reader, parts)] == payloads


def test_a_shards_read_ahead_stops_at_its_byte_limit(
    kinesis: Any, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the read-ahead fetches waits in the driver's memory: beyond about
    _MAX_BYTES_PER_SHARD a shard's records wait for the next batch."""
    monkeypatch.setattr(kinesis_source, "_MAX_BYTES_PER_SHARD", 20)
    stream = _stream(kinesis)
    payloads = [f"record-{i}" for i in range(5)]
    _put(kinesis, stream, payloads, hash_key="0")
    reader = _reader(moto_endpoint, stream, tmp_path)
    offsets = [reader.initialOffset()]
    batches = []
    for _ in range(3):
        offsets.append(reader.latestOffset())
        batches.append(_read(reader, offsets[-2], offsets[-1]))
    # GetRecords pages are taken whole: the first holds all five records.
    assert batches == [payloads, [], []]
    monkeypatch.setattr(kinesis_source, "_GET_RECORDS_LIMIT", 2)
    other = _reader(moto_endpoint, stream, tmp_path / "other")
    offsets = [other.initialOffset()]
    batches = []
    for _ in range(3):
        offsets.append(other.latestOffset())
        batches.append(_read(other, offsets[-2], offsets[-1]))
    assert batches == [payloads[:4], payloads[4:], []]


def test_each_record_is_identified_by_its_shard_and_sequence_number(
    kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    """Records with the same bytes are told apart; a batch read again gives the same ids."""
    stream = _stream(kinesis)
    _put(kinesis, stream, ["", "{broken", "{broken"], hash_key="0")
    _put(kinesis, stream, ["{broken"], hash_key=_HALF)
    reader = _reader(moto_endpoint, stream, tmp_path)
    start = reader.initialOffset()
    end = reader.latestOffset()
    rows = _rows(reader, start, end)
    assert sorted((payload, record_id) for payload, _, record_id in rows) == [
        ("", "shardId-000000000000:1"),
        ("{broken", "shardId-000000000000:2"),
        ("{broken", "shardId-000000000000:3"),
        ("{broken", "shardId-000000000001:1"),
    ]
    assert _rows(reader, start, end) == rows  # read again from Kinesis: the same rows
    # The arrival times are Kinesis' own, as a plain client gets them.
    arrivals = {}
    for shard in ("shardId-000000000000", "shardId-000000000001"):
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for record in kinesis.get_records(ShardIterator=iterator)["Records"]:
            arrivals[f"{shard}:{record['SequenceNumber']}"] = record["ApproximateArrivalTimestamp"]
    assert {record_id: arrival for _, arrival, record_id in rows} == arrivals


def test_offsets_are_sequence_numbers_per_shard(
    kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    stream = _stream(kinesis)
    _put(kinesis, stream, ["x", "y"], hash_key="0")
    reader = _reader(moto_endpoint, stream, tmp_path)
    reader.initialOffset()
    end = reader.latestOffset()
    assert end["start"] == "trim_horizon"
    assert end["shards"] == {"shardId-000000000000": "after:2", "shardId-000000000001": "start"}


def test_a_restarted_reader_resumes_from_its_last_planned_offset(
    kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    stream = _stream(kinesis)
    _put(kinesis, stream, ["x", "y"], hash_key="0")
    first = _reader(moto_endpoint, stream, tmp_path)
    first.initialOffset()
    planned = first.latestOffset()
    _put(kinesis, stream, ["z"], hash_key="0")
    restarted = _reader(moto_endpoint, stream, tmp_path)
    after_restart = restarted.latestOffset()
    assert after_restart["shards"]["shardId-000000000000"] == "after:3"
    assert _read(restarted, planned, after_restart) == ["z"]


def test_merged_parents_are_read_to_their_end_before_the_child(
    kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    stream = _stream(kinesis)
    left = [f"l{i}" for i in range(7)]
    right = [f"r{i}" for i in range(3)]
    _put(kinesis, stream, left, hash_key="0")
    _put(kinesis, stream, right, hash_key=_HALF)
    kinesis.merge_shards(
        StreamName=stream,
        ShardToMerge="shardId-000000000000",
        AdjacentShardToMerge="shardId-000000000001",
    )
    _put(kinesis, stream, ["after-merge"], hash_key="0")
    reader = _reader(moto_endpoint, stream, tmp_path, max_records_per_shard="4")
    offsets = [reader.initialOffset()]
    batches: list[list[str]] = []
    for _ in range(5):
        offsets.append(reader.latestOffset())
        batches.append(_read(reader, offsets[-2], offsets[-1]))
    child = "shardId-000000000002"
    # The child appears in the offsets only once both parents are done.
    for offset in offsets[1:]:
        if child in offset["shards"]:
            assert offset["shards"]["shardId-000000000000"].startswith("done:")
            assert offset["shards"]["shardId-000000000001"].startswith("done:")
    assert child not in offsets[1]["shards"]
    everything = [p for batch in batches for p in batch]
    assert set(everything) == {*left, *right, "after-merge"}
    last_parent_record = max(everything.index("l6"), everything.index("r2"))
    assert everything.index("after-merge") > last_parent_record


def test_latest_starts_where_the_query_first_started(
    kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    stream = _stream(kinesis)
    _put(kinesis, stream, ["old"], hash_key="0")
    time.sleep(0.05)
    reader = _reader(moto_endpoint, stream, tmp_path, starting_position="latest")
    start = reader.initialOffset()
    time.sleep(0.05)
    _put(kinesis, stream, ["new"], hash_key="0")
    assert start["start"].startswith("at:")
    assert _read(reader, start, reader.latestOffset()) == ["new"]


def test_a_timestamp_start_reads_every_shard_from_that_moment_on(
    kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    stream = _stream(kinesis)
    _put(kinesis, stream, ["before"], hash_key="0")
    time.sleep(0.1)
    moment = datetime.now(UTC)
    time.sleep(0.1)
    # Arrived after the moment but before the query started: a timestamp start keeps them.
    _put(kinesis, stream, ["left-1", "left-2"], hash_key="0")
    _put(kinesis, stream, ["right-1"], hash_key=_HALF)
    reader = _reader(moto_endpoint, stream, tmp_path, starting_position=moment.isoformat())
    start = reader.initialOffset()
    assert start["start"] == f"at:{int(moment.timestamp() * 1000)}"
    end = reader.latestOffset()
    assert sorted(_read(reader, start, end)) == ["left-1", "left-2", "right-1"]
    _put(kinesis, stream, ["later"], hash_key=_HALF)
    assert _read(reader, end, reader.latestOffset()) == ["later"]


@pytest.mark.spark
@pytest.mark.e2e
def test_pipeline_from_kinesis_to_dynamodb_matches_truth(
    spark: Any, kinesis: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    stream = _stream(kinesis, shards=2)
    events = generate(120, seed=21)
    for chunk in range(0, len(events), 40):
        kinesis.put_records(
            StreamName=stream,
            Records=[
                {"Data": e.to_json().encode(), "PartitionKey": e.key}
                for e in events[chunk : chunk + 40]
            ],
        )
    # A repeat of already sent events, as a producer retry would cause.
    kinesis.put_records(
        StreamName=stream,
        Records=[{"Data": e.to_json().encode(), "PartitionKey": e.key} for e in events[:10]],
    )
    backing = stores.dynamodb_store(moto_endpoint)
    source = KinesisSource(
        stream_name=stream,
        region="us-east-1",
        endpoint_url=moto_endpoint,
        max_records_per_shard=50,
    )
    spec = make_spec(tmp_path, sink=backing.sink, source=source, version="kin")
    stores.create_dynamodb_table(moto_endpoint, spec.serving_table)
    query, writer = pipeline.start(spark, spec, trigger_seconds=0.5)
    try:
        query.processAllAvailable()
    finally:
        query.stop()
    assert sum(c.on_time for c in writer.history.values()) == 120
    assert_matches_truth(serving_view(backing.read_rows(spec.serving_table)), truth(events))
