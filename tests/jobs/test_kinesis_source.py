"""The Kinesis reader against moto_server (Kinesis) and the pipeline from Kinesis to DynamoDB.

moto differs from Kinesis in two ways the tests allow for: sequence numbers restart at 1 in
every shard, and a merge copies the parents' records into the child (so they come twice;
the job's deduplication absorbs that, as it would any redelivery).
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kappa import pipeline
from kappa.sources.kinesis import KinesisStreamReader
from kappa.spec import KinesisSource

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
            {"Data": p.encode(), "PartitionKey": p, "ExplicitHashKey": hash_key} for p in payloads
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


def _read(reader: KinesisStreamReader, start: dict, end: dict) -> list[str]:
    return [payload for part in reader.partitions(start, end) for payload, _ in reader.read(part)]


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
    assert sum(c.valid for c in writer.history.values()) == 120
    assert_matches_truth(serving_view(backing.read_rows(spec.serving_table)), truth(events))
