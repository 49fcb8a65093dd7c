"""The cluster's service account: Dataproc Worker, and access scoped to this stack's resources."""

from __future__ import annotations

import pytest

from infra.gcp.iam import ClusterIdentity, ClusterIdentityArgs
from tests.infra.gcp.conftest import GcpStack, named, run_layer
from tests.infra.mocks import Recording

ACCOUNT = "gcp:serviceaccount/account:Account"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
SUBSCRIPTION_MEMBER = "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember"
TABLE_MEMBER = "gcp:bigtable/tableIamMember:TableIamMember"
BUCKET = "gcp:storage/bucket:Bucket"


def member(recording: Recording) -> str:
    return f"serviceAccount:{recording.one(ACCOUNT).outputs['email']}"


def test_the_only_project_level_role_is_dataproc_worker(default_stack: Recording):
    grants = default_stack.of_type(PROJECT_MEMBER)
    assert [(g["role"], g["member"], g["project"]) for g in grants] == [
        ("roles/dataproc.worker", member(default_stack), "acme-data")
    ]


def test_no_basic_role_is_granted_anywhere(default_stack: Recording):
    roles = {r["role"] for r in default_stack if "role" in r.inputs}
    assert not roles & {"roles/owner", "roles/editor", "roles/viewer"}
    assert not any(role.endswith(".admin") for role in roles)


@pytest.mark.parametrize("role", ["archive", "checkpoints", "logs", "dead-letters"])
def test_job_reads_and_writes_objects_in_its_data_buckets(default_stack: Recording, role: str):
    grant = named(default_stack, BUCKET_MEMBER, f"kappa-test-{role}-objects")
    assert grant["bucket"] == named(default_stack, BUCKET, f"kappa-test-{role}").outputs["name"]
    assert (grant["role"], grant["member"]) == ("roles/storage.objectUser", member(default_stack))


def test_job_only_reads_the_artifacts_bucket(default_stack: Recording):
    grant = named(default_stack, BUCKET_MEMBER, "kappa-test-artifacts-objects")
    assert grant["bucket"] == named(default_stack, BUCKET, "kappa-test-artifacts").outputs["name"]
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
    assert [(g["bucket"], g["role"]) for g in recording.of_type(BUCKET_MEMBER)] == [
        ("platform-artifacts", "roles/storage.objectViewer")
    ]
    assert [g["subscription"] for g in recording.of_type(SUBSCRIPTION_MEMBER)] == [
        "platform-events-kappa"
    ]
    assert recording.of_type(TABLE_MEMBER) == []
