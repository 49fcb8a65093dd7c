"""The cluster's service account: a storage-free project role, and access scoped to this
stack's resources."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.gcp.iam import ClusterIdentity, ClusterIdentityArgs
from tests.infra.gcp.conftest import GcpStack, bucket_name, named, run_layer
from tests.infra.mocks import Recording, Resource

ACCOUNT = "gcp:serviceaccount/account:Account"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
SUBSCRIPTION_MEMBER = "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember"
TABLE_MEMBER = "gcp:bigtable/tableIamMember:TableIamMember"
BUCKET = "gcp:storage/bucket:Bucket"
CLUSTER = "gcp:dataproc/cluster:Cluster"
BUCKET_ROLES = ["archive", "checkpoints", "artifacts", "staging", "logs", "dead-letters"]

# roles/dataproc.worker less its storage permissions and the features this cluster does not
# use (profiler, lineage, Dataproc Resource Manager, serverless): resource -> verbs.
NODE_PERMISSIONS = {
    "dataproc.agents": ("create", "delete", "get", "list", "update"),
    "dataproc.tasks": ("lease", "listInvalidatedLeases", "reportStatus"),
    "logging.logEntries": ("create", "route"),
    "monitoring.metricDescriptors": ("create", "get", "list"),
    "monitoring.monitoredResourceDescriptors": ("get", "list"),
    "monitoring.timeSeries": ("create",),
}


def member(recording: Recording) -> str:
    return f"serviceAccount:{recording.one(ACCOUNT).outputs['email']}"


def custom_role(recording: Recording, role: str) -> Resource:
    """The stack's custom role a binding names (by the role's full name)."""
    found = [r for r in recording.of_type(CUSTOM_ROLE) if r.outputs["name"] == role]
    assert len(found) == 1, f"{role} is not one of the stack's custom roles"
    return found[0]


def node_role(recording: Recording) -> Resource:
    return named(recording, CUSTOM_ROLE, "kappa-test-dataproc-node")


def bucket_metadata_role(recording: Recording) -> Resource:
    return named(recording, CUSTOM_ROLE, "kappa-test-bucket-metadata")


def grants_on(recording: Recording, bucket: str) -> set[tuple[str, str]]:
    return {
        (g["role"], g["member"]) for g in recording.of_type(BUCKET_MEMBER) if g["bucket"] == bucket
    }


def test_the_only_project_level_grant_is_the_stacks_dataproc_node_role(default_stack: Recording):
    grants = default_stack.of_type(PROJECT_MEMBER)
    assert [(g["role"], g["member"], g["project"]) for g in grants] == [
        (node_role(default_stack).outputs["name"], member(default_stack), "acme-data")
    ]


def test_no_project_level_grant_carries_a_storage_permission(default_stack: Recording):
    for grant in default_stack.of_type(PROJECT_MEMBER):
        # A predefined role (roles/...) is not among the stack's custom roles: its permissions
        # cannot be checked here, so it fails too.
        permissions = custom_role(default_stack, grant["role"])["permissions"]
        assert not [p for p in permissions if p.startswith("storage.")]


def test_node_role_holds_the_agent_permissions_and_log_and_metric_writes_only(
    default_stack: Recording,
):
    role = node_role(default_stack)
    expected = [
        f"{resource}.{verb}" for resource, verbs in NODE_PERMISSIONS.items() for verb in verbs
    ]
    assert sorted(role["permissions"]) == sorted(expected)
    assert (role["project"], role["stage"]) == ("acme-data", "GA")


def test_bucket_metadata_role_only_reads_bucket_metadata(default_stack: Recording):
    assert bucket_metadata_role(default_stack)["permissions"] == ["storage.buckets.get"]


def test_custom_role_ids_derive_from_the_stack_so_two_stacks_never_share_one(gcp_stack: GcpStack):
    ids = {
        stack: sorted(r["roleId"] for r in gcp_stack(stack=stack).of_type(CUSTOM_ROLE))
        for stack in ("dev", "prod")
    }
    assert ids["dev"] == ["kappa_dev_bucket_metadata", "kappa_dev_dataproc_node"]
    assert not set(ids["dev"]) & set(ids["prod"])


def test_custom_role_ids_are_valid_for_a_long_stack_name(gcp_stack: GcpStack):
    recording = gcp_stack(stack="feature-branch-with-a-rather-long-name-for-a-stack")
    for role in recording.of_type(CUSTOM_ROLE):
        assert re.fullmatch(r"[a-zA-Z0-9_.]{3,64}", role["roleId"]), role["roleId"]


@pytest.mark.parametrize("role", BUCKET_ROLES)
def test_bucket_metadata_is_readable_on_each_of_the_stacks_buckets(
    default_stack: Recording, role: str
):
    metadata = bucket_metadata_role(default_stack).outputs["name"]
    grants = grants_on(default_stack, bucket_name(default_stack, role))
    assert (metadata, member(default_stack)) in grants


def test_bucket_metadata_role_is_never_granted_on_the_project(default_stack: Recording):
    metadata = bucket_metadata_role(default_stack).outputs["name"]
    assert metadata not in {g["role"] for g in default_stack.of_type(PROJECT_MEMBER)}


@pytest.mark.parametrize("field", ["stagingBucket", "tempBucket"])
def test_nodes_read_and_write_the_clusters_staging_and_temp_buckets(
    default_stack: Recording, field: str
):
    cluster_config: dict[str, Any] = default_stack.one(CLUSTER)["clusterConfig"]
    grants = grants_on(default_stack, cluster_config[field])
    assert grants == {
        ("roles/storage.objectUser", member(default_stack)),
        (bucket_metadata_role(default_stack).outputs["name"], member(default_stack)),
    }


def test_no_basic_role_is_granted_anywhere(default_stack: Recording):
    roles = {r["role"] for r in default_stack if "role" in r.inputs}
    assert not roles & {"roles/owner", "roles/editor", "roles/viewer"}
    assert not any(role.endswith(".admin") for role in roles)


@pytest.mark.parametrize("role", ["archive", "checkpoints", "staging", "logs", "dead-letters"])
def test_job_reads_and_writes_objects_in_its_data_buckets(default_stack: Recording, role: str):
    grant = named(default_stack, BUCKET_MEMBER, f"kappa-test-{role}-objects")
    assert grant["bucket"] == bucket_name(default_stack, role)
    assert (grant["role"], grant["member"]) == ("roles/storage.objectUser", member(default_stack))


def test_job_only_reads_the_artifacts_bucket(default_stack: Recording):
    grant = named(default_stack, BUCKET_MEMBER, "kappa-test-artifacts-objects")
    assert grant["bucket"] == bucket_name(default_stack, "artifacts")
    assert grant["role"] == "roles/storage.objectViewer"


def test_every_bucket_grant_is_on_one_of_the_stacks_buckets(default_stack: Recording):
    own = {b.outputs["name"] for b in default_stack.of_type(BUCKET)}
    assert {g["bucket"] for g in default_stack.of_type(BUCKET_MEMBER)} == own


def test_job_consumes_its_subscription_only(default_stack: Recording):
    grants = [
        g
        for g in default_stack.of_type(SUBSCRIPTION_MEMBER)
        if g["member"] == member(default_stack)
    ]
    subscription = named(default_stack, "gcp:pubsub/subscription:Subscription", "kappa-test-v1")
    assert [(g["subscription"], g["role"]) for g in grants] == [
        (subscription.outputs["name"], "roles/pubsub.subscriber")
    ]


def test_job_writes_each_serving_table_on_the_table_itself(gcp_stack: GcpStack):
    recording = gcp_stack(pipelineVersions=["v1", "v2"], pipelineLiveVersion="v2")
    instance = recording.one("gcp:bigtable/instance:Instance").outputs["name"]
    grants = sorted(
        (g["instanceName"], g["table"], g["role"], g["member"])
        for g in recording.of_type(TABLE_MEMBER)
    )
    assert grants == [
        (instance, "aggregates_v1", "roles/bigtable.user", member(recording)),
        (instance, "aggregates_v2", "roles/bigtable.user", member(recording)),
    ]


def test_account_id_fits_the_30_character_limit(gcp_stack: GcpStack):
    account_id = gcp_stack(stack="feature-branch-with-a-long-name").one(ACCOUNT)["accountId"]
    assert 6 <= len(account_id) <= 30


def test_an_identity_alone_binds_only_what_it_is_given():
    recording = run_layer(
        lambda: ClusterIdentity(
            "kappa-test",
            ClusterIdentityArgs(
                project="acme-data",
                read_buckets={"artifacts": "platform-artifacts"},
                subscriptions={"v1": "platform-events-kappa"},
            ),
        )
    )
    metadata = bucket_metadata_role(recording).outputs["name"]
    assert sorted((g["bucket"], g["role"]) for g in recording.of_type(BUCKET_MEMBER)) == [
        ("platform-artifacts", metadata),
        ("platform-artifacts", "roles/storage.objectViewer"),
    ]
    assert [g["subscription"] for g in recording.of_type(SUBSCRIPTION_MEMBER)] == [
        "platform-events-kappa"
    ]
    assert recording.of_type(TABLE_MEMBER) == []


def test_every_grant_to_the_nodes_account_is_one_of_these(default_stack: Recording):
    """The whole set, binding by binding: a grant added anywhere (objectAdmin on a bucket,
    publisher on the topic, a project role) fails here."""
    account = member(default_stack)
    objects_write, objects_read = "roles/storage.objectUser", "roles/storage.objectViewer"
    metadata = bucket_metadata_role(default_stack).outputs["name"]
    granted = set()
    for grant in default_stack:
        if "iam" in grant.type.lower() and grant.get("member") == account:
            target = grant.get("bucket") or grant.get("subscription") or grant.get("table")
            granted.add((grant.type, grant["role"], target or grant.get("project")))
    expected = {(PROJECT_MEMBER, node_role(default_stack).outputs["name"], "acme-data")}
    for role in BUCKET_ROLES:
        bucket = bucket_name(default_stack, role)
        write = objects_read if role == "artifacts" else objects_write
        expected |= {(BUCKET_MEMBER, write, bucket), (BUCKET_MEMBER, metadata, bucket)}
    expected |= {
        (SUBSCRIPTION_MEMBER, "roles/pubsub.subscriber", "kappa-test-v1-physical"),
        (TABLE_MEMBER, "roles/bigtable.user", "aggregates_v1"),
    }
    assert granted == expected
