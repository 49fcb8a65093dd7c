"""The Dataproc cluster on Compute Engine that runs the streaming job.

The job's driver runs on the master (Dataproc submits in client mode). Primary workers are
standard VMs, fixed in number: they hold HDFS and the job's baseline executors. Secondary
workers are Spot by default and autoscaled within bounds; they hold no HDFS data, so losing
one costs only the tasks it was running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_gcp as gcp
from pulumi_gcp import dataproc as dp

from infra.artifacts import Artifact
from infra.config import CLOUD_DEFAULTS, cluster_default
from infra.gcp.common import (
    grant_kms,
    object_uri,
    project_number,
    service_agent,
    short_id,
    upload,
)
from infra.gcp.propagation import DEFAULT_PROPAGATION_SECONDS, PropagationWait
from infra.options import child_options

_GCP = CLOUD_DEFAULTS["gcp"]
_Flexibility = dp.ClusterClusterConfigPreemptibleWorkerConfigInstanceFlexibilityPolicyArgs
_Selection = (
    dp.ClusterClusterConfigPreemptibleWorkerConfigInstanceFlexibilityPolicyInstanceSelectionListArgs
)

Preemptibility = Literal["SPOT", "PREEMPTIBLE", "NON_PREEMPTIBLE"]
# The config's clusterTaskCapacity in Dataproc's words, so a cluster taken alone defaults to
# what the stack asks for.
PREEMPTIBILITY: dict[str, Preemptibility] = {
    "spot": "SPOT",
    "preemptible": "PREEMPTIBLE",
    "on_demand": "NON_PREEMPTIBLE",
}

# Boot disks by machine series. Compute Engine's own default boot disk is Persistent Disk on
# the first- and second-generation series and on C3, C3D and M3, and Hyperdisk Balanced on
# every other series (A3, H3, Z3, the fourth generation: C4, C4A, C4D, N4, N4A, N4D, M4, X4,
# and newer: AttachedDiskInitializeParams.diskType in
# https://docs.cloud.google.com/python/docs/reference/compute/latest/google.cloud.compute_v1.types.AttachedDiskInitializeParams).
# Several of those take no Persistent Disk at all, so pd-balanced there fails the nodes'
# creation (https://cloud.google.com/compute/docs/disks/persistent-disks,
# https://cloud.google.com/compute/docs/disks/hyperdisks); Dataproc takes hyperdisk-balanced
# as a boot disk type (https://cloud.google.com/dataproc/docs/concepts/compute/dataproc-pd-ssd).
# A series not listed here is taken to be a newer one, as Compute Engine's default does.
PERSISTENT_DISK_SERIES = frozenset(
    {
        # N1's custom types carry no series prefix (custom-4-16384); f1/g1 are N1 shared-core.
        *("n1", "custom", "f1", "g1"),
        *("n2", "n2d", "e2", "t2a", "t2d", "c2", "c2d", "m1", "m2", "a2", "g2"),
        *("c3", "c3d", "m3"),
    }
)
PERSISTENT_DISK_BOOT = "pd-balanced"
HYPERDISK_BOOT = "hyperdisk-balanced"

# Metadata the initialization action (bootstrap/dataproc-init.sh) reads.
WHEELHOUSE_URI_KEY = "kappa-wheelhouse-uri"
WHEELHOUSE_SHA256_KEY = "kappa-wheelhouse-sha256"

# A node whose initialization action outlives its timeout fails cluster creation. Building
# the job's virtualenv from the wheelhouse takes about 10 s plus the ~100 MB download
# (benchmarks/bootstrap_time.py); the limit is stated here, generously, rather than left to a
# service default that has changed before.
INIT_ACTION_TIMEOUT_SECONDS = 600
# Idle-delete TTL bounds (LifecycleConfig): 5 minutes to 14 days.
IDLE_DELETE_BOUNDS_MINUTES = (5, 14 * 24 * 60)

# Send the job's driver and YARN container logs to Cloud Logging as well as to the
# staging bucket, so they outlive the cluster (https://cloud.google.com/dataproc/docs/guides/logging).
LOGGING_PROPERTIES = {
    "dataproc:dataproc.logging.stackdriver.job.driver.enable": "true",
    "dataproc:dataproc.logging.stackdriver.job.yarn.container.enable": "true",
}

# OS Login puts SSH to the nodes under IAM, and project-wide SSH keys do not apply.
SSH_METADATA = {"enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE"}

# The autoscaling policy resizes the secondary workers (within secondary_min..secondary_max,
# https://cloud.google.com/dataproc/docs/concepts/configuring-clusters/autoscaling), and the
# provider updates numInstances in place (one of the few fields it changes without replacing
# the cluster, https://www.pulumi.com/registry/packages/gcp/api-docs/dataproc/cluster/): so every
# later `up` would resize it back to secondary_min under the autoscaler, unless ignored. The primary
# workers' count stays managed: the policy pins it (min = max = worker_count), so the
# autoscaler never moves it, and a new clusterCoreCount must still resize the cluster.
AUTOSCALED_PROPERTIES = ("clusterConfig.preemptibleWorkerConfig.numInstances",)


@dataclass(frozen=True)
class ClusterArgs:
    project: pulumi.Input[str]
    region: str
    subnetwork: pulumi.Input[str]
    service_account: pulumi.Input[str]
    # Defaults are the stack configuration's, so a layer taken alone matches the platform.
    image_version: str = _GCP["release"]
    master_type: str = _GCP["master_type"]
    worker_type: str = _GCP["core_type"]
    worker_count: int = cluster_default("core_count")
    secondary_type: str = _GCP["task_types"][0]
    secondary_min: int = cluster_default("task_min")
    secondary_max: int = cluster_default("task_max")
    preemptibility: Preemptibility = PREEMPTIBILITY[cluster_default("task_capacity")]
    disk_gib: int = cluster_default("disk_gib")
    # None: each node group's boot disk follows its machine series (boot_disk_type); a type
    # named here goes on every node, and must suit all of their series.
    disk_type: str | None = None
    mode: Literal["long_running", "ephemeral"] = cluster_default("mode")
    idle_delete_minutes: int = cluster_default("idle_timeout_minutes")
    # Where Dataproc keeps job driver output and Spark history; Google picks (and shares)
    # buckets when unset.
    staging_bucket: pulumi.Input[str] | None = None
    temp_bucket: pulumi.Input[str] | None = None
    # The initialization action and the job's wheelhouse, uploaded to this bucket. Both or
    # neither: the action installs the wheelhouse the metadata names, and fails every node's
    # boot without it.
    artifacts_bucket: pulumi.Input[str] | None = None
    init_script: Artifact | None = None
    init_timeout_seconds: int = INIT_ACTION_TIMEOUT_SECONDS
    wheelhouse: Artifact | None = None
    network_tags: tuple[str, ...] = ("kappa-cluster",)
    component_gateway: bool = cluster_default("component_gateway")
    properties: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    kms_key: str | None = None
    # How long to wait, once the service account's grants (this component's `depends_on`) and
    # the CMEK grants exist, before creating the cluster: IAM changes take time to take effect
    # (see infra/gcp/propagation.py). 0 skips the wait, for an account whose grants are old.
    iam_propagation_seconds: int = DEFAULT_PROPAGATION_SECONDS

    def __post_init__(self) -> None:
        if (self.init_script is None) != (self.wheelhouse is None):
            missing = "wheelhouse" if self.wheelhouse is None else "init_script"
            raise ValueError(
                f"ClusterArgs.{missing} is missing: init_script and wheelhouse go together "
                "(the initialization action installs the wheelhouse on every node)"
            )
        if (self.init_script or self.wheelhouse) and self.artifacts_bucket is None:
            raise ValueError("ClusterArgs: init_script and wheelhouse need artifacts_bucket")
        if self.worker_count < 2:
            raise ValueError("ClusterArgs.worker_count: a standard cluster needs 2 or more")
        if not 0 <= self.secondary_min <= self.secondary_max:
            raise ValueError("ClusterArgs: need 0 <= secondary_min <= secondary_max")
        low, high = IDLE_DELETE_BOUNDS_MINUTES
        if self.mode == "ephemeral" and not low <= self.idle_delete_minutes <= high:
            raise ValueError(f"ClusterArgs.idle_delete_minutes must be {low}-{high}")
        if self.iam_propagation_seconds < 0:
            raise ValueError(
                f"ClusterArgs.iam_propagation_seconds: got {self.iam_propagation_seconds}; "
                "expected 0 (no wait) or more"
            )


class Cluster(pulumi.ComponentResource):
    cluster: gcp.dataproc.Cluster
    name: pulumi.Output[str]
    id: pulumi.Output[str]
    master_instance: pulumi.Output[str]
    init_action_uri: pulumi.Output[str] | None
    iam_propagation: PropagationWait | None

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kappa:gcp:Cluster", name, None, opts)
        child = child_options(self, opts)

        kms_grants: list[pulumi.Resource] = []
        if args.kms_key:
            # Persistent disks are encrypted by Compute Engine on Dataproc's behalf: both
            # agents need the key (https://cloud.google.com/dataproc/docs/concepts/configuring-clusters/customer-managed-encryption).
            number = project_number(args.project, self)
            kms_grants = list(
                grant_kms(
                    name,
                    args.kms_key,
                    {
                        "compute": service_agent(number, "compute"),
                        "dataproc": service_agent(number, "dataproc"),
                    },
                    child,
                )
            )

        # The wait starts once every grant the cluster relies on exists: the account's (what
        # this component is told to wait for, its `depends_on`) and the CMEK ones above. A new
        # account or key means new grants, so the wait is replaced and waits again.
        granted: list[pulumi.Resource] = list(kms_grants)
        self.iam_propagation = None
        if args.iam_propagation_seconds:
            triggers: dict[str, pulumi.Input[str]] = {"service_account": args.service_account}
            if args.kms_key:
                triggers["kms_key"] = args.kms_key
            self.iam_propagation = PropagationWait(
                f"{name}-iam-propagation",
                seconds=args.iam_propagation_seconds,
                triggers=triggers,
                opts=child_options(self, opts, *kms_grants),
            )
            granted.append(self.iam_propagation)

        metadata: dict[str, pulumi.Input[str]] = dict(SSH_METADATA)
        initialization_actions = []
        self.init_action_uri = None
        bucket = args.artifacts_bucket
        if args.init_script is not None and bucket is not None:
            script = upload(
                f"{name}-init-action",
                bucket,
                args.init_script,
                "text/x-shellscript",
                child,
            )
            self.init_action_uri = object_uri(script)
            initialization_actions.append(
                gcp.dataproc.ClusterClusterConfigInitializationActionArgs(
                    script=self.init_action_uri, timeout_sec=args.init_timeout_seconds
                )
            )
        self.wheelhouse_uri: pulumi.Output[str] | None = None
        if args.wheelhouse is not None and bucket is not None:
            wheelhouse = upload(
                f"{name}-wheelhouse",
                bucket,
                args.wheelhouse,
                "application/octet-stream",
                child,
            )
            self.wheelhouse_uri = object_uri(wheelhouse)
            metadata[WHEELHOUSE_URI_KEY] = self.wheelhouse_uri
            metadata[WHEELHOUSE_SHA256_KEY] = args.wheelhouse.sha256

        self.autoscaling_policy = gcp.dataproc.AutoscalingPolicy(
            f"{name}-autoscaling",
            project=args.project,
            location=args.region,
            policy_id=short_id(f"{name}-autoscaling", 50),
            worker_config=gcp.dataproc.AutoscalingPolicyWorkerConfigArgs(
                min_instances=args.worker_count, max_instances=args.worker_count
            ),
            secondary_worker_config=gcp.dataproc.AutoscalingPolicySecondaryWorkerConfigArgs(
                min_instances=args.secondary_min, max_instances=args.secondary_max
            ),
            # The autoscaler follows YARN pending memory, which a streaming job creates only
            # when Spark's dynamic allocation (on by default on Dataproc) asks for executors
            # during a backlog; Google's autoscaling guide warns that it is not tuned for
            # Structured Streaming, hence fixed primaries and bounded, cheap secondaries
            # (https://cloud.google.com/dataproc/docs/concepts/configuring-clusters/autoscaling).
            basic_algorithm=gcp.dataproc.AutoscalingPolicyBasicAlgorithmArgs(
                # Micro-batches make YARN's pending memory spiky; a longer cooldown than
                # the 2-minute default keeps the cluster from flapping between batches.
                cooldown_period="300s",
                yarn_config=gcp.dataproc.AutoscalingPolicyBasicAlgorithmYarnConfigArgs(
                    # Catch up on a backlog at once, give capacity back slowly.
                    scale_up_factor=1.0,
                    scale_down_factor=0.5,
                    graceful_decommission_timeout="300s",
                ),
            ),
            opts=child,
        )

        self.cluster = gcp.dataproc.Cluster(
            f"{name}-cluster",
            project=args.project,
            region=args.region,
            labels=args.labels,
            cluster_config=gcp.dataproc.ClusterClusterConfigArgs(
                staging_bucket=args.staging_bucket,
                temp_bucket=args.temp_bucket,
                gce_cluster_config=gcp.dataproc.ClusterClusterConfigGceClusterConfigArgs(
                    subnetwork=args.subnetwork,
                    internal_ip_only=True,
                    service_account=args.service_account,
                    # Access is decided by the account's IAM grants; the broad scope only
                    # stops legacy scopes from narrowing it further.
                    service_account_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                    tags=list(args.network_tags),
                    metadata=metadata,
                    shielded_instance_config=(
                        gcp.dataproc.ClusterClusterConfigGceClusterConfigShieldedInstanceConfigArgs(
                            enable_secure_boot=True,
                            enable_vtpm=True,
                            enable_integrity_monitoring=True,
                        )
                    ),
                ),
                master_config=gcp.dataproc.ClusterClusterConfigMasterConfigArgs(
                    num_instances=1,
                    machine_type=args.master_type,
                    disk_config=gcp.dataproc.ClusterClusterConfigMasterConfigDiskConfigArgs(
                        boot_disk_type=_boot_disk(args, args.master_type),
                        boot_disk_size_gb=args.disk_gib,
                    ),
                ),
                worker_config=gcp.dataproc.ClusterClusterConfigWorkerConfigArgs(
                    num_instances=args.worker_count,
                    machine_type=args.worker_type,
                    disk_config=gcp.dataproc.ClusterClusterConfigWorkerConfigDiskConfigArgs(
                        boot_disk_type=_boot_disk(args, args.worker_type),
                        boot_disk_size_gb=args.disk_gib,
                    ),
                ),
                preemptible_worker_config=_secondary_workers(args),
                autoscaling_config=gcp.dataproc.ClusterClusterConfigAutoscalingConfigArgs(
                    policy_uri=self.autoscaling_policy.id
                ),
                software_config=gcp.dataproc.ClusterClusterConfigSoftwareConfigArgs(
                    image_version=args.image_version,
                    override_properties={**LOGGING_PROPERTIES, **args.properties},
                ),
                initialization_actions=initialization_actions or None,
                lifecycle_config=(
                    gcp.dataproc.ClusterClusterConfigLifecycleConfigArgs(
                        idle_delete_ttl=f"{args.idle_delete_minutes * 60}s"
                    )
                    if args.mode == "ephemeral"
                    else None
                ),
                endpoint_config=gcp.dataproc.ClusterClusterConfigEndpointConfigArgs(
                    enable_http_port_access=args.component_gateway
                ),
                encryption_config=(
                    gcp.dataproc.ClusterClusterConfigEncryptionConfigArgs(kms_key_name=args.kms_key)
                    if args.kms_key
                    else None
                ),
            ),
            opts=pulumi.ResourceOptions.merge(
                child_options(self, opts, *granted),
                pulumi.ResourceOptions(ignore_changes=list(AUTOSCALED_PROPERTIES)),
            ),
        )
        self.name = self.cluster.name
        self.id = self.cluster.id
        # A standard cluster's single master is always named <cluster>-m.
        self.master_instance = self.cluster.name.apply(lambda cluster: f"{cluster}-m")
        self.register_outputs(
            {
                "name": self.name,
                "id": self.id,
                "master": self.master_instance,
                "init_action": self.init_action_uri,
                "autoscaling_policy": self.autoscaling_policy.id,
            }
        )


def boot_disk_type(machine_type: str) -> str:
    """The boot disk type Compute Engine takes for a machine type's series."""
    series = machine_type.split("-", 1)[0]
    return PERSISTENT_DISK_BOOT if series in PERSISTENT_DISK_SERIES else HYPERDISK_BOOT


def _boot_disk(args: ClusterArgs, machine_type: str) -> str:
    return args.disk_type or boot_disk_type(machine_type)


def _secondary_workers(
    args: ClusterArgs,
) -> gcp.dataproc.ClusterClusterConfigPreemptibleWorkerConfigArgs:
    flexibility = None
    if args.secondary_type != args.worker_type:
        # Secondary workers take the primary workers' machine type unless a flexibility
        # policy names another one.
        flexibility = _Flexibility(
            instance_selection_lists=[_Selection(machine_types=[args.secondary_type], rank=0)]
        )
    return gcp.dataproc.ClusterClusterConfigPreemptibleWorkerConfigArgs(
        num_instances=args.secondary_min,
        preemptibility=args.preemptibility,
        # Secondary workers are all of secondary_type (the flexibility policy names only it).
        disk_config=gcp.dataproc.ClusterClusterConfigPreemptibleWorkerConfigDiskConfigArgs(
            boot_disk_type=_boot_disk(args, args.secondary_type),
            boot_disk_size_gb=args.disk_gib,
        ),
        instance_flexibility_policy=flexibility,
    )
