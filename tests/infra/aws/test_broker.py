"""Kinesis: sized from the expected ingest, encrypted, and long enough to replay."""

from __future__ import annotations

from infra.aws.broker import Broker, BrokerArgs
from tests.infra.mocks import run_program

KEY = "arn:aws:kms:eu-west-1:123456789012:key/broker-test"


def stream(**args):
    recording = run_program(lambda: Broker("b", BrokerArgs(kms_key_id=KEY, **args)))
    return recording.one("aws:kinesis/stream:Stream")


def test_provisioned_shards_follow_the_ingest_with_headroom():
    # 3 MiB/s with 25% headroom needs 3.75 shards of 1 MiB/s: four.
    resource = stream(ingest_kib_per_second=3 * 1024, ingest_records_per_second=100)
    assert resource["streamModeDetails"] == {"streamMode": "PROVISIONED"}
    assert resource["shardCount"] == 4


def test_record_rate_can_decide_the_shard_count():
    assert stream(ingest_kib_per_second=10, ingest_records_per_second=5000)["shardCount"] == 7


def test_an_explicit_shard_count_wins():
    assert stream(shards=12)["shardCount"] == 12


def test_on_demand_mode_declares_no_shards():
    resource = stream(mode="on_demand")
    assert resource["streamModeDetails"] == {"streamMode": "ON_DEMAND"}
    assert resource.get("shardCount") is None


def test_retention_is_a_week_by_default_so_the_log_can_be_replayed():
    assert stream()["retentionPeriod"] == 168
    assert stream(retention_hours=720)["retentionPeriod"] == 720


def test_the_stream_is_encrypted_with_the_stack_key():
    resource = stream()
    assert resource["encryptionType"] == "KMS"
    assert resource["kmsKeyId"] == KEY
