"""IAM: the nodes may touch this stack's stream, buckets, tables and key, nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from infra.aws.iam import ClusterIdentity, ClusterIdentityArgs
from infra.aws.stores.dynamodb import node_grants
from tests.infra.mocks import ACCOUNT_ID, Recording, run_program

STREAM = f"arn:aws:kinesis:eu-west-1:{ACCOUNT_ID}:stream/kappa-test-events"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT_ID}:key/kappa-test-key-key-id"


TABLE_V1 = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT_ID}:table/kappa-test-aggregates_v1"


def bucket(role: str) -> str:
    return f"arn:aws:s3:::kappa-test-{role}-physical"


def statements(recording: Recording, policy_name: str) -> dict[str, dict[str, Any]]:
    policy = recording.named(policy_name, "aws:iam/rolePolicy:RolePolicy").json("policy")
    return {s["Sid"]: s for s in policy["Statement"]}


@pytest.fixture(scope="module")
def nodes(default_stack: Recording) -> dict[str, dict[str, Any]]:
    return statements(default_stack, "kappa-test-nodes")


def test_the_node_policy_grants_exactly_what_the_job_and_emr_call(nodes):
    """Every action, statement by statement: an added grant (s3:PutBucketPolicy,
    dynamodb:DeleteItem, kms:Encrypt) fails here. What calls each one: the Python Kinesis
    reader (ListShards, GetShardIterator, GetRecords), Spark's S3 writers, the DynamoDB sink
    (BatchGetItem for the fence, BatchWriteItem, DescribeTable at start), S3/Kinesis/DynamoDB
    and EMR's local-disk encryption with the key (Decrypt, GenerateDataKey), EMR's log pusher
    (PutObject under the cluster's log URI). No Amazon EMR action is granted: nothing on the
    nodes calls EMR's API with the node role.

    Each action is spelled as the service's authorization reference lists it:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonkinesisdatastreams.html,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticmapreduce.html."""
    assert {sid: set(s["Action"]) for sid, s in nodes.items()} == {
        "ReadStream": {"kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"},
        "ListBuckets": {"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"},
        "ReadArtifacts": {"s3:GetObject"},
        "WriteData": {
            "s3:AbortMultipartUpload",
            "s3:DeleteObject",
            "s3:GetObject",
            "s3:ListMultipartUploadParts",
            "s3:PutObject",
        },
        "ServingTables": {
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:DescribeTable",
        },
        "UseStackKey": {"kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"},
        "PushLogs": {"s3:PutObject"},
    }


def test_the_node_policy_names_only_this_stacks_resources(nodes):
    """Each statement names the resource type its actions are authorized on, in the
    "Resource types" column of each service's reference: the stream for the Kinesis reads
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonkinesisdatastreams.html),
    the bucket for the S3 List calls and its objects (`bucket/*`) for the object calls
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html),
    the table for the sink's calls
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html)
    and the key for its use
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html);
    never `*`, never another stack's."""
    assert {sid: s["Resource"] for sid, s in nodes.items()} == {
        "ReadStream": [STREAM],
        "ListBuckets": [bucket(r) for r in ("artifacts", "archive", "checkpoints", "dead-letters")],
        "ReadArtifacts": [f"{bucket('artifacts')}/*"],
        "WriteData": [f"{bucket(r)}/*" for r in ("archive", "checkpoints", "dead-letters")],
        "ServingTables": [TABLE_V1],
        "UseStackKey": [KEY],
        # Only EMR's own log prefix: the logs bucket also holds what the nodes must not touch.
        "PushLogs": [f"{bucket('logs')}/emr/*"],
    }


def test_emrs_kinesis_connector_also_describes_the_stream(aws_stack):
    """The connector calls DescribeStreamSummary besides the Python reader's three reads
    (awslabs/spark-sql-kinesis-connector, KinesisClientConsumerImpl)."""
    nodes = statements(aws_stack(brokerReader="emr-connector"), "kappa-test-nodes")
    assert set(nodes["ReadStream"]["Action"]) == {
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
    }


def test_the_service_role_may_use_the_key_only_as_ebs_encryption_needs(default_stack: Recording):
    """EC2 asks the principal launching instances with encrypted volumes for exactly these
    (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html)."""
    volumes = statements(default_stack, "kappa-test-service")["EncryptNodeVolumes"]
    assert volumes["Resource"] == [KEY]
    assert set(volumes["Action"]) == {
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
    }


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


def test_emr_may_assume_the_service_role_only_for_this_accounts_clusters(default_stack: Recording):
    """Confused-deputy protection, as EMR's guide and terraform-aws-emr's service role have it
    (https://docs.aws.amazon.com/emr/latest/ManagementGuide/iam-emr-role.html)."""
    service = default_stack.named("kappa-test-service", "aws:iam/role:Role")
    (trust,) = service.json("assumeRolePolicy")["Statement"]
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": f"arn:aws:elasticmapreduce:eu-west-1:{ACCOUNT_ID}:*"},
    }


def test_a_permissions_boundary_caps_both_roles_when_the_stack_names_one(
    default_stack: Recording, aws_stack
):
    boundary = "arn:aws:iam::123456789012:policy/team-boundary"
    roles = aws_stack(permissionsBoundary=boundary).of_type("aws:iam/role:Role")
    assert {role.name: role.get("permissionsBoundary") for role in roles} == {
        "kappa-test-nodes": boundary,
        "kappa-test-service": boundary,
    }
    for role in default_stack.of_type("aws:iam/role:Role"):
        assert not role.get("permissionsBoundary")


def test_the_instance_profile_carries_the_role_name(default_stack: Recording):
    profile = default_stack.one("aws:iam/instanceProfile:InstanceProfile")
    assert profile["name"] == profile["role"] == "kappa-test-nodes-physical"


def test_every_pipeline_version_table_is_granted(aws_stack):
    recording = aws_stack(pipelineVersions=["v1", "v2"], pipelineLiveVersion="v1")
    granted = statements(recording, "kappa-test-nodes")["ServingTables"]["Resource"]
    assert sorted(granted) == [
        f"arn:aws:dynamodb:eu-west-1:{ACCOUNT_ID}:table/kappa-test-aggregates_v1",
        f"arn:aws:dynamodb:eu-west-1:{ACCOUNT_ID}:table/kappa-test-aggregates_v2",
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
                stream_arn=stream,
                kms_key_arn=key,
                read_bucket_arns=["arn:aws:s3:::platform-artifacts"],
                write_bucket_arns=["arn:aws:s3:::platform-lake"],
                serving_grants=node_grants([table]),
            ),
        )
    )
    nodes = statements(recording, "kappa-test-nodes")
    assert {sid: s["Resource"] for sid, s in nodes.items()} == {
        "ReadStream": [stream],
        "ListBuckets": ["arn:aws:s3:::platform-artifacts", "arn:aws:s3:::platform-lake"],
        "ReadArtifacts": ["arn:aws:s3:::platform-artifacts/*"],
        "WriteData": ["arn:aws:s3:::platform-lake/*"],
        "ServingTables": [table],
        "UseStackKey": [key],
    }
    service = statements(recording, "kappa-test-service")
    assert service["EncryptNodeVolumes"]["Resource"] == [key]
    node_role = recording.named("kappa-test-nodes", "aws:iam/role:Role")
    assert service["PassNodeRole"]["Resource"] == [node_role.outputs["arn"]]
