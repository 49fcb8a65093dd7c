"""What differs between the clouds: defaults, the serving stores, limits and id patterns.

Where a concept is the same on both clouds the key is the same; only these tables differ, so
a rule reads its bound from here rather than branching on the cloud.
"""

from __future__ import annotations

import re
from typing import Any, Literal

Cloud = Literal["aws", "gcp"]

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
# The job needs Spark 4: EMR's Spark 8 releases, Dataproc's 3.x images.
SPARK4_RELEASE_PREFIX: dict[Cloud, str] = {"aws": "emr-spark-8.", "gcp": "3."}

# The architecture's stores on each cloud: the words servingKind knows. Which of them a stack
# builds is the cloud's store registry's to say (built_serving_kinds).
SERVING_KINDS: dict[Cloud, tuple[str, ...]] = {
    "aws": ("dynamodb", "rds", "redshift"),
    "gcp": ("bigtable", "cloudsql", "bigquery"),
}

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


# modifyAckDeadline bounds: https://cloud.google.com/pubsub/docs/lease-management
MIN_ACK_DEADLINE_SECONDS, MAX_ACK_DEADLINE_SECONDS = 10, 600


def ack_deadline_for(trigger_seconds: int) -> int:
    """The job acknowledges a message only once Spark commits the batch holding it.

    A message pulled early in one trigger interval is committed at the end of the next at
    the latest, so leases are sized for two intervals (at least a minute, for slow
    commits); past 600 s, the API's maximum, the reader must extend leases itself.
    """
    return max(60, min(MAX_ACK_DEADLINE_SECONDS, 2 * trigger_seconds))


def machine_architecture(cloud: Cloud, machine: str) -> Literal["x86_64", "aarch64"]:
    """Graviton families carry a `g` after the generation (m7g, c6gn, x2gd) plus a1; Google's
    Arm machines are the Tau T2A and Axion C4A/N4A series."""
    if cloud == "aws":
        family = machine.partition(".")[0]
        arm = family == "a1" or re.match(r"^[a-z]+\d+[a-z]*g", family) is not None
    else:
        arm = machine.split("-")[0] in ("t2a", "c4a", "n4a")
    return "aarch64" if arm else "x86_64"


def built_serving_kinds(cloud: Cloud) -> tuple[str, ...]:
    """The serving kinds the stacks build on `cloud`: those registered in its `STORES`
    (infra/<cloud>/stores/), so registering a store is all it takes for the config to accept
    its kind."""
    # Imported here rather than at the top: a registry pulls in its cloud's provider SDK, so
    # a stack loads only its own cloud's, and infra.config imports without either.
    if cloud == "aws":
        from infra.aws.stores import STORES
    else:
        from infra.gcp.stores import STORES
    return tuple(sorted(STORES))
