"""The spec fields the job added (all optional), and how sources turn them into options."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from kappa.sources import SourceConfigError, emr_connector_options, read_stream
from kappa.spec import (
    DynamoDbSink,
    FilesSource,
    KinesisSource,
    PipelineSpec,
    PubSubSource,
    SpecError,
)

from tests.jobs.support import make_spec

_SINK = DynamoDbSink(table="agg", region="eu-west-1")


def test_new_source_fields_have_defaults_and_round_trip(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, sink=_SINK, source=KinesisSource(stream_name="s", region="r"))
    assert spec.source.reader == "python"  # type: ignore[union-attr]
    assert spec.source.max_records_per_shard == 10_000  # type: ignore[union-attr]
    assert PipelineSpec.from_json(spec.to_json()) == spec
    pubsub = PubSubSource(subscription="projects/p/subscriptions/s")
    assert pubsub.ack_deadline_seconds == 600
    assert pubsub.replay_window_seconds == 7 * 86_400  # the stack's default broker retention


def test_fan_out_without_a_consumer_name_is_rejected(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, sink=_SINK, source=KinesisSource(stream_name="s", region="r"))
    document = (
        spec.to_json()
        .replace('"consumer_type":"GetRecords"', '"consumer_type":"SubscribeToShard"')
        .replace('"reader":"python"', '"reader":"emr-connector"')
    )
    with pytest.raises(SpecError, match="consumer_name"):
        PipelineSpec.from_json(document)


def test_an_ack_deadline_above_pubsubs_maximum_is_rejected(tmp_path: Path) -> None:
    source = PubSubSource(subscription="projects/p/subscriptions/s")
    document = make_spec(tmp_path, sink=_SINK, source=source).to_json()
    with pytest.raises(SpecError, match=r"source\.pubsub\.ack_deadline_seconds.*601"):
        PipelineSpec.from_json(
            document.replace('"ack_deadline_seconds":600', '"ack_deadline_seconds":601')
        )


def test_a_replay_window_beyond_pubsubs_longest_retention_is_rejected(tmp_path: Path) -> None:
    source = PubSubSource(subscription="projects/p/subscriptions/s")
    document = make_spec(tmp_path, sink=_SINK, source=source).to_json()
    longest = 31 * 86_400
    with pytest.raises(SpecError, match=r"source\.pubsub\.replay_window_seconds"):
        PipelineSpec.from_json(
            document.replace(
                f'"replay_window_seconds":{7 * 86_400}', f'"replay_window_seconds":{longest + 1}'
            )
        )


def test_emr_connector_options_follow_the_spec(tmp_path: Path) -> None:
    source = KinesisSource(
        stream_name="events",
        region="eu-west-1",
        reader="emr-connector",
        consumer_type="SubscribeToShard",
        consumer_name="kappa-v1",
        max_records_per_shard=500,
    )
    spec = make_spec(tmp_path, sink=_SINK, source=source).model_copy(
        update={"starting_position": datetime(2026, 11, 25, 11, 0, tzinfo=UTC)}
    )
    options = emr_connector_options(source, spec)
    assert options["kinesis.startingPosition"] == "AT_TIMESTAMP 2026-11-25T11:00:00Z"
    assert options["kinesis.endpointUrl"] == "https://kinesis.eu-west-1.amazonaws.com"
    assert options["kinesis.consumerName"] == "kappa-v1"
    assert options["kinesis.maxFetchRecordsPerShard"] == "500"


def test_files_source_refuses_a_starting_position_it_cannot_honour(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, sink=_SINK, source=FilesSource(path=str(tmp_path))).model_copy(
        update={"starting_position": "latest"}
    )
    with pytest.raises(SourceConfigError, match="'latest'"):
        read_stream(None, spec)  # type: ignore[arg-type]
