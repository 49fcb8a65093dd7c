"""The sections of the configuration: one typed model per layer, keyed by the flat stack keys.

Each field's alias is its key in the stack file (`kappa:brokerRetentionHours`); its bounds are
the ones that hold on both clouds. Bounds that differ by cloud, and rules over several keys,
are in `clouds` and `checks`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from infra.config.clouds import Cloud


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
    # Keys that mean something on one cloud only; set on the other cloud they are an error.
    only_on: ClassVar[dict[str, Cloud]] = {}


class BrokerConfig(_Section):
    mode: Literal["provisioned", "on_demand"] = Field("provisioned", alias="brokerMode")
    ingest_kib_per_second: int = Field(1024, ge=1, le=10_485_760, alias="brokerIngestKibPerSecond")
    ingest_records_per_second: int = Field(
        1000, ge=1, le=10_000_000, alias="brokerIngestRecordsPerSecond"
    )
    # Applications reading each shard besides the pipeline; the pipeline's own reads (passes
    # per record x pipeline versions) are counted by infra/sizing.py, so none by default.
    read_consumers: int = Field(0, ge=0, le=20, alias="brokerReadConsumers")
    headroom_percent: int = Field(25, ge=0, le=400, alias="brokerHeadroomPercent")
    shards: int | None = Field(None, ge=1, le=10_000, alias="brokerShards")
    reader: Literal["python", "emr-connector"] = Field("python", alias="brokerReader")
    retention_hours: int = Field(168, ge=1, alias="brokerRetentionHours")
    max_delivery_attempts: int = Field(10, ge=5, le=100, alias="brokerMaxDeliveryAttempts")

    only_on: ClassVar[dict[str, Cloud]] = {
        "brokerMode": "aws",
        "brokerIngestKibPerSecond": "aws",
        "brokerIngestRecordsPerSecond": "aws",
        "brokerReadConsumers": "aws",
        "brokerHeadroomPercent": "aws",
        "brokerShards": "aws",
        "brokerReader": "aws",
        "brokerMaxDeliveryAttempts": "gcp",
    }


class ClusterConfig(_Section):
    mode: Literal["long_running", "ephemeral"] = Field("long_running", alias="clusterMode")
    idle_timeout_minutes: int = Field(60, ge=1, alias="clusterIdleTimeoutMinutes")
    release: str | None = Field(None, alias="clusterRelease")
    master_type: str | None = Field(None, alias="clusterMasterType")
    core_type: str | None = Field(None, alias="clusterCoreType")
    core_count: int = Field(2, ge=1, le=500, alias="clusterCoreCount")
    task_types: tuple[str, ...] | None = Field(None, min_length=1, alias="clusterTaskTypes")
    task_capacity: Literal["spot", "preemptible", "on_demand"] = Field(
        "spot", alias="clusterTaskCapacity"
    )
    task_min: int = Field(0, ge=0, le=1000, alias="clusterTaskMin")
    task_max: int = Field(4, ge=0, le=1000, alias="clusterTaskMax")
    spot_allocation: Literal[
        "price-capacity-optimized",
        "capacity-optimized",
        "capacity-optimized-prioritized",
        "lowest-price",
        "diversified",
    ] = Field("price-capacity-optimized", alias="clusterSpotAllocation")
    disk_gib: int = Field(64, ge=32, le=4096, alias="clusterDiskGib")
    component_gateway: bool = Field(False, alias="clusterComponentGateway")

    only_on: ClassVar[dict[str, Cloud]] = {
        "clusterSpotAllocation": "aws",
        "clusterComponentGateway": "gcp",
    }


class ServingConfig(_Section):
    kind: Literal["dynamodb", "rds", "redshift", "bigtable", "cloudsql", "bigquery"] | None = Field(
        None, alias="servingKind"
    )
    ttl_days: int = Field(0, ge=0, le=3650, alias="servingTtlDays")
    min_nodes: int = Field(1, ge=1, le=1000, alias="servingMinNodes")
    max_nodes: int = Field(3, ge=1, le=1000, alias="servingMaxNodes")
    # The Bigtable cluster's zone; None means zone b of the stack's region.
    zone: str | None = Field(None, pattern=r"^[a-z]+-[a-z]+\d+-[a-z]$", alias="servingZone")

    only_on: ClassVar[dict[str, Cloud]] = {
        "servingMinNodes": "gcp",
        "servingMaxNodes": "gcp",
        "servingZone": "gcp",
    }


class NetworkConfig(_Section):
    vpc_id: str | None = Field(None, alias="networkVpcId")
    subnet_ids: tuple[str, ...] | None = Field(None, min_length=1, alias="networkSubnetIds")
    cidr: str = Field("10.64.0.0/16", alias="networkCidr")
    egress: Literal["none", "nat"] = Field("none", alias="networkEgress")
    az_count: int = Field(2, ge=1, le=6, alias="networkAzCount")

    only_on: ClassVar[dict[str, Cloud]] = {"networkAzCount": "aws"}

    @property
    def bring_your_own(self) -> bool:
        return self.vpc_id is not None


class RetentionConfig(_Section):
    archive_cold_after_days: int = Field(30, ge=30, le=3650, alias="archiveColdAfterDays")
    archive_archive_after_days: int = Field(180, ge=60, le=3650, alias="archiveArchiveAfterDays")
    archive_expire_after_days: int = Field(0, ge=0, le=36500, alias="archiveExpireAfterDays")
    log_days: int = Field(30, ge=1, le=3650, alias="logRetentionDays")
    dead_letter_days: int = Field(365, ge=1, le=3650, alias="deadLetterRetentionDays")


class PipelineConfig(_Section):
    versions: tuple[str, ...] = Field(("v1",), min_length=1, max_length=4, alias="pipelineVersions")
    live_version: str | None = Field(None, alias="pipelineLiveVersion")
    starting_position: str = Field("earliest", alias="pipelineStartingPosition")
    trigger_seconds: int = Field(30, ge=1, le=3600, alias="pipelineTriggerSeconds")
    window_seconds: int = Field(60, ge=1, le=86_400, alias="pipelineWindowSeconds")
    # At least a second: an event reaches the broker after its event time, so with no
    # allowance every event would be late.
    watermark_seconds: int = Field(600, ge=1, le=604_800, alias="pipelineWatermarkSeconds")
    # 0: the watermark (the job's own default).
    deduplication_seconds: int = Field(0, ge=0, le=604_800, alias="pipelineDeduplicationSeconds")
    event_id_field: str = Field("event_id", min_length=1, alias="eventIdField")
    event_key_field: str = Field("key", min_length=1, alias="eventKeyField")
    event_time_field: str = Field("event_time", min_length=1, alias="eventTimeField")
    event_value_fields: tuple[str, ...] = Field(("value",), min_length=1, alias="eventValueFields")

    @property
    def live(self) -> str:
        return self.live_version or self.versions[0]


def _switch(value: Any) -> Any:
    """true or false, as Pulumi hands them over (text) or as YAML wrote them; None: not set."""
    if value is None:
        return None
    text = str(value).lower()
    if text not in ("true", "false"):
        raise ValueError("expected auto, true or false")
    return text == "true"


class GeneralConfig(_Section):
    cloud: Cloud = Field(alias="cloud")
    environment: str = Field("dev", pattern=r"^[a-z][a-z0-9-]{0,15}$", alias="environment")
    # "auto" (the declared default, see keys.UNSET_VALUES): on unless the environment is dev.
    deletion_protection: Annotated[bool | None, BeforeValidator(_switch)] = Field(
        None, alias="deletionProtection"
    )
    tags: dict[str, str] = Field(default_factory=dict, alias="tags")
    kms_key: str | None = Field(None, alias="kmsKey")
    # A managed policy that caps every role the stack creates, where an organisation requires
    # one on roles its teams create.
    permissions_boundary: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]+$",
        alias="permissionsBoundary",
    )

    only_on: ClassVar[dict[str, Cloud]] = {"permissionsBoundary": "aws"}


SECTIONS: dict[str, type[_Section]] = {
    "general": GeneralConfig,
    "broker": BrokerConfig,
    "cluster": ClusterConfig,
    "serving": ServingConfig,
    "network": NetworkConfig,
    "retention": RetentionConfig,
    "pipeline": PipelineConfig,
}


def section_keys(model: type[_Section]) -> set[str]:
    """The flat keys of a section: its fields' aliases."""
    return {field.alias or name for name, field in model.model_fields.items()}


def cluster_default(field_name: str) -> Any:
    """A cluster key's default, for the components' args: one value for the stack and for a
    layer taken alone."""
    return ClusterConfig.model_fields[field_name].get_default(call_default_factory=True)
