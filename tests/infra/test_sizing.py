import pytest

from infra.sizing import kinesis_shard_count


def shards(kib: int = 100, records: int = 100, consumers: int = 1, headroom: int = 0) -> int:
    return kinesis_shard_count(
        ingest_kib_per_second=kib,
        ingest_records_per_second=records,
        read_consumers=consumers,
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
