"""Sources: each yields a streaming DataFrame of (payload string, arrival_time timestamp).

Chosen by spec.source.kind. `arrival_time` is when the broker received the event (Kinesis
approximate arrival, Pub/Sub publish time, file modification time); it travels with dead
letters and the archive for diagnosis.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import objects
from ..events import ARRIVAL_TIME, PAYLOAD
from ..spec import FilesSource, KinesisSource, PipelineSpec, PubSubSource


class SourceConfigError(ValueError):
    """The spec asks a source for something it cannot do."""


def _starting_position(spec: PipelineSpec) -> str:
    position = spec.starting_position
    return position.isoformat() if isinstance(position, datetime) else position


def state_location(spec: PipelineSpec) -> str:
    """Where a Python reader keeps its planned offsets (and Pub/Sub its pulled batches)."""
    return objects.join(spec.checkpoint_location, "source-state")


def read_stream(spark: SparkSession, spec: PipelineSpec) -> DataFrame:
    source = spec.source
    if isinstance(source, FilesSource):
        return _files(spark, source, spec)
    if isinstance(source, KinesisSource):
        if source.reader == "emr-connector":
            return _emr_kinesis(spark, source, spec)
        from .kinesis import NAME, KinesisDataSource

        spark.dataSource.register(KinesisDataSource)
        options = {
            "stream_name": source.stream_name,
            "region": source.region,
            "endpoint_url": source.endpoint_url or "",
            "starting_position": _starting_position(spec),
            "max_records_per_shard": str(source.max_records_per_shard),
            "state_uri": state_location(spec),
        }
        return spark.readStream.format(NAME).options(**options).load()
    if isinstance(source, PubSubSource):
        from .pubsub import NAME, PubSubDataSource

        spark.dataSource.register(PubSubDataSource)
        options = {
            "subscription": source.subscription,
            "starting_position": _starting_position(spec),
            "max_messages_per_batch": str(source.max_messages_per_batch),
            "ack_deadline_seconds": str(source.ack_deadline_seconds),
            "replay_window_seconds": str(source.replay_window_seconds),
            "state_uri": state_location(spec),
        }
        return spark.readStream.format(NAME).options(**options).load()
    raise SourceConfigError(f"unsupported source kind {source.kind!r}")


def _files(spark: SparkSession, source: FilesSource, spec: PipelineSpec) -> DataFrame:
    if spec.starting_position != "earliest":
        raise SourceConfigError(
            f"the files source reads every file in {source.path}; starting_position "
            f"{_starting_position(spec)!r} is only supported by kinesis and pubsub"
        )
    reader = spark.readStream.format("text")
    if source.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", source.max_files_per_trigger)
    return reader.load(source.path).select(
        F.col("value").alias(PAYLOAD),
        F.col("_metadata.file_modification_time").alias(ARRIVAL_TIME),
    )


def emr_connector_options(source: KinesisSource, spec: PipelineSpec) -> dict[str, str]:
    """Options of EMR's built-in `aws-kinesis` connector for this spec."""
    position = spec.starting_position
    if isinstance(position, datetime):
        # The connector takes "AT_TIMESTAMP 2023-08-30T19:00:05Z" (awslabs connector README).
        utc = position.astimezone(UTC)
        start = f"AT_TIMESTAMP {utc.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    else:
        start = {"earliest": "TRIM_HORIZON", "latest": "LATEST"}[position]
    options = {
        "kinesis.streamName": source.stream_name,
        "kinesis.region": source.region,
        # The connector requires an endpoint; the regional one is its natural default.
        "kinesis.endpointUrl": source.endpoint_url
        or f"https://kinesis.{source.region}.amazonaws.com",
        "kinesis.startingPosition": start,
        "kinesis.consumerType": source.consumer_type,
        "kinesis.maxFetchRecordsPerShard": str(source.max_records_per_shard),
        # Shard metadata is kept under the query's checkpoint location (the default path).
        "kinesis.metadataCommitterType": "HDFS",
    }
    if source.consumer_name:
        options["kinesis.consumerName"] = source.consumer_name
    return options


def _emr_kinesis(spark: SparkSession, source: KinesisSource, spec: PipelineSpec) -> DataFrame:
    return (
        spark.readStream.format("aws-kinesis")
        .options(**emr_connector_options(source, spec))
        .load()
        .select(
            F.col("data").cast("string").alias(PAYLOAD),
            F.col("approximateArrivalTimestamp").alias(ARRIVAL_TIME),
        )
    )
