"""The AWS stack sizes its stream for every pipeline version that reads it."""

from __future__ import annotations

from typing import Any

from tests.infra.aws.conftest import AwsStack


def _shards(aws_stack: AwsStack, **config: Any) -> int:
    base = {
        "brokerIngestKibPerSecond": 3 * 1024,
        "brokerHeadroomPercent": 0,
        "brokerReadConsumers": 1,
    }
    return aws_stack(**{**base, **config}).one("aws:kinesis/stream:Stream")["shardCount"]


def test_each_pipeline_version_that_runs_reads_the_stream(aws_stack: AwsStack):
    # 3 MiB/s in: three shards for the writes. One version and one outside consumer read
    # 6 MiB/s, which three shards serve; v2 replaying beside v1 makes it 9 MiB/s: five.
    assert _shards(aws_stack) == 3
    assert _shards(aws_stack, pipelineVersions=["v1", "v2"], pipelineLiveVersion="v1") == 5
