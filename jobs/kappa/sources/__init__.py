"""Sources: each yields a streaming DataFrame of (payload string, arrival_time timestamp,
record_id string).

Chosen by spec.source.kind. `arrival_time` is when the broker received the event (Kinesis
approximate arrival, Pub/Sub publish time, file modification time); it travels with dead
letters and the archive for diagnosis. `record_id` is the record's identity in its source,
the same every time the record is read (a replayed batch, a redelivery) and different for
two records whatever their bytes: "<shard id>:<sequence number>" (the job's Kinesis reader),
"<partition key>:<sequence number>" (EMR's connector, which has no shard column; Kinesis
numbers records uniquely per partition key within a shard, and a key's records in a child
shard follow its parent's; records a producer aggregated with the KPL share a sequence
number, and the connector does not expose their subsequence number), the Pub/Sub message id,
"<file path>:<line number>" (files). Malformed records are deduplicated by it
(events.parse_events).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import objects
from ..events import ARRIVAL_TIME, PAYLOAD, RECORD_ID
from ..spec import FilesSource, KinesisSource, PipelineSpec, PubSubSource

# Spark's text source ends a line at \n, \r\n or \r.
_LINE_BREAK = r"\r\n|\r|\n"


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
    # Whole files, cut into lines here: Spark's line reader has no line number, and a line's
    # identity must not depend on how Spark splits files into tasks. So a file is read by one
    # task and must fit in a string (2 GB); this source is for local runs and backfills.
    reader = spark.readStream.format("text").option("wholetext", "true")
    if source.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", source.max_files_per_trigger)
    files = reader.load(source.path).select(
        F.split("value", _LINE_BREAK).alias("lines"),
        F.col("_metadata.file_path").alias("path"),
        F.col("_metadata.file_modification_time").alias(ARRIVAL_TIME),
    )
    # The text after a file's last line break is a line only if it is not empty, as Spark's
    # line reader has it.
    lines = F.when(
        F.element_at("lines", -1) == "", F.slice("lines", 1, F.size("lines") - 1)
    ).otherwise(F.col("lines"))
    numbered = files.select(F.posexplode(lines).alias("index", PAYLOAD), "path", ARRIVAL_TIME)
    line_number = (F.col("index") + 1).cast("string")
    return numbered.select(
        PAYLOAD, ARRIVAL_TIME, F.concat_ws(":", "path", line_number).alias(RECORD_ID)
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
            # The connector's schema (data, streamName, partitionKey, sequenceNumber,
            # approximateArrivalTimestamp; awslabs/spark-sql-kinesis-connector) has no shard id.
            F.concat_ws(":", "partitionKey", "sequenceNumber").alias(RECORD_ID),
        )
    )
