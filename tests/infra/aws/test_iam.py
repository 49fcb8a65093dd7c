"""IAM: the nodes may touch this stack's stream, buckets, tables and key, nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from infra.aws.iam import ClusterIdentity, ClusterIdentityArgs
from tests.infra.mocks import ACCOUNT_ID, Recording, run_program

STREAM = f"arn:aws:kinesis:us-east-1:{ACCOUNT_ID}:stream/kappa-test-events"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/kappa-test-key-key-id"


def bucket(role: str) -> str:
    return f"arn:aws:s3:::kappa-test-{role}-physical"


def statements(recording: Recording, policy_name: str) -> dict[str, dict[str, Any]]:
    policy = recording.named(policy_name, "aws:iam/rolePolicy:RolePolicy").json("policy")
    return {s["Sid"]: s for s in policy["Statement"]}


@pytest.fixture(scope="module")
def nodes(default_stack: Recording) -> dict[str, dict[str, Any]]:
    return statements(default_stack, "kappa-test-nodes")


def test_nodes_read_only_this_stream(nodes):
    assert nodes["ReadStream"]["Resource"] == [STREAM]
    assert all(a.startswith("kinesis:") for a in nodes["ReadStream"]["Action"])
    assert not any(a.startswith("kinesis:Put") for a in nodes["ReadStream"]["Action"])


def test_nodes_only_read_artifacts(nodes):
    assert nodes["ReadArtifacts"]["Resource"] == [f"{bucket('artifacts')}/*"]
    assert set(nodes["ReadArtifacts"]["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}


def test_nodes_write_only_the_data_buckets(nodes):
    written = set(nodes["WriteData"]["Resource"])
    assert written == {f"{bucket(r)}/*" for r in ("archive", "checkpoints", "dead-letters", "logs")}
    assert "s3:PutObject" in nodes["WriteData"]["Action"]


def test_nodes_write_only_the_serving_tables(nodes):
    assert nodes["ServingTables"]["Resource"] == [
        f"arn:aws:dynamodb:us-east-1:{ACCOUNT_ID}:table/kappa-test-aggregates_v1"
    ]
    assert "dynamodb:DeleteTable" not in nodes["ServingTables"]["Action"]


def test_nodes_use_only_the_stack_key(nodes):
    assert nodes["UseStackKey"]["Resource"] == [KEY]


def test_nodes_describe_only_their_own_cluster(nodes):
    describe = nodes["DescribeOwnCluster"]
    assert describe["Condition"] == {
        "StringEquals": {"aws:ResourceTag/kappa-cluster": "kappa-test"}
    }
    assert describe["Resource"] == [f"arn:aws:elasticmapreduce:eu-west-1:{ACCOUNT_ID}:cluster/*"]


def test_the_service_role_uses_the_v2_managed_policy(default_stack: Recording):
    attachment = default_stack.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment["policyArn"].endswith("service-role/AmazonEMRServicePolicy_v2")


def test_the_service_role_may_pass_only_the_node_role_to_ec2(default_stack: Recording):
    passing = statements(default_stack, "kappa-test-service")["PassNodeRole"]
    assert passing["Action"] == ["iam:PassRole"]
    assert passing["Resource"] == [f"arn:aws:iam::{ACCOUNT_ID}:role/kappa-test-nodes-physical"]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


def test_roles_are_assumable_only_by_their_service(default_stack: Recording):
    principals = {
        role.name: role.json("assumeRolePolicy")["Statement"][0]["Principal"]
        for role in default_stack.of_type("aws:iam/role:Role")
    }
    assert principals == {
        "kappa-test-nodes": {"Service": "ec2.amazonaws.com"},
        "kappa-test-service": {"Service": "elasticmapreduce.amazonaws.com"},
    }


def test_the_instance_profile_carries_the_role_name(default_stack: Recording):
    profile = default_stack.one("aws:iam/instanceProfile:InstanceProfile")
    assert profile["name"] == profile["role"] == "kappa-test-nodes-physical"


def test_every_pipeline_version_table_is_granted(aws_stack):
    recording = aws_stack(pipelineVersions=["v1", "v2"], pipelineLiveVersion="v1")
    granted = statements(recording, "kappa-test-nodes")["ServingTables"]["Resource"]
    assert sorted(granted) == [
        f"arn:aws:dynamodb:us-east-1:{ACCOUNT_ID}:table/kappa-test-aggregates_v1",
        f"arn:aws:dynamodb:us-east-1:{ACCOUNT_ID}:table/kappa-test-aggregates_v2",
    ]


def test_the_cluster_waits_for_every_grant_of_its_roles(default_stack: Recording):
    """The bootstrap action reads S3 with the node role as soon as the first node boots."""
    cluster = default_stack.one("aws:emr/cluster:Cluster")
    grants = [
        *default_stack.of_type("aws:iam/rolePolicy:RolePolicy"),
        default_stack.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment"),
    ]
    assert len(grants) == 3
    for grant in grants:
        assert default_stack.depends_on(cluster, grant), grant.name


def test_an_identity_alone_grants_only_what_it_is_given():
    stream = "arn:aws:kinesis:eu-west-1:123456789012:stream/platform-events"
    key = "arn:aws:kms:eu-west-1:123456789012:key/platform"
    table = "arn:aws:dynamodb:eu-west-1:123456789012:table/platform-aggregates_v1"
    recording = run_program(
        lambda: ClusterIdentity(
            "kappa-test",
            ClusterIdentityArgs(
                region="eu-west-1",
                stream_arn=stream,
                kms_key_arn=key,
                read_bucket_arns=["arn:aws:s3:::platform-artifacts"],
                write_bucket_arns=["arn:aws:s3:::platform-lake"],
                table_arns=[table],
                cluster_tag=("team-cluster", "analytics"),
            ),
        )
    )
    nodes = statements(recording, "kappa-test-nodes")
    assert {sid: s["Resource"] for sid, s in nodes.items()} == {
        "ReadStream": [stream],
        "EnhancedFanOutConsumers": [f"{stream}/consumer/*"],
        "ListBuckets": ["arn:aws:s3:::platform-artifacts", "arn:aws:s3:::platform-lake"],
        "ReadArtifacts": ["arn:aws:s3:::platform-artifacts/*"],
        "WriteData": ["arn:aws:s3:::platform-lake/*"],
        "ServingTables": [table],
        "UseStackKey": [key],
        "DescribeOwnCluster": [f"arn:aws:elasticmapreduce:eu-west-1:{ACCOUNT_ID}:cluster/*"],
    }
    assert nodes["DescribeOwnCluster"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/team-cluster": "analytics"}
    }
    service = statements(recording, "kappa-test-service")
    assert service["EncryptNodeVolumes"]["Resource"] == [key]
    node_role = recording.named("kappa-test-nodes", "aws:iam/role:Role")
    assert service["PassNodeRole"]["Resource"] == [node_role.outputs["arn"]]
