"""The stack's configuration: one typed model, read once, validated before any resource exists.

Stack files hold flat keys (`kappa:brokerRetentionHours`) because Pulumi's project config
schema can type only strings, integers, booleans and arrays; in code the keys are grouped
into sections (`config.broker.retention_hours`). Every problem is reported at once, each
naming the key, the value given and what is allowed.

One module per concern: `sections` (the models), `keys` (the flat keys and Pulumi's declared
defaults), `clouds` (what differs by cloud), `roles` (aws:assumeRoles), `checks` (the rules
over several keys, one module per section), `messages`, `stack` (StackConfig and its one-pass
parse) and `reading` (Pulumi's config). Import from here.
"""

from infra.config.clouds import (
    BROKER_RETENTION_HOURS,
    CLOUD_DEFAULTS,
    GCP_LABEL_PATTERN,
    GCP_LABEL_VALUE_PATTERN,
    IDLE_TIMEOUT_MINUTES,
    INSTANCE_TYPE_PATTERN,
    KMS_KEY_PATTERN,
    MIN_DAYS_IN_COLD_TIER,
    NETWORK_ID_PATTERN,
    SERVING_KINDS,
    Cloud,
    built_serving_kinds,
    machine_architecture,
)
from infra.config.keys import (
    PROJECT,
    REMOVED_KEYS,
    REQUIRED_KEYS,
    UNSET_VALUES,
    all_keys,
    declared_default,
)
from infra.config.messages import ConfigError
from infra.config.reading import load_config
from infra.config.roles import AssumedRole, parse_assume_roles
from infra.config.sections import (
    SECTIONS,
    BrokerConfig,
    ClusterConfig,
    GeneralConfig,
    NetworkConfig,
    PipelineConfig,
    RetentionConfig,
    ServingConfig,
    cluster_default,
)
from infra.config.stack import StackConfig

__all__ = [
    "BROKER_RETENTION_HOURS",
    "CLOUD_DEFAULTS",
    "GCP_LABEL_PATTERN",
    "GCP_LABEL_VALUE_PATTERN",
    "IDLE_TIMEOUT_MINUTES",
    "INSTANCE_TYPE_PATTERN",
    "KMS_KEY_PATTERN",
    "MIN_DAYS_IN_COLD_TIER",
    "NETWORK_ID_PATTERN",
    "PROJECT",
    "REMOVED_KEYS",
    "REQUIRED_KEYS",
    "SECTIONS",
    "SERVING_KINDS",
    "UNSET_VALUES",
    "AssumedRole",
    "BrokerConfig",
    "Cloud",
    "ClusterConfig",
    "ConfigError",
    "GeneralConfig",
    "NetworkConfig",
    "PipelineConfig",
    "RetentionConfig",
    "ServingConfig",
    "StackConfig",
    "all_keys",
    "built_serving_kinds",
    "cluster_default",
    "declared_default",
    "load_config",
    "machine_architecture",
    "parse_assume_roles",
]
