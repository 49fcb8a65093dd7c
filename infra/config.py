"""The stack's configuration: one typed model, read once, validated before any resource exists.

Stack files hold flat keys (`kappa:brokerRetentionHours`) because Pulumi's project config
schema can type only strings, integers, booleans and arrays; in code the keys are grouped
into sections (`config.broker.retention_hours`). Every problem is reported at once, each
naming the key, the value given and what is allowed.

Pulumi gives a stack the declared default of every project key the stack does not set, and
refuses to run a stack that lacks a key declared without a default (the CLI's mergeConfig).
So every key but `cloud` declares a default in Pulumi.yaml, and the program cannot tell a
default from a value set on purpose: a value equal to its key's declared default counts as
not set. Keys that are off unless set, or whose default depends on the cloud, declare the
neutral value in UNSET_VALUES.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from kappa.spec import PIPELINE_VERSION_PATTERN
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

PROJECT = "kappa"

Cloud = Literal["aws", "gcp"]


class ConfigError(ValueError):
    """The stack configuration is invalid; `problems` holds one line per offending key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "invalid stack configuration (nothing was created):\n  - " + "\n  - ".join(problems)
        )


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
    read_consumers: int = Field(1, ge=1, le=20, alias="brokerReadConsumers")
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
    watermark_seconds: int = Field(600, ge=0, le=604_800, alias="pipelineWatermarkSeconds")
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
    # "auto" (the declared default, see UNSET_VALUES): on unless the environment is dev.
    deletion_protection: Annotated[bool | None, BeforeValidator(_switch)] = Field(
        None, alias="deletionProtection"
    )
    tags: dict[str, str] = Field(default_factory=dict, alias="tags")
    kms_key: str | None = Field(None, alias="kmsKey")


# The declared default (Pulumi.yaml) of each key whose model default is None: "not set".
UNSET_VALUES: dict[str, Any] = {
    "deletionProtection": "auto",
    "kmsKey": "",
    "brokerShards": 0,
    "clusterRelease": "",
    "clusterMasterType": "",
    "clusterCoreType": "",
    "clusterTaskTypes": [],
    "servingKind": "",
    "servingZone": "",
    "networkVpcId": "",
    "networkSubnetIds": [],
    "pipelineLiveVersion": "",
}
# Keys an earlier version had, and why they went: a stack that still sets one is told so.
REMOVED_KEYS: dict[str, str] = {
    key: (
        "EMR applies a spot timeout only while a cluster is first provisioned, never to the "
        "task fleet added to a running one, so it never acted; remove it from the stack (what "
        "happens when spot capacity runs out: docs/deploying.md)"
    )
    for key in ("clusterSpotTimeoutMinutes", "clusterSpotTimeoutAction")
}
# The one key without a default: a stack must say which cloud it is on.
REQUIRED_KEYS = ("cloud",)

SECTIONS: dict[str, type[_Section]] = {
    "general": GeneralConfig,
    "broker": BrokerConfig,
    "cluster": ClusterConfig,
    "serving": ServingConfig,
    "network": NetworkConfig,
    "retention": RetentionConfig,
    "pipeline": PipelineConfig,
}

# Where a concept is the same on both clouds the key is the same; only defaults differ.
CLOUD_DEFAULTS: dict[Cloud, dict[str, Any]] = {
    "aws": {
        "release": "emr-spark-8.0.0",
        "master_type": "m6i.xlarge",
        "core_type": "m6i.xlarge",
        "task_types": ("m6i.xlarge", "m6a.xlarge", "m5.xlarge", "m5a.xlarge"),
        "serving_kind": "dynamodb",
    },
    "gcp": {
        "release": "3.0-debian12",
        "master_type": "n2-standard-4",
        "core_type": "n2-standard-4",
        "task_types": ("n2-standard-4",),
        "serving_kind": "bigtable",
    },
}

SERVING_KINDS: dict[Cloud, tuple[str, ...]] = {
    "aws": ("dynamodb", "rds", "redshift"),
    "gcp": ("bigtable", "cloudsql", "bigquery"),
}
# Kinds the config accepts as words but the stacks do not build yet.
SERVING_KINDS_NOT_YET_BUILT = ("rds", "redshift", "cloudsql", "bigquery")

BROKER_RETENTION_HOURS: dict[Cloud, tuple[int, int]] = {
    "aws": (24, 8760),  # Kinesis: 24 h to 365 days
    # Pub/Sub topics keep up to 31 days; under a week the log could not be replayed after a
    # stopped job's long weekend.
    "gcp": (168, 744),
}
IDLE_TIMEOUT_MINUTES: dict[Cloud, tuple[int, int]] = {
    "aws": (1, 10_080),  # EMR AutoTerminationPolicy: 60 s to 7 days
    # Dataproc idleDeleteTtl: 5 min to 14 days (gcloud's --max-idle, the same field:
    # https://cloud.google.com/dataproc/docs/concepts/configuring-clusters/scheduled-deletion)
    "gcp": (5, 20_160),
}
INSTANCE_TYPE_PATTERN: dict[Cloud, str] = {
    "aws": r"^[a-z][a-z0-9-]*\.[a-z0-9]+$",
    "gcp": r"^[a-z][a-z0-9]*-[a-z0-9-]+$",
}
KMS_KEY_PATTERN: dict[Cloud, str] = {
    "aws": r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$",
    "gcp": r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$",
}
NETWORK_ID_PATTERN: dict[Cloud, tuple[str, str]] = {
    "aws": (r"^vpc-[0-9a-f]{8,17}$", r"^subnet-[0-9a-f]{8,17}$"),
    "gcp": (
        r"^(projects/[^/]+/global/networks/)?[a-z]([-a-z0-9]{0,61}[a-z0-9])?$",
        r"^(projects/[^/]+/regions/[^/]+/subnetworks/)?[a-z]([-a-z0-9]{0,61}[a-z0-9])?$",
    ),
}
# S3 Standard-IA's minimum stay before a lifecycle transition moves an object on
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html).
MIN_DAYS_IN_COLD_TIER = 30
GCP_LABEL_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
GCP_LABEL_VALUE_PATTERN = r"^[a-z0-9_-]{0,63}$"


# A Go duration as the aws provider takes it ("1h", "90m", "1h30m"), in STS's bounds.
_GO_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ROLE_SESSION_LIMIT = 64
_DURATION_EXPECTED = "expected a duration from 15m to 12h, like 1h or 90m"


class AssumedRole(BaseModel):
    """One entry of `aws:assumeRoles`, the aws provider's own key, under its field names.

    The provider assumes the roles in order, each with the previous one's credentials; the
    stack's own boto3 calls (EMR steps, the protection release) must do the same, or they
    would act with the base credentials, in another account or not at all.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel)

    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
    session_name: str | None = Field(None, pattern=r"^[\w+=,.@-]{2,64}$")
    external_id: str | None = Field(None, min_length=2, max_length=1224, pattern=r"^[\w+=,.@:/-]+$")
    duration: str | None = None
    policy: str | None = None
    policy_arns: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    source_identity: str | None = None

    @field_validator("duration")
    @classmethod
    def _duration_in_bounds(cls, value: str | None) -> str | None:
        if value is not None:
            seconds = _duration_seconds(value)
            if seconds is None or not 900 <= seconds <= 43200:
                raise ValueError(_DURATION_EXPECTED)
        return value

    def sts_parameters(self, default_session_name: str) -> dict[str, Any]:
        """The keyword arguments of STS AssumeRole (boto3) for this role."""
        parameters: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "RoleSessionName": self.session_name or default_session_name,
        }
        optional: dict[str, Any] = {
            "ExternalId": self.external_id,
            "DurationSeconds": _duration_seconds(self.duration) if self.duration else None,
            "Policy": self.policy,
            "PolicyArns": [{"arn": arn} for arn in self.policy_arns] or None,
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()] or None,
            "TransitiveTagKeys": list(self.transitive_tag_keys) or None,
            "SourceIdentity": self.source_identity,
        }
        return parameters | {k: v for k, v in optional.items() if v is not None}


def _duration_seconds(text: str) -> int | None:
    match = _GO_DURATION.match(text)
    if not text or match is None:
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_assume_roles(value: Any) -> tuple[tuple[AssumedRole, ...], list[str]]:
    """`aws:assumeRoles` as the provider reads it: the roles, or one problem per bad field."""
    if value is None:
        return (), []
    try:
        return TypeAdapter(tuple[AssumedRole, ...]).validate_python(value), []
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = _path(item["loc"])
            if item["type"] == "missing":
                problems.append(f"aws:assumeRoles{where} is required")
                continue
            field = str(item["loc"][-1]) if item["loc"] else ""
            expected = _ROLE_EXPECTATIONS.get(field, item["msg"])
            if item["type"] == "tuple_type":
                expected = "expected a list of roles, each an object with a roleArn"
            elif item["type"] == "model_type":
                expected = "expected an object with a roleArn"
            elif item["type"] == "extra_forbidden":
                fields = ", ".join(to_camel(name) for name in AssumedRole.model_fields)
                expected = f"not a field of an assumed role ({fields})"
            problems.append(f"aws:assumeRoles{where}: got {item['input']!r}; {expected}")
        return (), problems


_ROLE_EXPECTATIONS = {
    "roleArn": "expected an IAM role ARN like arn:aws:iam::123456789012:role/deploy",
    "sessionName": "expected 2 to 64 letters, digits or +=,.@_-",
    "externalId": "expected 2 to 1224 letters, digits or +=,.@:/_-",
    "duration": _DURATION_EXPECTED,
}


class StackConfig(BaseModel):
    """The whole validated configuration of one stack."""

    model_config = ConfigDict(frozen=True)

    cloud: Cloud
    region: str
    project: str | None  # the GCP project; None on AWS
    stack: str
    # aws:profile and aws:assumeRoles, for what calls AWS through boto3 rather than the
    # provider (EMR steps, the protection release).
    aws_profile: str | None = None
    aws_assume_roles: tuple[AssumedRole, ...] = ()
    general: GeneralConfig
    broker: BrokerConfig
    cluster: ClusterConfig
    serving: ServingConfig
    network: NetworkConfig
    retention: RetentionConfig
    pipeline: PipelineConfig

    @property
    def environment(self) -> str:
        return self.general.environment

    @property
    def aws_role_chain(self) -> list[dict[str, Any]]:
        """STS AssumeRole arguments for each of `aws:assumeRoles`, in order."""
        session = f"{PROJECT}-{self.stack}"[:_ROLE_SESSION_LIMIT]
        return [role.sts_parameters(session) for role in self.aws_assume_roles]

    @property
    def deletion_protection(self) -> bool:
        """On unless set: only a `dev` environment may lose stateful resources with the stack."""
        if self.general.deletion_protection is not None:
            return self.general.deletion_protection
        return self.general.environment != "dev"

    @property
    def release(self) -> str:
        return self.cluster.release or CLOUD_DEFAULTS[self.cloud]["release"]

    @property
    def master_type(self) -> str:
        return self.cluster.master_type or CLOUD_DEFAULTS[self.cloud]["master_type"]

    @property
    def core_type(self) -> str:
        return self.cluster.core_type or CLOUD_DEFAULTS[self.cloud]["core_type"]

    @property
    def task_types(self) -> tuple[str, ...]:
        return self.cluster.task_types or CLOUD_DEFAULTS[self.cloud]["task_types"]

    @property
    def node_machine(self) -> Literal["x86_64", "aarch64"]:
        """The nodes' CPU, for the wheelhouse; the config refuses a mix of architectures."""
        return machine_architecture(self.cloud, self.master_type)

    @property
    def serving_zone(self) -> str:
        """GCP: the Bigtable cluster's zone; zone b exists in every Google Cloud region."""
        return self.serving.zone or f"{self.region}-b"

    @property
    def serving_kind(self) -> str:
        return self.serving.kind or CLOUD_DEFAULTS[self.cloud]["serving_kind"]

    @property
    def tags(self) -> dict[str, str]:
        """User tags plus the ones that say which stack owns a resource."""
        base = {"project": PROJECT, "stack": self.stack, "environment": self.environment}
        return {**base, **self.general.tags}

    @classmethod
    def parse(
        cls,
        values: Mapping[str, Any],
        *,
        region: str | None,
        stack: str,
        project: str | None = None,
        aws_profile: str | None = None,
        aws_assume_roles: Any = None,
    ) -> StackConfig:
        """Validate flat project keys (without the `kappa:` prefix); raise ConfigError."""
        values = {
            key: decoded
            for key, value in values.items()
            if not _is_declared_default(key, decoded := _decode(value))
        }
        problems = _unknown_keys(values)
        sections: dict[str, _Section] = {}
        for section_name, model in SECTIONS.items():
            own = {k: v for k, v in values.items() if k in _aliases(model)}
            try:
                sections[section_name] = model.model_validate(own)
            except ValidationError as error:
                problems += [_describe(item, own) for item in error.errors()]
        general = sections.get("general")
        if general is None or len(sections) < len(SECTIONS):
            raise ConfigError(problems)
        cloud = general.cloud  # type: ignore[attr-defined]
        region_problems = _check_region(cloud, region, project)
        roles, role_problems = parse_assume_roles(aws_assume_roles)
        if region_problems or role_problems:
            raise ConfigError(problems + region_problems + role_problems)
        config = cls(
            cloud=cloud,
            region=region or "",
            project=project,
            stack=stack,
            aws_profile=aws_profile,
            aws_assume_roles=roles,
            **sections,  # type: ignore[arg-type]
        )
        problems += _cross_checks(config, set(values))
        if problems:
            raise ConfigError(problems)
        return config


def machine_architecture(cloud: Cloud, machine: str) -> Literal["x86_64", "aarch64"]:
    """Graviton families carry a `g` after the generation (m7g, c6gn, x2gd) plus a1; Google's
    Arm machines are the Tau T2A and Axion C4A/N4A series."""
    if cloud == "aws":
        family = machine.partition(".")[0]
        arm = family == "a1" or re.match(r"^[a-z]+\d+[a-z]*g", family) is not None
    else:
        arm = machine.split("-")[0] in ("t2a", "c4a", "n4a")
    return "aarch64" if arm else "x86_64"


def load_config() -> StackConfig:
    """Read this stack's configuration from Pulumi; call once, before declaring resources."""
    import pulumi

    values = _project_config(pulumi)
    cloud = values.get("cloud")
    provider = pulumi.Config(cloud) if cloud in ("aws", "gcp") else None
    region = provider.get("region") if provider else None
    project = provider.get("project") if provider and cloud == "gcp" else None
    aws = provider if provider and cloud == "aws" else None
    return StackConfig.parse(
        values,
        region=region,
        stack=pulumi.get_stack(),
        project=project,
        aws_profile=aws.get("profile") if aws else None,
        aws_assume_roles=aws.get_object("assumeRoles") if aws else None,
    )


def _project_config(pulumi: Any) -> dict[str, Any]:
    """All `kappa:` keys set for the stack, so that misspelt keys are caught, not ignored.

    pulumi.Config can only look keys up by name; the full map lives in the runtime's config
    (set by the language host) or in PULUMI_CONFIG (older hosts), so both are read.
    """
    from pulumi.runtime import config as runtime_config

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{PROJECT}:"
    return {k.removeprefix(prefix): v for k, v in merged.items() if k.startswith(prefix)}


@functools.cache
def all_keys() -> dict[str, tuple[type[_Section], str]]:
    """Every flat key, with its section model and field name (built once; do not modify)."""
    keys = {}
    for model in SECTIONS.values():
        for field_name, field in model.model_fields.items():
            keys[field.alias or field_name] = (model, field_name)
    return keys


def declared_default(key: str) -> Any:
    """The default Pulumi.yaml declares for `key`, as Pulumi would hand it over (JSON)."""
    if key in UNSET_VALUES:
        return UNSET_VALUES[key]
    model, field_name = all_keys()[key]
    default = model.model_fields[field_name].get_default(call_default_factory=True)
    return list(default) if isinstance(default, tuple) else default


def _is_declared_default(key: str, value: Any) -> bool:
    if key in REQUIRED_KEYS or key not in all_keys():
        return False
    given, default = _plain(value), _plain(declared_default(key))
    # By type as well: True == 1 in Python, but `true` is no integer's default.
    return type(given) is type(default) and given == default


def _plain(value: Any) -> Any:
    """Pulumi hands scalars over as text ("2", "false"): compare them as the JSON they are."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return list(value) if isinstance(value, tuple) else value


def _aliases(model: type[_Section]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def _decode(value: Any) -> Any:
    # Pulumi hands arrays and objects to the program as JSON text.
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _unknown_keys(values: Mapping[str, Any]) -> list[str]:
    known = list(all_keys())
    problems = []
    for key in sorted(set(values) - set(known)):
        if key in REMOVED_KEYS:
            problems.append(f"{PROJECT}:{key} was removed: {REMOVED_KEYS[key]}")
            continue
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {PROJECT}:{close[0]}?" if close else ""
        problems.append(f"{PROJECT}:{key} is not a key of this project{hint}")
    return problems


def _path(parts: Sequence[Any]) -> str:
    """Where in a value a problem is, as in `tags.owner` or `[0].roleArn`."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)


def _describe(item: Any, given: Mapping[str, Any]) -> str:
    location = list(item["loc"])
    key = str(location.pop(0)) if location else "(section)"
    suffix = _path(location)
    if item["type"] == "missing":
        return f"{PROJECT}:{key} is required: {item['msg']}"
    value = given.get(key, item.get("input"))
    return f"{PROJECT}:{key}{suffix}: got {value!r}; {item['msg']}"


def _check_region(cloud: Cloud, region: str | None, project: str | None) -> list[str]:
    problems = []
    if not region:
        problems.append(
            f"{cloud}:region is required: set it with `pulumi config set {cloud}:region`"
        )
    elif not re.match(r"^[a-z]+(-[a-z]+)+-?\d+$", region):
        problems.append(f"{cloud}:region: got {region!r}; expected a region name like us-east-1")
    if cloud == "gcp" and not project:
        problems.append("gcp:project is required: set it with `pulumi config set gcp:project`")
    return problems


def _cross_checks(config: StackConfig, given: set[str]) -> list[str]:
    """Rules that depend on the cloud or on several keys at once."""
    cloud = config.cloud
    problems: list[str] = []

    def bad(key: str, value: Any, expected: str) -> None:
        problems.append(f"{PROJECT}:{key}: got {value!r}; {expected}")

    for model in SECTIONS.values():
        for key, owner in model.only_on.items():
            if key in given and owner != cloud:
                problems.append(
                    f"{PROJECT}:{key} applies to {owner} stacks only (cloud is {cloud})"
                )

    low, high = BROKER_RETENTION_HOURS[cloud]
    if not low <= config.broker.retention_hours <= high:
        bad(
            "brokerRetentionHours", config.broker.retention_hours, f"{cloud} allows {low} to {high}"
        )
    if config.broker.shards is not None and config.broker.mode == "on_demand":
        bad("brokerShards", config.broker.shards, "leave it unset when brokerMode is on_demand")

    cluster = config.cluster
    low, high = IDLE_TIMEOUT_MINUTES[cloud]
    if not low <= cluster.idle_timeout_minutes <= high:
        bad(
            "clusterIdleTimeoutMinutes",
            cluster.idle_timeout_minutes,
            f"{cloud} allows {low}-{high}",
        )
    release_prefix = {"aws": "emr-spark-8.", "gcp": "3."}[cloud]
    if not config.release.startswith(release_prefix):
        bad(
            "clusterRelease",
            config.release,
            f"the job needs Spark 4: use a release starting with {release_prefix!r}",
        )
    for key, types in (
        ("clusterMasterType", (config.master_type,)),
        ("clusterCoreType", (config.core_type,)),
        ("clusterTaskTypes", config.task_types),
    ):
        for machine in types:
            if not re.match(INSTANCE_TYPE_PATTERN[cloud], machine):
                bad(key, machine, f"not a {cloud} machine type")
    machines = {config.master_type, config.core_type, *config.task_types}
    architectures = {machine_architecture(cloud, m) for m in machines}
    if len(architectures) > 1:
        bad(
            "clusterTaskTypes",
            sorted(machines),
            "master, core and task machines must share one CPU architecture (x86_64 or Arm): "
            "the job's dependencies are built for one",
        )
    if len(set(config.task_types)) != len(config.task_types):
        bad("clusterTaskTypes", list(config.task_types), "list each type once")
    if cloud == "aws" and cluster.task_capacity == "spot" and not 3 <= len(config.task_types) <= 30:
        bad(
            "clusterTaskTypes",
            list(config.task_types),
            "a spot task fleet needs 3 to 30 instance types to find capacity",
        )
    if cloud == "aws" and len({machine.partition(".")[2] for machine in config.task_types}) > 1:
        bad(
            "clusterTaskTypes",
            list(config.task_types),
            "use one size (e.g. all xlarge): fleet capacity counts instances",
        )
    if cloud == "gcp" and len(config.task_types) != 1:
        bad("clusterTaskTypes", list(config.task_types), "Dataproc secondary workers take one type")
    if cloud == "aws" and cluster.task_capacity == "preemptible":
        bad("clusterTaskCapacity", cluster.task_capacity, "aws allows spot or on_demand")
    if cluster.task_min > cluster.task_max:
        bad(
            "clusterTaskMin",
            cluster.task_min,
            f"must not exceed clusterTaskMax ({cluster.task_max})",
        )
    if cloud == "gcp" and cluster.core_count < 2:
        bad("clusterCoreCount", cluster.core_count, "a standard Dataproc cluster needs 2 or more")

    kind = config.serving_kind
    if kind not in SERVING_KINDS[cloud]:
        bad("servingKind", kind, f"{cloud} serves from one of {list(SERVING_KINDS[cloud])}")
    elif kind in SERVING_KINDS_NOT_YET_BUILT:
        bad("servingKind", kind, f"not built yet; use {CLOUD_DEFAULTS[cloud]['serving_kind']}")
    if config.serving.min_nodes > config.serving.max_nodes:
        bad("servingMinNodes", config.serving.min_nodes, "must not exceed servingMaxNodes")
    # Bigtable autoscaling's range spans a factor of 10 at most
    # (https://cloud.google.com/bigtable/docs/autoscaling; infra/gcp/serving.py has the quote).
    ceiling = 10 * config.serving.min_nodes
    if cloud == "gcp" and config.serving.max_nodes > ceiling:
        bad(
            "servingMaxNodes",
            config.serving.max_nodes,
            f"Bigtable autoscaling allows at most 10 x servingMinNodes ({ceiling})",
        )

    problems += _check_network(config)
    problems += _check_tags(cloud, config.general.tags)
    # A Dataproc cluster takes at most 32 labels (Cluster.labels,
    # https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.clusters), and
    # the gcp provider adds goog-pulumi-provisioned to the stack's own
    # (https://www.pulumi.com/registry/packages/gcp/how-to-guides/8-0-migration/).
    if cloud == "gcp" and len(config.tags) + 1 > 32:
        added = [key for key in config.tags if key not in config.general.tags]
        problems.append(
            f"{PROJECT}:tags: got {len(config.general.tags)} tags; a Dataproc cluster takes at "
            f"most 32 labels, the stack adds {len(added)} ({', '.join(added)}) and the gcp "
            f"provider 1 (goog-pulumi-provisioned): at most {31 - len(added)} of your own"
        )

    problems += _check_key(config)
    if cloud == "gcp" and not config.serving_zone.startswith(f"{config.region}-"):
        bad("servingZone", config.serving_zone, f"expected a zone of {config.region}")

    retention = config.retention
    # S3 moves an object out of Standard-IA only after 30 days in it, and refuses a lifecycle
    # rule that asks sooner; GCS has no such rule, but the same keys mean the same there.
    earliest_archive = retention.archive_cold_after_days + MIN_DAYS_IN_COLD_TIER
    if retention.archive_archive_after_days < earliest_archive:
        bad(
            "archiveArchiveAfterDays",
            retention.archive_archive_after_days,
            f"must be at least archiveColdAfterDays + {MIN_DAYS_IN_COLD_TIER} "
            f"({earliest_archive}): objects stay {MIN_DAYS_IN_COLD_TIER} days in the cold tier "
            "before the archive tier",
        )
    expire = retention.archive_expire_after_days
    if expire and expire <= retention.archive_archive_after_days:
        bad("archiveExpireAfterDays", expire, "0 (keep) or later than archiveArchiveAfterDays")

    problems += _check_pipeline(config.pipeline)
    return problems


def _check_network(config: StackConfig) -> list[str]:
    network, cloud = config.network, config.cloud
    problems = []
    if (network.vpc_id is None) != (network.subnet_ids is None):
        problems.append(
            f"{PROJECT}:networkVpcId and {PROJECT}:networkSubnetIds go together: "
            "set both to bring your own network, or neither to create one"
        )
    vpc_pattern, subnet_pattern = NETWORK_ID_PATTERN[cloud]
    if network.vpc_id is not None and not re.match(vpc_pattern, network.vpc_id):
        problems.append(f"{PROJECT}:networkVpcId: got {network.vpc_id!r}; not a {cloud} network id")
    for subnet in network.subnet_ids or ():
        if not re.match(subnet_pattern, subnet):
            problems.append(f"{PROJECT}:networkSubnetIds: got {subnet!r}; not a {cloud} subnet id")
    if network.bring_your_own and network.egress == "nat":
        problems.append(
            f"{PROJECT}:networkEgress: got 'nat'; a network brought along (networkVpcId) keeps "
            "its own egress, so leave it at none"
        )
    if cloud == "gcp" and network.subnet_ids and len(network.subnet_ids) != 1:
        problems.append(f"{PROJECT}:networkSubnetIds: a Dataproc cluster uses exactly one subnet")
    try:
        cidr = ipaddress.IPv4Network(network.cidr)
        if not (cidr.is_private and 16 <= cidr.prefixlen <= 24):
            raise ValueError
    except ValueError:
        problems.append(
            f"{PROJECT}:networkCidr: got {network.cidr!r}; expected a private IPv4 range /16 to /24"
        )
    return problems


def _check_key(config: StackConfig) -> list[str]:
    key, cloud = config.general.kms_key, config.cloud
    if not key:
        return []
    if not re.match(KMS_KEY_PATTERN[cloud], key):
        return [
            f"{PROJECT}:kmsKey: got {key!r}; expected a key of the form {KMS_KEY_PATTERN[cloud]}"
        ]
    # A stream, bucket, table or disk takes a key from its own region only.
    location = key.split(":")[3] if cloud == "aws" else key.split("/")[3]
    if location != config.region:
        return [
            f"{PROJECT}:kmsKey: got a key in {location!r}; the key must be in the stack's "
            f"region ({config.region})"
        ]
    return []


def _check_tags(cloud: Cloud, tags: dict[str, str]) -> list[str]:
    problems = []
    for key, value in tags.items():
        if cloud == "aws":
            if key.lower().startswith("aws:") or not 1 <= len(key) <= 128 or len(value) > 256:
                problems.append(
                    f"{PROJECT}:tags.{key}: AWS tags need a key of 1-128 characters not starting "
                    "with 'aws:' and a value of at most 256"
                )
        elif not re.match(GCP_LABEL_PATTERN, key) or not re.match(GCP_LABEL_VALUE_PATTERN, value):
            problems.append(
                f"{PROJECT}:tags.{key}: got {value!r}; GCP labels are lower-case letters, digits, "
                "'_' and '-', keys starting with a letter, at most 63 characters"
            )
    return problems


def _check_pipeline(pipeline: PipelineConfig) -> list[str]:
    problems = []
    for version in pipeline.versions:
        if not re.match(PIPELINE_VERSION_PATTERN, version):
            problems.append(
                f"{PROJECT}:pipelineVersions: got {version!r}; expected {PIPELINE_VERSION_PATTERN}"
            )
    if len(set(pipeline.versions)) != len(pipeline.versions):
        problems.append(f"{PROJECT}:pipelineVersions: got {list(pipeline.versions)}; repeated")
    live = pipeline.live_version
    if live is not None and live not in pipeline.versions:
        problems.append(
            f"{PROJECT}:pipelineLiveVersion: got {live!r}; must be one of {list(pipeline.versions)}"
        )
    if live is None and len(pipeline.versions) > 1:
        problems.append(
            f"{PROJECT}:pipelineLiveVersion is required when several versions run "
            f"({list(pipeline.versions)}): name the one readers use"
        )
    position = pipeline.starting_position
    if position not in ("earliest", "latest"):
        try:
            parsed = datetime.fromisoformat(position)
            if parsed.tzinfo is None:
                raise ValueError
        except ValueError:
            problems.append(
                f"{PROJECT}:pipelineStartingPosition: got {position!r}; expected earliest, latest "
                "or an ISO-8601 time with a zone, like 2026-01-31T00:00:00Z"
            )
    fields = [
        pipeline.event_id_field,
        pipeline.event_key_field,
        pipeline.event_time_field,
        *pipeline.event_value_fields,
    ]
    repeated = sorted({f for f in fields if fields.count(f) > 1})
    if repeated:
        problems.append(f"{PROJECT}:eventValueFields: event field names repeat: {repeated}")
    return problems
