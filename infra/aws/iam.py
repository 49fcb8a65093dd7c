"""The cluster's two identities: EMR's service role and the nodes' instance profile.

The nodes' permissions are a customer-managed policy naming this stack's stream, buckets,
tables and key: AWS's AmazonElasticMapReduceforEC2Role grants `s3:*` and more on `*` and is
on its way out with no managed replacement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from infra.aws.policy import assume_role_policy, document, statement, trust_policy
from infra.options import child_options

EMR_SERVICE_POLICY_V2 = "arn:aws:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"

# Exactly what each reader calls (jobs/kappa/sources/kinesis.py; EMR's connector,
# awslabs/spark-sql-kinesis-connector KinesisClientConsumerImpl, polling mode). Enhanced
# fan-out is a spec-only option the stack never turns on, so no consumer is granted.
KINESIS_READ: dict[str, tuple[str, ...]] = {
    "python": ("kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"),
    "emr-connector": (
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
    ),
}
S3_READ = ("s3:GetObject",)
# Spark's writers (archive, dead letters, checkpoints) commit by writing, renaming (copy and
# delete) and cleaning up multipart uploads.
S3_WRITE = (
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:GetObject",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
)
S3_LIST = ("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads")
# EMR's log pusher on each node uploads to the cluster's log URI with the node's role.
S3_PUSH_LOGS = ("s3:PutObject",)
# Reading what S3, Kinesis and DynamoDB encrypted with the key (Decrypt), writing to them and
# EMR's local-disk encryption (GenerateDataKey); nothing on a node encrypts directly.
KMS_USE = ("kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey")
# What EC2 asks of the principal that launches instances with encrypted EBS volumes: EMR
# launches them with its service role
# (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html).
KMS_EBS_LAUNCH = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)

# A serving store's grant to the nodes: one statement of the node policy, with a Sid of its
# own and only the store's resources (infra/aws/stores/, Serving.grants).
NodeGrant = dict[str, Any]


@dataclass(frozen=True)
class ClusterIdentityArgs:
    stream_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    # Buckets the job reads only (artifacts) and buckets it writes (archive, checkpoints, ...).
    read_bucket_arns: Sequence[pulumi.Input[str]]
    write_bucket_arns: Sequence[pulumi.Input[str]]
    # The cluster's log URI as an S3 object ARN prefix (arn:aws:s3:::logs/emr/): the nodes
    # may add objects under it and nothing else in that bucket.
    log_arn_prefix: pulumi.Input[str] | None = None
    # Which Kinesis reader the job uses (the spec's source.reader): it decides the read calls.
    stream_reader: Literal["python", "emr-connector"] = "python"
    # The serving store's statements (Serving.grants): what the sink calls on its tables.
    serving_grants: Sequence[NodeGrant] = ()
    # The region of the clusters that may assume the service role (None: any region of the
    # deploying account), for the trust policy's aws:SourceArn.
    region: str | None = None
    # A managed policy that caps both roles, where an organisation requires one.
    permissions_boundary: pulumi.Input[str] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


class ClusterIdentity(pulumi.ComponentResource):
    service_role_arn: pulumi.Output[str]
    instance_role_arn: pulumi.Output[str]
    instance_profile_arn: pulumi.Output[str]
    node_policy: pulumi.Output[str]

    def __init__(
        self, name: str, args: ClusterIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kappa:aws:ClusterIdentity", name, None, opts)
        child = child_options(self, opts)
        tags = dict(args.tags)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition

        instance_role = aws.iam.Role(
            f"{name}-nodes",
            # EC2 sets no source context when an instance assumes its profile's role, so the
            # trust policy cannot narrow it further.
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            description="EMR nodes of this Kappa stack: its stream, buckets, tables, key",
            permissions_boundary=args.permissions_boundary,
            tags=tags,
            opts=child,
        )
        self.node_policy = self._node_policy(args)
        node_grants = aws.iam.RolePolicy(
            f"{name}-nodes", role=instance_role.id, policy=self.node_policy, opts=child
        )
        # EMR requires the instance profile to carry the same name as its role.
        profile = aws.iam.InstanceProfile(
            f"{name}-nodes", name=instance_role.name, role=instance_role.name, opts=child
        )

        service_role = aws.iam.Role(
            f"{name}-service",
            # Confused-deputy protection: EMR may assume the role only for clusters of this
            # account (and region), as EMR's guide and terraform-aws-emr's service role do
            # (https://docs.aws.amazon.com/emr/latest/ManagementGuide/iam-emr-role.html).
            assume_role_policy=trust_policy(
                "elasticmapreduce.amazonaws.com",
                {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {
                        "aws:SourceArn": pulumi.Output.format(
                            "arn:{0}:elasticmapreduce:{1}:{2}:*",
                            partition,
                            args.region or "*",
                            account,
                        )
                    },
                },
            ),
            description="EMR service role of this Kappa stack",
            permissions_boundary=args.permissions_boundary,
            tags=tags,
            opts=child,
        )
        managed = aws.iam.RolePolicyAttachment(
            f"{name}-service-v2",
            role=service_role.name,
            policy_arn=EMR_SERVICE_POLICY_V2,
            opts=child,
        )
        service_grants = aws.iam.RolePolicy(
            f"{name}-service",
            role=service_role.id,
            policy=document(
                # The v2 managed policy may pass only roles named EMR_EC2_DefaultRole.
                statement(
                    "PassNodeRole",
                    ["iam:PassRole"],
                    [instance_role.arn],
                    condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
                ),
                # Encrypting the nodes' EBS volumes with the stack key goes through EMR.
                statement("EncryptNodeVolumes", KMS_EBS_LAUNCH, [args.kms_key_arn]),
            ),
            opts=child,
        )
        # A role is usable only once its policies are attached: these outputs resolve after
        # them, so whatever consumes them (the cluster, whose bootstrap action reads S3 with
        # the node role at boot) waits for the grants too. A component's depends_on would
        # not reach the cluster resource inside another component.
        self.service_role_arn = _after(service_role.arn, managed, service_grants)
        self.instance_role_arn = _after(instance_role.arn, node_grants)
        self.instance_profile_arn = _after(profile.arn, node_grants)
        self.register_outputs(
            {
                "service_role_arn": service_role.arn,
                "instance_role_arn": instance_role.arn,
                "instance_profile_arn": profile.arn,
            }
        )

    @staticmethod
    def _node_policy(args: ClusterIdentityArgs) -> pulumi.Output[str]:
        def objects(arns: Sequence[pulumi.Input[str]]) -> list[pulumi.Output[str]]:
            return [pulumi.Output.concat(arn, "/*") for arn in arns]

        statements = [
            statement("ReadStream", KINESIS_READ[args.stream_reader], [args.stream_arn]),
            statement("ListBuckets", S3_LIST, [*args.read_bucket_arns, *args.write_bucket_arns]),
            statement("ReadArtifacts", S3_READ, objects(args.read_bucket_arns)),
            statement("WriteData", S3_WRITE, objects(args.write_bucket_arns)),
            *args.serving_grants,
            statement("UseStackKey", KMS_USE, [args.kms_key_arn]),
        ]
        if args.log_arn_prefix is not None:
            statements.append(
                statement(
                    "PushLogs", S3_PUSH_LOGS, [pulumi.Output.concat(args.log_arn_prefix, "*")]
                )
            )
        return document(*statements)


def _after(value: pulumi.Output[str], *resources: pulumi.CustomResource) -> pulumi.Output[str]:
    """`value`, carrying a dependency on `resources` to whatever consumes it."""
    return pulumi.Output.all(value, *(r.urn for r in resources)).apply(lambda values: values[0])
