"""The whole AWS program for the stack file and its variants."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
import yaml

from infra.outputs import STACK_OUTPUTS
from tests.infra.mocks import Recording
from tests.infra.program import AWS_BASE, run_main

REPO = Path(__file__).resolve().parents[3]
EXPORTS = set(STACK_OUTPUTS)


@pytest.fixture(scope="module")
def aws_yaml_stack() -> Recording:
    from tests.infra.program import fake_wheelhouse_installed

    config = yaml.safe_load((REPO / "Pulumi.aws.yaml").read_text())["config"]
    with fake_wheelhouse_installed():
        return run_main(config, stack="aws")


def test_the_aws_stack_file_builds_every_layer(aws_yaml_stack: Recording):
    components = sorted(r.type for r in aws_yaml_stack if r.type.startswith("kappa:aws:"))
    assert components == [
        "kappa:aws:Broker",
        "kappa:aws:Cluster",
        "kappa:aws:ClusterIdentity",
        "kappa:aws:Encryption",
        "kappa:aws:Lake",
        "kappa:aws:Network",
        "kappa:aws:Platform",
        "kappa:aws:Serving",
        "kappa:aws:StreamingJob",
    ]


def test_the_aws_stack_file_sizes_its_stream_from_its_ingest(aws_yaml_stack: Recording):
    # 2 MiB/s and 2,000 records/s with 25% headroom: 2.5 shards, so three.
    assert aws_yaml_stack.one("aws:kinesis/stream:Stream")["shardCount"] == 3


def test_the_aws_stack_file_is_production_grade(aws_yaml_stack: Recording):
    assert aws_yaml_stack.one("aws:dynamodb/table:Table")["deletionProtectionEnabled"] is True
    assert aws_yaml_stack.one("aws:emr/cluster:Cluster")["terminationProtection"] is True
    assert all(not b.get("forceDestroy") for b in aws_yaml_stack.of_type("aws:s3/bucket:Bucket"))


def test_stateful_resources_are_protected_outside_dev(aws_yaml_stack: Recording):
    protected = {r.type for r in aws_yaml_stack if r.protected}
    assert protected == {
        "aws:kms/key:Key",
        "aws:kinesis/stream:Stream",
        "aws:dynamodb/table:Table",
        "aws:s3/bucket:Bucket",
    }
    buckets = {b.name for b in aws_yaml_stack.of_type("aws:s3/bucket:Bucket") if b.protected}
    assert buckets == {"kappa-aws-archive", "kappa-aws-checkpoints", "kappa-aws-dead-letters"}


def test_nothing_is_protected_in_dev(default_stack: Recording):
    assert [r.name for r in default_stack if r.protected] == []


def test_user_tags_reach_every_taggable_resource(aws_yaml_stack: Recording):
    tagged = [r for r in aws_yaml_stack if "tags" in r.inputs]
    assert len(tagged) > 20
    for resource in tagged:
        assert resource["tags"]["team"] == "data-platform", resource.name
        assert resource["tags"]["environment"] == "prod", resource.name


def test_exports_are_what_an_operator_needs(aws_yaml_stack: Recording):
    outputs = aws_yaml_stack.outputs
    assert set(outputs) == EXPORTS
    assert outputs["broker_name"] == "kappa-aws-events"
    assert outputs["serving_table"] == "kappa-aws-aggregates_v1"
    assert outputs["job_specs"]["v1"].startswith("s3://kappa-aws-artifacts-physical/specs/v1/")
    assert set(outputs["buckets"]) == {
        "archive",
        "checkpoints",
        "artifacts",
        "logs",
        "dead_letters",
    }


def test_on_demand_stream_variant(aws_stack):
    stream = aws_stack(brokerMode="on_demand").one("aws:kinesis/stream:Stream")
    assert stream["streamModeDetails"] == {"streamMode": "ON_DEMAND"}
    assert stream.get("shardCount") is None


def test_ephemeral_variant(aws_stack):
    cluster = aws_stack(clusterMode="ephemeral").one("aws:emr/cluster:Cluster")
    assert cluster["autoTerminationPolicy"] == {"idleTimeout": 3600}


def test_bring_your_own_network_variant(aws_stack):
    subnets = ["subnet-0aaa1111bbbb2222c", "subnet-0ddd3333eeee4444f"]
    recording = aws_stack(networkVpcId="vpc-0123456789abcdef0", networkSubnetIds=subnets)
    assert recording.of_type("kappa:aws:Network") == []
    assert recording.of_type("aws:ec2/vpc:Vpc") == []
    cluster = recording.one("aws:emr/cluster:Cluster")
    assert cluster["ec2Attributes"]["subnetIds"] == subnets
    groups = recording.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert {g["vpcId"] for g in groups} == {"vpc-0123456789abcdef0"}
    # EMR's v2 service policy launches only into subnets carrying its tag.
    tags = {(t["resourceId"], t["key"], t["value"]) for t in recording.of_type("aws:ec2/tag:Tag")}
    assert tags == {(s, "for-use-with-amazon-emr-managed-policies", "true") for s in subnets}


def test_bring_your_own_key_variant(aws_stack):
    key = "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"
    recording = aws_stack(kmsKey=key)
    assert recording.of_type("aws:kms/key:Key") == []
    assert recording.one("aws:kinesis/stream:Stream")["kmsKeyId"] == key
    assert recording.one("aws:dynamodb/table:Table")["serverSideEncryption"]["kmsKeyArn"] == key


BROUGHT_KEY = "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"
GET_KEY = "aws:kms/getKey:getKey"
USABLE_KEY = {
    "arn": BROUGHT_KEY,
    "awsAccountId": "123456789012",
    "keyState": "Enabled",
    "keyUsage": "ENCRYPT_DECRYPT",
    "keySpec": "SYMMETRIC_DEFAULT",
    "keyManager": "CUSTOMER",
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("keyState", "Disabled"),
        ("keyState", "PendingDeletion"),
        ("keySpec", "RSA_2048"),
        ("keyUsage", "SIGN_VERIFY"),
        ("keyManager", "AWS"),
    ],
)
def test_a_brought_key_the_services_refuse_stops_the_stack_before_its_encrypted_resources(
    field: str, value: str
):
    """Kinesis, S3, DynamoDB and EBS encrypt only with enabled symmetric encryption keys, and
    an AWS managed key serves only its own service
    (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#key-mgmt,
    https://docs.aws.amazon.com/kms/latest/developerguide/symmetric-asymmetric.html)."""
    recording = Recording()
    with pytest.raises(Exception, match=rf"kappa:kmsKey: .*has {field} '{value}'"):
        run_main(
            {**AWS_BASE, "kappa:kmsKey": BROUGHT_KEY},
            recording=recording,
            invokes={GET_KEY: {**USABLE_KEY, field: value}},
        )
    # What takes the key waits for its check (an empty bucket may exist by then: its
    # encryption is a resource of its own, which waits).
    encrypted = (
        "aws:kinesis/stream:Stream",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:dynamodb/table:Table",
        "aws:emr/securityConfiguration:SecurityConfiguration",
    )
    for token in encrypted:
        assert recording.of_type(token) == [], token


def test_a_usable_brought_key_encrypts_everything():
    recording = run_main({**AWS_BASE, "kappa:kmsKey": BROUGHT_KEY}, invokes={GET_KEY: USABLE_KEY})
    assert recording.one("aws:kinesis/stream:Stream")["kmsKeyId"] == BROUGHT_KEY


def test_a_key_from_another_account_is_warned_about(monkeypatch: pytest.MonkeyPatch):
    """IAM policies in the deploying account grant a key of another account only where that
    key's policy grants the account too, which DescribeKey cannot show
    (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html)."""
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_, **__: warnings.append(message))
    run_main(
        {**AWS_BASE, "kappa:kmsKey": BROUGHT_KEY},
        invokes={GET_KEY: {**USABLE_KEY, "awsAccountId": "210987654321"}},
    )
    (warning,) = [w for w in warnings if "kappa:kmsKey" in w]
    assert "belongs to account 210987654321, not the deploying account 123456789012" in warning


def test_aws_profile_variant_reaches_what_calls_aws_through_boto3():
    """The runs and the protection release call AWS outside the aws provider."""
    recording = run_main({**AWS_BASE, "kappa:environment": "prod", "aws:profile": "data-prod"})
    for dynamic in ("EmrStep", "ProtectionRelease"):
        resource = recording.one(f"pulumi-python:dynamic/kappa:{dynamic}")
        assert resource["profile"] == "data-prod"
        assert resource["region"] == "eu-west-1"


def test_without_an_aws_profile_boto3_uses_its_default_chain(default_stack: Recording):
    step = default_stack.one("pulumi-python:dynamic/kappa:EmrStep")
    assert step.get("profile") is None
    assert step.get("assume_roles") is None


def test_replay_variant_runs_two_versions_and_serves_the_live_one(aws_stack):
    recording = aws_stack(pipelineVersions=["v1", "v2"], pipelineLiveVersion="v2")
    assert len(recording.of_type("aws:dynamodb/table:Table")) == 2
    assert len(recording.of_type("pulumi-python:dynamic/kappa:EmrStep")) == 2
    assert recording.outputs["serving_table"] == "kappa-test-aggregates_v2"


def test_two_stacks_never_share_physical_names(aws_stack):
    first, second = aws_stack(stack="blue"), aws_stack(stack="green")
    names = lambda r: {x["name"] for x in r if isinstance(x.get("name"), str)}  # noqa: E731
    shared = names(first) & names(second)
    assert shared <= {"master", "core", "task"}, shared


def test_graviton_nodes_get_an_arm_wheelhouse(aws_stack):
    from tests.infra.program import WHEELHOUSE_REQUESTS

    WHEELHOUSE_REQUESTS.clear()
    graviton = ["m7g.xlarge", "c7g.xlarge", "r7g.xlarge"]
    aws_stack(
        clusterMasterType="m7g.xlarge", clusterCoreType="m7g.xlarge", clusterTaskTypes=graviton
    )
    assert [r["platform"].machine for r in WHEELHOUSE_REQUESTS] == ["aarch64"]


def test_intel_nodes_get_an_x86_wheelhouse(aws_stack):
    from tests.infra.program import WHEELHOUSE_REQUESTS

    WHEELHOUSE_REQUESTS.clear()
    aws_stack()
    assert [r["platform"].machine for r in WHEELHOUSE_REQUESTS] == ["x86_64"]


DEPLOY_ROLE = "arn:aws:iam::210987654321:role/kappa-deploy"
# How the engine marks a secret value (Pulumi's property serialization).
SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"


def test_the_aws_role_chain_reaches_what_calls_aws_through_boto3():
    """With `aws:assumeRoles` the aws provider works in the role's account; the boto3 calls
    must act there too, as the same roles in the same order."""
    chain = [
        {"roleArn": "arn:aws:iam::123456789012:role/platform-hop"},
        {"roleArn": DEPLOY_ROLE, "externalId": "kappa-prod", "duration": "1h"},
    ]
    recording = run_main({**AWS_BASE, "kappa:environment": "prod", "aws:assumeRoles": chain})
    for dynamic in ("EmrStep", "ProtectionRelease"):
        resource = recording.one(f"pulumi-python:dynamic/kappa:{dynamic}")
        # Kept secret in the state: an external id is a shared secret of sorts.
        assert resource["assume_roles"][SIGNATURE_KEY] == SECRET_SIGNATURE
        assert resource["assume_roles"]["value"] == [
            {
                "RoleArn": "arn:aws:iam::123456789012:role/platform-hop",
                "RoleSessionName": "kappa-test",
            },
            {
                "RoleArn": DEPLOY_ROLE,
                "RoleSessionName": "kappa-test",
                "ExternalId": "kappa-prod",
                "DurationSeconds": 3600,
            },
        ]


def test_a_bad_aws_role_chain_is_refused_by_key_before_anything_is_declared():
    chain = [{"roleArn": DEPLOY_ROLE, "duration": "5m"}, {"sessionName": "kappa"}]
    with pytest.raises(Exception, match="invalid stack configuration") as refused:
        run_main({**AWS_BASE, "aws:assumeRoles": chain})
    message = str(refused.value)
    assert "aws:assumeRoles[0].duration: got '5m'; expected a duration from 15m to 12h" in message
    assert "aws:assumeRoles[1].roleArn is required" in message


def test_a_stack_outside_the_default_regions_uses_its_region_everywhere():
    """The mocks answer in the configured region (ARNs, zones), so a component that ignores
    the stack's region, or hard-codes one, shows here."""
    region = "ap-southeast-2"
    recording = run_main({**AWS_BASE, "aws:region": region})
    zones = {s["availabilityZone"] for s in recording.of_type("aws:ec2/subnet:Subnet")}
    assert zones == {f"{region}a", f"{region}b"}
    endpoints = [e["serviceName"] for e in recording.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")]
    assert endpoints
    assert all(name.startswith(f"com.amazonaws.{region}.") for name in endpoints)
    nodes = recording.named("kappa-test-nodes", "aws:iam/rolePolicy:RolePolicy").json("policy")
    (read,) = [s for s in nodes["Statement"] if s["Sid"] == "ReadStream"]
    assert read["Resource"] == [f"arn:aws:kinesis:{region}:123456789012:stream/kappa-test-events"]
    spec = recording.named("kappa-test-v1-spec", "aws:s3/bucketObjectv2:BucketObjectv2")
    assert f'"region":"{region}"' in spec["content"]
    command = recording.one("pulumi-python:dynamic/kappa:EmrStep")["command"]
    assert f"spark.executorEnv.AWS_REGION={region}" in command
    certificate = recording.one("tls:index/selfSignedCert:SelfSignedCert")
    assert certificate["dnsNames"] == [f"*.{region}.compute.internal"]
    service = recording.named("kappa-test-service", "aws:iam/role:Role")
    (trust,) = service.json("assumeRolePolicy")["Statement"]
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"].split(":")[3] == region
