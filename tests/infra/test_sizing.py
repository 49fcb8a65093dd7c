"""The shard arithmetic (infra/sizing.py): writes, records and the reads of every reader."""

import pytest

from infra.aws.broker import BrokerArgs
from infra.sizing import KINESIS_READ_PASSES, kinesis_readers, kinesis_shard_count
from tests.infra.program import AWS_BASE, run_main


def shards(kib: int = 100, records: int = 100, consumers: int = 1, headroom: int = 0) -> int:
    return kinesis_shard_count(
        ingest_kib_per_second=kib,
        ingest_records_per_second=records,
        readers=consumers,
        headroom_percent=headroom,
    )


def test_a_light_stream_needs_one_shard():
    assert shards() == 1


def test_write_bandwidth_sets_the_count_at_one_mib_per_shard():
    assert shards(kib=5 * 1024) == 5
    assert shards(kib=5 * 1024 + 1) == 6


def test_record_rate_sets_the_count_at_a_thousand_per_shard():
    assert shards(records=4500) == 5


def test_read_fan_out_shares_two_mib_per_shard():
    # 3 MiB/s in (3 shards for writing) read by 4 consumers = 12 MiB/s out: 6 shards.
    assert shards(kib=3 * 1024, consumers=4) == 6


def test_headroom_is_applied_before_rounding_up():
    assert shards(kib=1024, headroom=0) == 1
    assert shards(kib=1024, headroom=25) == 2
    assert shards(records=8000, headroom=25) == 10


@pytest.mark.parametrize("kib", [1, 1023, 1024])
def test_never_fewer_than_one_shard(kib: int):
    assert shards(kib=kib) >= 1


def test_each_reader_reads_each_record_once():
    # tests/jobs/test_kinesis_source.py counts what the job's reader fetches against this.
    assert KINESIS_READ_PASSES == {"python": 1, "emr-connector": 1}


def test_readers_are_the_passes_of_every_running_version_plus_outside_consumers():
    assert kinesis_readers() == 1
    assert kinesis_readers(pipeline_versions=2) == 2
    assert kinesis_readers(reader="emr-connector", pipeline_versions=3, outside_consumers=2) == 5


@pytest.mark.parametrize(("versions", "outside"), [(0, 0), (1, -1)])
def test_readers_need_a_version_and_no_negative_consumers(versions: int, outside: int):
    with pytest.raises(ValueError, match="pipeline_versions"):
        kinesis_readers(pipeline_versions=versions, outside_consumers=outside)


def _broker_shards(**args: int | str) -> int | None:
    base = {"ingest_kib_per_second": 3 * 1024, "ingest_records_per_second": 100}
    return BrokerArgs(kms_key_id="key", headroom_percent=0, **{**base, **args}).shard_count


def test_a_version_replaying_beside_the_live_one_doubles_the_reads():
    # 3 MiB/s in needs three shards to write; read by one version, 3 MiB/s of reads fit in
    # them, read by two (the Kappa replay), 6 MiB/s need three as well, and a third reader
    # outside the pipeline makes 9 MiB/s: five shards.
    assert _broker_shards() == 3
    assert _broker_shards(pipeline_versions=2) == 3
    assert _broker_shards(pipeline_versions=2, read_consumers=1) == 5


def test_the_broker_counts_no_outside_consumer_unless_told():
    assert BrokerArgs(kms_key_id="key").read_consumers == 0
    # 1.5 MiB/s read once: the writes decide (two shards), not a phantom second reader.
    assert _broker_shards(ingest_kib_per_second=1536, ingest_records_per_second=100) == 2
    assert _broker_shards(ingest_kib_per_second=1536, read_consumers=2) == 3


def _stack_shards(versions: int, **config: object) -> int:
    """The stream's shards in the whole AWS program at 3 MiB/s in, the CLI filling in every
    other key's declared default (Pulumi.yaml): 1,000 records/s, 25% headroom, and
    brokerReadConsumers unless given."""
    names = [f"v{n}" for n in range(1, versions + 1)]
    stack = {"brokerIngestKibPerSecond": 3 * 1024, "pipelineVersions": names}
    stack |= {"pipelineLiveVersion": "v1"} if versions > 1 else {}
    recording = run_main({**AWS_BASE, **{f"kappa:{k}": v for k, v in {**stack, **config}.items()}})
    return recording.one("aws:kinesis/stream:Stream")["shardCount"]


@pytest.mark.parametrize(
    ("versions", "shards_wanted"),
    [
        # writes 3072 KiB/s x 1.25 / 1024 = 3.75 -> 4; records 1000 x 1.25 / 1000 -> 2; reads
        # 3072 x readers x 1.25 / 2048, readers = 1 pass x versions + 0 outside consumers:
        (1, 4),  # 1 reader: 1.875 -> 2, the writes decide: 4
        (2, 4),  # 2 readers (v2 replaying beside v1): 3.75 -> 4
        (3, 6),  # 3 readers: 5.625 -> 6, the pipeline's reads decide
    ],
)
def test_the_default_plan_sizes_the_shards_for_the_pipelines_reads_only(
    versions: int, shards_wanted: int
):
    assert _stack_shards(versions) == shards_wanted


def test_an_outside_consumer_adds_its_reads_to_the_pipelines():
    # v1 and v2 and one other application: 3 readers, 3072 x 3 x 1.25 / 2048 = 5.625 -> 6.
    assert _stack_shards(2, brokerReadConsumers=1) == 6
    assert _stack_shards(2, brokerReadConsumers=0) == _stack_shards(2) == 4
