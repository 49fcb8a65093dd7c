"""Dataproc: Spark 4 image, private shielded nodes, autoscaled Spot secondary workers."""

from __future__ import annotations

from typing import Any

import pytest

from infra.artifacts import Artifact, bootstrap_script, digest
from infra.gcp.cluster import Cluster, ClusterArgs, boot_disk_type
from infra.gcp.propagation import PropagationWaitProvider
from tests.infra.gcp.conftest import (
    CMEK_KEY,
    WHEELHOUSE_BYTES,
    GcpStack,
    agent,
    bucket_name,
    built_wheelhouse,
    named,
    run_layer,
)
from tests.infra.mocks import Recording, Resource

CLUSTER = "gcp:dataproc/cluster:Cluster"
POLICY = "gcp:dataproc/autoscalingPolicy:AutoscalingPolicy"
OBJECT = "gcp:storage/bucketObject:BucketObject"
KEY_GRANT = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"


def config(recording: Recording) -> dict[str, Any]:
    return recording.one(CLUSTER)["clusterConfig"]


def gce(recording: Recording) -> dict[str, Any]:
    return config(recording)["gceClusterConfig"]


def object_uri(obj: Resource) -> str:
    return f"gs://{obj['bucket']}/{obj['name']}"


def test_runs_the_spark_4_image(default_stack: Recording):
    assert config(default_stack)["softwareConfig"]["imageVersion"] == "3.0-debian12"


def test_nodes_have_internal_addresses_only(default_stack: Recording):
    assert gce(default_stack)["internalIpOnly"] is True


def test_nodes_run_in_the_stacks_subnet(default_stack: Recording):
    subnet = default_stack.one("gcp:compute/subnetwork:Subnetwork")
    assert gce(default_stack)["subnetwork"] == subnet.outputs["id"]


def test_nodes_carry_the_tag_the_intra_cluster_firewall_matches(default_stack: Recording):
    firewall = default_stack.one("gcp:compute/firewall:Firewall")
    assert gce(default_stack)["tags"] == firewall["targetTags"] == firewall["sourceTags"]


def test_nodes_run_as_the_dedicated_service_account(default_stack: Recording):
    account = default_stack.one("gcp:serviceaccount/account:Account")
    assert gce(default_stack)["serviceAccount"] == account.outputs["email"]


def test_nodes_are_shielded_vms(default_stack: Recording):
    assert gce(default_stack)["shieldedInstanceConfig"] == {
        "enableSecureBoot": True,
        "enableVtpm": True,
        "enableIntegrityMonitoring": True,
    }


def test_ssh_goes_through_os_login_only(default_stack: Recording):
    metadata = gce(default_stack)["metadata"]
    assert metadata["enable-oslogin"] == "TRUE"
    assert metadata["block-project-ssh-keys"] == "TRUE"


def test_component_gateway_is_off_by_default(default_stack: Recording):
    assert config(default_stack)["endpointConfig"] == {"enableHttpPortAccess": False}


def test_component_gateway_is_a_choice(gcp_stack: GcpStack):
    recording = gcp_stack(clusterComponentGateway=True)
    assert config(recording)["endpointConfig"] == {"enableHttpPortAccess": True}


def test_primary_workers_are_standard_and_sized_by_config(gcp_stack: GcpStack):
    recording = gcp_stack(clusterCoreCount=3, clusterCoreType="n2-highmem-8")
    workers = config(recording)["workerConfig"]
    assert (workers["numInstances"], workers["machineType"]) == (3, "n2-highmem-8")
    assert workers.get("preemptibility") is None  # Dataproc allows only NON_PREEMPTIBLE here


def test_one_master(default_stack: Recording):
    master = config(default_stack)["masterConfig"]
    assert (master["numInstances"], master["machineType"]) == (1, "n2-standard-4")


def test_secondary_workers_are_spot_by_default(default_stack: Recording):
    assert config(default_stack)["preemptibleWorkerConfig"]["preemptibility"] == "SPOT"


@pytest.mark.parametrize(
    ("capacity", "preemptibility"),
    [("preemptible", "PREEMPTIBLE"), ("on_demand", "NON_PREEMPTIBLE")],
)
def test_secondary_worker_preemptibility_is_a_choice(
    gcp_stack: GcpStack, capacity: str, preemptibility: str
):
    recording = gcp_stack(clusterTaskCapacity=capacity)
    assert config(recording)["preemptibleWorkerConfig"]["preemptibility"] == preemptibility


def test_secondary_workers_start_at_the_autoscaling_minimum(gcp_stack: GcpStack):
    recording = gcp_stack(clusterTaskMin=2, clusterTaskMax=6)
    assert config(recording)["preemptibleWorkerConfig"]["numInstances"] == 2


def test_autoscaling_scales_secondary_workers_within_config_limits(gcp_stack: GcpStack):
    policy = gcp_stack(clusterTaskMin=1, clusterTaskMax=10).one(POLICY)
    assert policy["secondaryWorkerConfig"] == {"minInstances": 1, "maxInstances": 10}
    assert policy["location"] == "europe-west1"


def test_autoscaling_never_changes_the_primary_workers(gcp_stack: GcpStack):
    policy = gcp_stack(clusterCoreCount=3).one(POLICY)
    assert policy["workerConfig"] == {"minInstances": 3, "maxInstances": 3}


def test_the_cluster_uses_the_autoscaling_policy(default_stack: Recording):
    policy = default_stack.one(POLICY)
    assert config(default_stack)["autoscalingConfig"] == {"policyUri": policy.outputs["id"]}


def test_autoscaling_decommissions_gracefully(default_stack: Recording):
    yarn = default_stack.one(POLICY)["basicAlgorithm"]["yarnConfig"]
    assert yarn["gracefulDecommissionTimeout"] == "300s"


def test_a_secondary_type_other_than_the_primary_type_is_honoured(gcp_stack: GcpStack):
    recording = gcp_stack(clusterTaskTypes=["e2-standard-8"])
    flexibility = config(recording)["preemptibleWorkerConfig"]["instanceFlexibilityPolicy"]
    assert flexibility == {
        "instanceSelectionLists": [{"machineTypes": ["e2-standard-8"], "rank": 0}]
    }


def test_long_running_cluster_is_never_deleted_for_idleness(default_stack: Recording):
    assert config(default_stack).get("lifecycleConfig") is None


def test_ephemeral_cluster_is_deleted_after_the_idle_timeout(gcp_stack: GcpStack):
    recording = gcp_stack(clusterMode="ephemeral", clusterIdleTimeoutMinutes=45)
    assert config(recording)["lifecycleConfig"] == {"idleDeleteTtl": "2700s"}


def test_disks_are_sized_by_config(gcp_stack: GcpStack):
    cluster_config = config(gcp_stack(clusterDiskGib=200))
    for group in ("masterConfig", "workerConfig", "preemptibleWorkerConfig"):
        assert cluster_config[group]["diskConfig"]["bootDiskSizeGb"] == 200


NODE_GROUPS = ("masterConfig", "workerConfig", "preemptibleWorkerConfig")
# Where Compute Engine takes each boot disk: Persistent Disk on the first and second
# generations and C3, C3D, M3; Hyperdisk Balanced on the rest, several of which (C4, C4A, C4D,
# N4, N4A, N4D, M4, X4) take nothing else.
PERSISTENT_DISK_MACHINES = (
    "n1-standard-4",
    "custom-4-16384",
    "e2-standard-4",
    "n2-standard-4",
    "n2d-highmem-8",
    "t2a-standard-4",
    "t2d-standard-4",
    "c2-standard-8",
    "c2d-standard-4",
    "c3-standard-4",
    "c3d-standard-4",
    "m3-ultramem-32",
)
HYPERDISK_MACHINES = (
    "c4-standard-4",
    "c4a-standard-4",
    "c4d-standard-4",
    "n4-standard-4",
    "n4a-standard-4",
    "n4d-standard-4",
    "m4-megamem-28",
    "x4-480-6t-metal",
    "h3-standard-88",
    "z3-highmem-88",
    "a3-highgpu-8g",
)


def boot_disks(recording: Recording) -> dict[str, str]:
    cluster_config = config(recording)
    return {group: cluster_config[group]["diskConfig"]["bootDiskType"] for group in NODE_GROUPS}


@pytest.mark.parametrize("machine", PERSISTENT_DISK_MACHINES)
def test_persistent_disk_series_boot_from_balanced_persistent_disk(machine: str):
    """Compute Engine defaults these series to Persistent Disk
    (https://docs.cloud.google.com/python/docs/reference/compute/latest/google.cloud.compute_v1.types.AttachedDiskInitializeParams,
    diskType; https://cloud.google.com/compute/docs/disks/persistent-disks); pd-balanced is
    its SSD-backed type at the lower price."""
    assert boot_disk_type(machine) == "pd-balanced"


@pytest.mark.parametrize("machine", HYPERDISK_MACHINES)
def test_hyperdisk_series_boot_from_hyperdisk_balanced(machine: str):
    """Compute Engine defaults every other series to Hyperdisk Balanced, and C4, N4, M4, X4
    and their kin take no Persistent Disk, so pd-balanced would fail the nodes' creation
    (https://docs.cloud.google.com/python/docs/reference/compute/latest/google.cloud.compute_v1.types.AttachedDiskInitializeParams,
    diskType; https://cloud.google.com/compute/docs/disks/hyperdisks)."""
    assert boot_disk_type(machine) == "hyperdisk-balanced"


def test_each_node_group_boots_from_the_disk_its_machine_series_takes(gcp_stack: GcpStack):
    """Dataproc takes hyperdisk-balanced as the boot disk of any node group
    (https://cloud.google.com/dataproc/docs/concepts/compute/dataproc-pd-ssd), so a
    Hyperdisk-only type gets it and the other groups keep pd-balanced."""
    recording = gcp_stack(
        clusterMasterType="n2-standard-4",
        clusterCoreType="c4-standard-8",
        clusterTaskTypes=["n4-standard-8"],
    )
    assert boot_disks(recording) == {
        "masterConfig": "pd-balanced",
        "workerConfig": "hyperdisk-balanced",
        "preemptibleWorkerConfig": "hyperdisk-balanced",
    }


def test_secondary_workers_boot_from_the_disk_of_their_own_type(gcp_stack: GcpStack):
    recording = gcp_stack(clusterCoreType="c4-standard-8", clusterTaskTypes=["n2-standard-8"])
    disks = boot_disks(recording)
    assert (disks["workerConfig"], disks["preemptibleWorkerConfig"]) == (
        "hyperdisk-balanced",
        "pd-balanced",
    )


def test_init_action_is_the_bootstrap_script_in_the_lakes_artifacts_bucket(
    default_stack: Recording,
):
    (action,) = config(default_stack)["initializationActions"]
    artifacts = bucket_name(default_stack, "artifacts")
    assert action["script"] == f"gs://{artifacts}/{bootstrap_script('dataproc-init.sh').key}"
    assert action["script"] == object_uri(named(default_stack, OBJECT, "kappa-test-init-action"))


def test_init_action_has_an_explicit_timeout(default_stack: Recording):
    (action,) = config(default_stack)["initializationActions"]
    assert action["timeoutSec"] == 600


def test_metadata_names_the_built_wheelhouse_in_the_lakes_artifacts_bucket(
    default_stack: Recording,
):
    built, metadata = built_wheelhouse(), gce(default_stack)["metadata"]
    artifacts = bucket_name(default_stack, "artifacts")
    assert metadata["kappa-wheelhouse-uri"] == f"gs://{artifacts}/{built.key}"
    assert metadata["kappa-wheelhouse-uri"] == object_uri(
        named(default_stack, OBJECT, "kappa-test-wheelhouse")
    )
    assert metadata["kappa-wheelhouse-sha256"] == built.sha256 == digest(WHEELHOUSE_BYTES)


def test_spark_history_goes_to_the_logs_and_cluster_files_to_their_own_bucket(
    default_stack: Recording,
):
    assert config(default_stack)["tempBucket"] == bucket_name(default_stack, "logs")
    assert config(default_stack)["stagingBucket"] == bucket_name(default_stack, "staging")


def test_job_logs_also_go_to_cloud_logging(default_stack: Recording):
    properties = config(default_stack)["softwareConfig"]["overrideProperties"]
    assert properties["dataproc:dataproc.logging.stackdriver.job.driver.enable"] == "true"


@pytest.mark.parametrize(
    "grant_type",
    [
        "gcp:storage/bucketIAMMember:BucketIAMMember",
        # Cluster creation refuses an account without the Dataproc agent permissions.
        "gcp:projects/iAMMember:IAMMember",
        "gcp:projects/iAMCustomRole:IAMCustomRole",
    ],
)
def test_cluster_waits_for_its_service_accounts_grants(default_stack: Recording, grant_type: str):
    cluster = default_stack.one(CLUSTER)
    grants = default_stack.of_type(grant_type)
    assert grants
    for grant in grants:
        assert default_stack.depends_on(cluster, grant)


def test_disks_use_google_managed_keys_without_cmek(default_stack: Recording):
    assert config(default_stack).get("encryptionConfig") is None


def cluster_with_key(tmp_script: Artifact) -> Cluster:
    return Cluster(
        "kappa-test",
        ClusterArgs(
            project="acme-data",
            region="europe-west1",
            subnetwork="projects/acme-net/regions/europe-west1/subnetworks/data",
            service_account="dataproc@acme-data.iam.gserviceaccount.com",
            artifacts_bucket="acme-artifacts",
            init_script=tmp_script,
            wheelhouse=built_wheelhouse(),
            kms_key=CMEK_KEY,
        ),
    )


@pytest.fixture
def tmp_script(tmp_path) -> Artifact:
    path = tmp_path / "init.sh"
    path.write_text("#!/bin/bash\n")
    return Artifact(key="bootstrap/init-0123456789abcdef.sh", path=path, sha256="0" * 64)


def bare_args(**artifacts: Any) -> ClusterArgs:
    return ClusterArgs(project="p", region="r", subnetwork="s", service_account="a", **artifacts)


def test_cmek_encrypts_disks_once_compute_and_dataproc_agents_may_use_the_key(
    tmp_script: Artifact,
):
    recording = run_layer(lambda: cluster_with_key(tmp_script))
    members = sorted(g["member"] for g in recording.of_type(KEY_GRANT))
    assert members == sorted([agent("compute"), agent("dataproc")])
    assert config(recording)["encryptionConfig"] == {"kmsKeyName": CMEK_KEY}
    for grant in recording.of_type(KEY_GRANT):
        assert recording.depends_on(recording.one(CLUSTER), grant)


def test_a_cluster_alone_takes_the_subnet_account_and_bucket_it_is_given(tmp_script: Artifact):
    recording = run_layer(lambda: cluster_with_key(tmp_script))
    assert gce(recording)["subnetwork"] == "projects/acme-net/regions/europe-west1/subnetworks/data"
    assert gce(recording)["serviceAccount"] == "dataproc@acme-data.iam.gserviceaccount.com"
    (action,) = config(recording)["initializationActions"]
    assert action["script"] == "gs://acme-artifacts/bootstrap/init-0123456789abcdef.sh"


def test_cluster_args_reject_an_init_script_without_a_bucket(tmp_script: Artifact):
    with pytest.raises(ValueError, match="artifacts_bucket"):
        bare_args(init_script=tmp_script, wheelhouse=built_wheelhouse())


def test_cluster_args_reject_an_init_script_without_the_wheelhouse_it_installs(
    tmp_script: Artifact,
):
    with pytest.raises(ValueError, match=r"ClusterArgs\.wheelhouse is missing"):
        bare_args(artifacts_bucket="acme-artifacts", init_script=tmp_script)


def test_cluster_args_reject_a_wheelhouse_without_the_init_script_that_installs_it():
    with pytest.raises(ValueError, match=r"ClusterArgs\.init_script is missing"):
        bare_args(artifacts_bucket="acme-artifacts", wheelhouse=built_wheelhouse())


def test_a_cluster_without_init_action_or_wheelhouse_sets_neither():
    recording = run_layer(lambda: Cluster("kappa-test", bare_args()))
    assert config(recording).get("initializationActions") is None
    assert "kappa-wheelhouse-uri" not in gce(recording)["metadata"]
    assert recording.of_type(OBJECT) == []


WAIT = "pulumi-python:dynamic/kappa:IamPropagationWait"
GRANT_TYPES = (
    "gcp:projects/iAMMember:IAMMember",
    "gcp:projects/iAMCustomRole:IAMCustomRole",
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember",
    "gcp:bigtable/tableIamMember:TableIamMember",
)


def test_cluster_is_created_only_after_its_grants_had_time_to_propagate(default_stack: Recording):
    """IAM changes are eventually consistent: typically 2 minutes, potentially 7 or longer
    (https://cloud.google.com/iam/docs/access-change-propagation). Dataproc refuses to create a
    cluster whose service account lacks dataproc.agents.* and dataproc.tasks.*
    (https://cloud.google.com/dataproc/docs/concepts/iam/iam, Dataproc Worker), granted here by
    the stack's custom node role bound moments before; so the cluster waits for a wait, and the
    wait for the node role, its binding and every other grant of the account."""
    cluster, wait = default_stack.one(CLUSTER), default_stack.one(WAIT)
    member = (
        f"serviceAccount:{default_stack.one('gcp:serviceaccount/account:Account').outputs['email']}"
    )
    assert default_stack.depends_on(cluster, wait)
    for grant_type in GRANT_TYPES:
        # The account's grants, and the custom roles they bind (which have no member).
        grants = [g for g in default_stack.of_type(grant_type) if g.get("member", member) == member]
        assert grants, grant_type
        for grant in grants:
            assert default_stack.depends_on(wait, grant), grant.name


def test_the_wait_lasts_googles_typical_propagation_time_and_restarts_for_a_new_account(
    default_stack: Recording,
):
    """Policy changes typically propagate in 2 minutes
    (https://cloud.google.com/iam/docs/access-change-propagation); a new service account means
    new grants, so it is a trigger that makes the wait wait again."""
    wait = default_stack.one(WAIT)
    account = default_stack.one("gcp:serviceaccount/account:Account")
    assert wait["seconds"] == 120
    assert wait["triggers"] == {"service_account": account.outputs["email"]}


def test_the_cmek_grants_are_waited_for_too(tmp_script: Artifact):
    """The Compute Engine and Dataproc agents use the key for the nodes' disks when the cluster
    is created (https://cloud.google.com/dataproc/docs/concepts/configuring-clusters/customer-managed-encryption);
    those grants are IAM changes like any other
    (https://cloud.google.com/iam/docs/access-change-propagation)."""
    recording = run_layer(lambda: cluster_with_key(tmp_script))
    wait = recording.one(WAIT)
    assert recording.depends_on(recording.one(CLUSTER), wait)
    for grant in recording.of_type(KEY_GRANT):
        assert recording.depends_on(wait, grant)
    assert wait["triggers"]["kms_key"] == CMEK_KEY


def test_the_wait_is_a_choice_and_zero_leaves_it_out():
    longer = run_layer(lambda: Cluster("kappa-test", bare_args(iam_propagation_seconds=420)))
    assert longer.one(WAIT)["seconds"] == 420
    none = run_layer(lambda: Cluster("kappa-test", bare_args(iam_propagation_seconds=0)))
    assert none.of_type(WAIT) == []


def test_cluster_args_reject_a_negative_wait():
    with pytest.raises(ValueError, match=r"iam_propagation_seconds: got -1"):
        bare_args(iam_propagation_seconds=-1)


def test_the_wait_sleeps_when_created_and_again_only_for_new_grants():
    """Like the time provider's Sleep: a wait on create, none on a later `up` that changes
    nothing; new triggers replace it (https://www.pulumi.com/docs/iac/concepts/resources/dynamic-providers/)."""
    slept: list[float] = []
    provider = PropagationWaitProvider(sleep=slept.append)
    props = {"seconds": 120, "triggers": {"service_account": "a@p.iam.gserviceaccount.com"}}
    created = provider.create(props)
    assert slept == [120.0]
    assert created.outs == props

    assert not provider.diff(created.id, props, dict(props)).changes
    new_account = {**props, "triggers": {"service_account": "b@p.iam.gserviceaccount.com"}}
    assert provider.diff(created.id, props, new_account).replaces == ["triggers"]
    longer = provider.diff(created.id, props, {**props, "seconds": 300})
    assert (longer.changes, longer.replaces) == (True, [])


def property_at(inputs: dict[str, Any], path: str) -> Any:
    """The input a Pulumi property path (`a.b.c`, as ignoreChanges takes it) names."""
    value: Any = inputs
    for part in path.split("."):
        value = value[part]
    return value


def test_the_autoscaled_secondary_worker_count_is_left_to_the_autoscaler(gcp_stack: GcpStack):
    """The autoscaler resizes the secondary workers between the policy's bounds
    (https://cloud.google.com/dataproc/docs/concepts/configuring-clusters/autoscaling), and
    the provider updates preemptible_worker_config.num_instances in place
    (https://www.pulumi.com/registry/packages/gcp/api-docs/dataproc/cluster/): unless Pulumi
    ignores that count (https://www.pulumi.com/docs/iac/concepts/options/ignorechanges/), each
    `up` would resize the cluster back to clusterTaskMin."""
    recording = gcp_stack(clusterTaskMin=1, clusterTaskMax=6)
    cluster = recording.one(CLUSTER)
    assert "clusterConfig.preemptibleWorkerConfig.numInstances" in cluster.ignore_changes
    # The path names the input the autoscaler moves, not a typo Pulumi would ignore silently.
    assert property_at(cluster.inputs, "clusterConfig.preemptibleWorkerConfig.numInstances") == 1
    assert recording.one(POLICY)["secondaryWorkerConfig"] == {"minInstances": 1, "maxInstances": 6}


def test_the_primary_worker_count_stays_managed_since_the_policy_pins_it(gcp_stack: GcpStack):
    """The policy's primary bounds are min = max (https://cloud.google.com/dataproc/docs/concepts/configuring-clusters/autoscaling):
    the autoscaler never moves them, and a new clusterCoreCount must still resize the cluster."""
    recording = gcp_stack(clusterCoreCount=3)
    cluster = recording.one(CLUSTER)
    assert not [
        path
        for path in cluster.ignore_changes
        if "workerConfig.numInstances" in path and "preemptible" not in path
    ]
    assert recording.one(POLICY)["workerConfig"] == {"minInstances": 3, "maxInstances": 3}
