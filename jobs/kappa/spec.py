"""The pipeline spec: the one document that configures the streaming job.

Infra builds it from a stack's outputs and uploads it beside the job bundle; the local
runner builds the same document pointing at emulators. It is the only thing `infra/`
imports from `jobs/`, so it must stay free of Spark, Pulumi and cloud SDK imports.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

SPEC_SCHEMA_VERSION = 1

# Serving rows are keyed by (key, window start) on every store; infra declares tables with
# these attribute names and the job writes them, so they are defined once, here.
SERVING_KEY_ATTRIBUTE = "key"
SERVING_WINDOW_ATTRIBUTE = "window_start"
SERVING_EXPIRY_ATTRIBUTE = "expires_at"

# Lower-case letters, digits and dashes are valid in every store's table names and in
# object-store paths, so a version can be embedded in all of them unchanged.
PIPELINE_VERSION_PATTERN = r"^[a-z][a-z0-9-]{0,15}$"

DEFAULT_REPLAY_WINDOW_SECONDS = 7 * 86_400


class SpecError(ValueError):
    """The spec document is not valid; the message names every offending field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _strip_slash(uri: str) -> str:
    return uri.rstrip("/")


class KinesisSource(_Model):
    kind: Literal["kinesis"] = "kinesis"
    stream_name: str = Field(min_length=1, max_length=128)
    region: str = Field(min_length=1)
    # Emulators (moto) and VPC interface endpoints are reached through an explicit URL.
    endpoint_url: str | None = None
    # "python": the job's own reader over boto3 (runs anywhere, including locally against moto).
    # "emr-connector": the Kinesis connector built into EMR images (format `aws-kinesis`); it
    # reads once instead of twice and supports enhanced fan-out, but exists only on EMR.
    reader: Literal["python", "emr-connector"] = "python"
    # Upper bound of records one micro-batch takes from each shard (GetRecords takes <= 10000
    # per call); it bounds batch size, and so memory, after a backlog builds up.
    max_records_per_shard: int = Field(default=10_000, ge=1, le=1_000_000)
    # Only for reader="emr-connector": "SubscribeToShard" needs a registered consumer name.
    consumer_type: Literal["GetRecords", "SubscribeToShard"] = "GetRecords"
    consumer_name: str | None = None

    @model_validator(mode="after")
    def _fan_out_needs_consumer(self) -> KinesisSource:
        if self.consumer_type == "SubscribeToShard" and self.reader != "emr-connector":
            raise ValueError("consumer_type SubscribeToShard needs reader emr-connector")
        if self.consumer_type == "SubscribeToShard" and not self.consumer_name:
            raise ValueError("consumer_type SubscribeToShard needs consumer_name")
        return self


class PubSubSource(_Model):
    kind: Literal["pubsub"] = "pubsub"
    subscription: str = Field(pattern=r"^projects/[^/]+/subscriptions/[^/]+$")
    # Upper bound of messages one micro-batch pulls.
    max_messages_per_batch: int = Field(default=10_000, ge=1, le=1_000_000)
    # Pulled messages stay leased (deadline renewed every batch) until Spark commits the batch
    # that holds them; 600 s is Pub/Sub's maximum.
    ack_deadline_seconds: int = Field(default=600, ge=10, le=600)
    # How far back starting_position "earliest" reaches: the topic's message retention. A new
    # query seeks its subscription to now minus this, which replays what the topic retains,
    # including messages published before the subscription existed or acknowledged by an
    # earlier reader (seeking to before the retained range only replays what is retained).
    # 0: no seek, the subscription is read as it stands. The default is the stack's default
    # broker retention (brokerRetentionHours 168); Pub/Sub allows up to 31 days.
    replay_window_seconds: int = Field(default=DEFAULT_REPLAY_WINDOW_SECONDS, ge=0, le=31 * 86_400)


class FilesSource(_Model):
    """A directory of JSON-lines files; for local runs and tests."""

    kind: Literal["files"] = "files"
    path: str = Field(min_length=1)
    max_files_per_trigger: int | None = Field(default=None, ge=1)


Source = Annotated[KinesisSource | PubSubSource | FilesSource, Field(discriminator="kind")]


class EventFormat(_Model):
    id_field: str = "event_id"
    key_field: str = "key"
    time_field: str = "event_time"
    value_fields: tuple[str, ...] = Field(default=("value",), min_length=1)

    @model_validator(mode="after")
    def _fields_are_distinct(self) -> EventFormat:
        names = [self.id_field, self.key_field, self.time_field, *self.value_fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"event fields must be distinct; repeated: {duplicates}")
        return self


class Windowing(_Model):
    window_seconds: int = Field(default=60, ge=1, le=86_400)
    # How long after its event time an event may reach the source and still count.
    watermark_seconds: int = Field(default=600, ge=1, le=7 * 86_400)
    # How long the job remembers an event id to drop its repeats, in its own time (reading
    # time, not event time); None: the watermark. It must cover the longest time between
    # reading a record and reading its repeat: a producer's retries, a Pub/Sub redelivery
    # after a crash (the ack deadline), a restart, and for a Pub/Sub backlog (delivered in no
    # particular order) the time to read all of it. The state holds the ids read in about
    # twice this time.
    deduplication_seconds: int | None = Field(default=None, ge=1, le=7 * 86_400)
    trigger_seconds: int = Field(default=30, ge=1, le=3_600)
    # "arrival": an event is late when it reached the source (Kinesis arrival, Pub/Sub
    # publish time, a file's modification time) more than watermark_seconds after its event
    # time. "none": no event is late, for a backfill of old events from files.
    lateness: Literal["arrival", "none"] = "arrival"

    @property
    def deduplication_horizon_seconds(self) -> int:
        return self.deduplication_seconds or self.watermark_seconds


class Storage(_Model):
    """Base URIs (s3://, gs:// or local paths); the pipeline version is appended by the spec."""

    archive_uri: str = Field(min_length=1)
    dead_letter_uri: str = Field(min_length=1)
    checkpoint_uri: str = Field(min_length=1)


class DynamoDbSink(_Model):
    kind: Literal["dynamodb"] = "dynamodb"
    table: str = Field(min_length=1, description="table base name; the version is appended")
    region: str = Field(min_length=1)
    endpoint_url: str | None = None
    ttl_days: int = Field(default=0, ge=0, description="0 keeps rows forever")


class BigtableSink(_Model):
    kind: Literal["bigtable"] = "bigtable"
    project: str = Field(min_length=1)
    instance: str = Field(min_length=1)
    table: str = Field(min_length=1, description="table base name; the version is appended")
    column_family: str = "agg"


class PostgresSink(_Model):
    kind: Literal["postgres"] = "postgres"
    host: str = Field(min_length=1)
    port: int = Field(default=5432, ge=1, le=65_535)
    database: str = Field(min_length=1)
    user: str = Field(min_length=1)
    # The password never travels in the spec: the job reads it from this environment variable.
    password_env: str = "KAPPA_POSTGRES_PASSWORD"  # noqa: S105 - a variable's name, not a secret
    table: str = Field(pattern=r"^[a-z_][a-z0-9_]*$", description="base name; version appended")
    sslmode: Literal["disable", "require", "verify-full"] = "require"


# One model per serving store. Its kind keys the job's sink (kappa.sinks.SINKS) and infra's
# store (STORES of infra/<cloud>/stores/); infra/stores.py says how to add one.
Sink = Annotated[DynamoDbSink | BigtableSink | PostgresSink, Field(discriminator="kind")]

StartingPosition = Literal["earliest", "latest"] | AwareDatetime


class PipelineSpec(_Model):
    schema_version: Literal[1] = SPEC_SCHEMA_VERSION
    pipeline_version: str = Field(pattern=PIPELINE_VERSION_PATTERN)
    source: Source
    starting_position: StartingPosition = "earliest"
    event: EventFormat = EventFormat()
    windowing: Windowing = Windowing()
    storage: Storage
    sink: Sink

    @property
    def checkpoint_location(self) -> str:
        return f"{_strip_slash(self.storage.checkpoint_uri)}/{self.pipeline_version}"

    @property
    def archive_location(self) -> str:
        return f"{_strip_slash(self.storage.archive_uri)}/{self.pipeline_version}"

    @property
    def dead_letter_location(self) -> str:
        return f"{_strip_slash(self.storage.dead_letter_uri)}/{self.pipeline_version}"

    @property
    def serving_table(self) -> str:
        return versioned_table_name(self.sink.table, self.pipeline_version)

    @property
    def starting_timestamp(self) -> datetime | None:
        return self.starting_position if isinstance(self.starting_position, datetime) else None

    def to_json(self) -> str:
        """Canonical JSON: the same spec always serialises to the same bytes (content hashing)."""
        return self.model_dump_json(exclude_none=False, round_trip=True)

    @classmethod
    def from_json(cls, document: str | bytes) -> PipelineSpec:
        try:
            return cls.model_validate_json(document)
        except ValidationError as error:
            raise SpecError(_describe(error)) from None


def versioned_table_name(base: str, pipeline_version: str) -> str:
    """The serving table of one pipeline version: each version replays into its own table."""
    if not re.match(PIPELINE_VERSION_PATTERN, pipeline_version):
        raise SpecError(
            f"pipeline_version {pipeline_version!r} must match {PIPELINE_VERSION_PATTERN}"
        )
    # Underscore rather than dash: PostgreSQL identifiers do not take dashes unquoted.
    return f"{base}_{pipeline_version.replace('-', '_')}"


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(document)"
        given = item.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        lines.append(f"{where}: {item['msg']}{shown}")
    return "invalid pipeline spec:\n  " + "\n  ".join(lines)
