"""EMR: Spark 4 release, on-demand master/core, spot task fleet, encryption, private network."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from infra.artifacts import content_key
from infra.aws.cluster import Cluster, ClusterArgs
from tests.infra.mocks import Recording, run_program

CLUSTER = "aws:emr/cluster:Cluster"
TASK_FLEET = "aws:emr/instanceFleet:InstanceFleet"
SCALING = "aws:emr/managedScalingPolicy:ManagedScalingPolicy"
SECURITY = "aws:emr/securityConfiguration:SecurityConfiguration"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
CERTIFICATE = "tls:index/selfSignedCert:SelfSignedCert"
RELEASE = "pulumi-python:dynamic/kappa:ProtectionRelease"

# What a platform team composing the layer passes in: its own network, roles, key, buckets.
PLATFORM_KEY = "arn:aws:kms:eu-west-1:123456789012:key/platform"
PLATFORM_CLUSTER = ClusterArgs(
    vpc_id="vpc-0123456789abcdef0",
    subnet_ids=["subnet-0aaa1111bbbb2222c", "subnet-0ddd3333eeee4444f"],
    service_role_arn="arn:aws:iam::123456789012:role/platform-emr-service",
    instance_profile_arn="arn:aws:iam::123456789012:instance-profile/platform-emr-nodes",
    kms_key_arn=PLATFORM_KEY,
    log_uri="s3://platform-logs/emr/",
    artifacts_bucket="platform-artifacts",
    region="eu-west-1",
)


def cluster_alone(args: ClusterArgs = PLATFORM_CLUSTER) -> Recording:
    return run_program(lambda: Cluster("kappa-test", args))


def test_runs_spark_only_on_the_spark_4_release(default_stack: Recording):
    cluster = default_stack.one(CLUSTER)
    assert cluster["releaseLabel"] == "emr-spark-8.0.0"
    assert cluster["applications"] == ["Spark"]


def test_master_and_core_fleets_are_on_demand(default_stack: Recording):
    cluster = default_stack.one(CLUSTER)
    assert cluster["masterInstanceFleet"]["targetOnDemandCapacity"] == 1
    assert cluster["coreInstanceFleet"]["targetOnDemandCapacity"] == 2
    for fleet in ("masterInstanceFleet", "coreInstanceFleet"):
        assert not cluster[fleet].get("targetSpotCapacity")


def test_task_fleet_is_spot_with_price_capacity_optimized(default_stack: Recording):
    fleet = default_stack.one(TASK_FLEET)
    types = [c["instanceType"] for c in fleet["instanceTypeConfigs"]]
    assert len(set(types)) >= 3
    (spot,) = fleet["launchSpecifications"]["spotSpecifications"]
    assert spot["allocationStrategy"] == "price-capacity-optimized"
    assert fleet["targetOnDemandCapacity"] == 0


def test_the_task_fleet_never_starts_empty(default_stack: Recording, aws_stack):
    """EMR refuses an instance fleet whose spot and on-demand targets are both 0: "At least
    one of TargetSpotCapacity and TargetOnDemandCapacity should be greater than 0"
    (https://docs.aws.amazon.com/emr/latest/APIReference/API_InstanceFleetConfig.html).
    With clusterTaskMin 0 (the default) the fleet starts at one unit and managed scaling may
    take it down to 0 later."""
    fleet = default_stack.one(TASK_FLEET)
    assert fleet["targetSpotCapacity"] == 1
    assert fleet["targetOnDemandCapacity"] == 0
    on_demand = aws_stack(clusterTaskCapacity="on_demand").one(TASK_FLEET)
    assert (on_demand["targetSpotCapacity"], on_demand["targetOnDemandCapacity"]) == (0, 1)
    (limits,) = default_stack.one(SCALING)["computeLimits"]
    assert limits["minimumCapacityUnits"] == 2  # the core fleet alone: the task fleet may empty


def test_no_task_fleet_is_declared_when_none_may_run(aws_stack):
    recording = aws_stack(clusterTaskMax=0)
    assert recording.of_type(TASK_FLEET) == []
    (limits,) = recording.one(SCALING)["computeLimits"]
    assert limits["maximumCapacityUnits"] == limits["minimumCapacityUnits"] == 2


def test_every_fleet_names_an_allocation_strategy_so_the_task_fleet_may_list_30_types(aws_stack):
    """A fleet lists at most 5 instance types, or 30 with an allocation strategy
    (https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-instance-fleet.html), and EMR
    then wants a strategy on the master and core fleets as well
    (https://github.com/hashicorp/terraform-provider-aws/issues/25132)."""
    types = ["m6i.xlarge", "m6a.xlarge", "m5.xlarge", "m5a.xlarge", "m5n.xlarge", "m7i.xlarge"]
    recording = aws_stack(clusterTaskTypes=types)
    fleet = recording.one(TASK_FLEET)
    assert [c["instanceType"] for c in fleet["instanceTypeConfigs"]] == types
    assert fleet["launchSpecifications"]["spotSpecifications"][0]["allocationStrategy"]
    cluster = recording.one(CLUSTER)
    for declared in (fleet, cluster["masterInstanceFleet"], cluster["coreInstanceFleet"]):
        (on_demand,) = declared["launchSpecifications"]["onDemandSpecifications"]
        assert on_demand["allocationStrategy"] == "lowest-price"


def test_spot_bids_never_exceed_on_demand_prices(default_stack: Recording):
    for config in default_stack.one(TASK_FLEET)["instanceTypeConfigs"]:
        assert config["bidPriceAsPercentageOfOnDemandPrice"] == 100


def test_managed_scaling_limits_come_from_config(aws_stack):
    recording = aws_stack(clusterCoreCount=3, clusterTaskMin=1, clusterTaskMax=10)
    (limits,) = recording.one(SCALING)["computeLimits"]
    assert limits == {
        "unitType": "InstanceFleetUnits",
        "minimumCapacityUnits": 4,
        "maximumCapacityUnits": 13,
        "maximumCoreCapacityUnits": 3,
        # everything above the core fleet is spot
        "maximumOndemandCapacityUnits": 3,
    }
    fleet = recording.one(TASK_FLEET)
    assert fleet["targetSpotCapacity"] == 1


def test_on_demand_task_capacity_is_a_choice(aws_stack):
    recording = aws_stack(clusterTaskCapacity="on_demand", clusterTaskMin=2)
    fleet = recording.one(TASK_FLEET)
    assert fleet["targetOnDemandCapacity"] == 2
    assert fleet["targetSpotCapacity"] == 0
    assert not fleet["launchSpecifications"].get("spotSpecifications")
    (limits,) = recording.one(SCALING)["computeLimits"]
    assert limits["maximumOndemandCapacityUnits"] == limits["maximumCapacityUnits"]


def security(recording: Recording) -> dict[str, Any]:
    return recording.one(SECURITY).json("configuration")["EncryptionConfiguration"]


def certificates_object(recording: Recording):
    (found,) = [o for o in recording.of_type(OBJECT) if o["key"].startswith("security/")]
    return found


def test_security_configuration_encrypts_at_rest_with_the_stack_key(default_stack: Recording):
    config = security(default_stack)
    key = default_stack.one("aws:kms/key:Key").outputs["arn"]
    assert config["EnableAtRestEncryption"] is True
    at_rest = config["AtRestEncryptionConfiguration"]
    assert at_rest["S3EncryptionConfiguration"] == {"EncryptionMode": "SSE-KMS", "AwsKmsKey": key}
    assert at_rest["LocalDiskEncryptionConfiguration"] == {
        "EncryptionKeyProviderType": "AwsKms",
        "AwsKmsKey": key,
        "EnableEbsEncryption": True,
    }
    assert default_stack.one(CLUSTER)["securityConfiguration"] == "kappa-test-security-physical"


def test_security_configuration_encrypts_in_transit_with_uploaded_certificates(
    default_stack: Recording,
):
    config = security(default_stack)
    assert config["EnableInTransitEncryption"] is True
    tls = config["InTransitEncryptionConfiguration"]["TLSCertificateConfiguration"]
    assert tls["CertificateProviderType"] == "PEM"
    certificates = certificates_object(default_stack)
    assert tls["S3Object"] == f"s3://{certificates['bucket']}/{certificates['key']}"
    assert certificates["bucket"] == "kappa-test-artifacts-physical"


def test_security_configuration_waits_for_the_uploaded_certificates(default_stack: Recording):
    """EMR fetches the zip when the cluster starts; it must be in S3 by then."""
    configuration = default_stack.one(SECURITY)
    assert default_stack.depends_on(configuration, certificates_object(default_stack))
    assert default_stack.depends_on(default_stack.one(CLUSTER), configuration)


def test_certificates_are_named_by_the_certificate_so_a_new_one_replaces_the_cluster(
    default_stack: Recording,
):
    """Nodes fetch the zip when they boot: rewritten in place, a renewed certificate would
    reach only the nodes that join later, and the others would not trust them."""
    certificate = default_stack.one(CERTIFICATE).outputs["certPem"]
    assert certificates_object(default_stack)["key"] == content_key(
        "security", "kappa-test-in-transit-tls.zip", certificate.encode()
    )


@pytest.mark.parametrize(
    ("region", "domain"),
    [("us-east-1", "ec2.internal"), ("eu-west-1", "eu-west-1.compute.internal")],
)
def test_certificate_covers_the_nodes_host_names_in_their_region(region: str, domain: str):
    certificate = cluster_alone(replace(PLATFORM_CLUSTER, region=region)).one(CERTIFICATE)
    # A wildcard stands for exactly one label: ip-10-64-0-10.<domain>.
    assert certificate["dnsNames"] == [f"*.{domain}"]
    assert certificate["subject"]["commonName"] == f"*.{domain}"


def test_a_cluster_alone_takes_the_network_roles_key_and_buckets_it_is_given():
    recording = cluster_alone()
    cluster = recording.one(CLUSTER)
    attributes = cluster["ec2Attributes"]
    assert attributes["subnetIds"] == ["subnet-0aaa1111bbbb2222c", "subnet-0ddd3333eeee4444f"]
    assert attributes["instanceProfile"] == PLATFORM_CLUSTER.instance_profile_arn
    assert cluster["serviceRole"] == PLATFORM_CLUSTER.service_role_arn
    assert cluster["logUri"] == "s3://platform-logs/emr/"
    assert cluster["logEncryptionKmsKeyId"] == PLATFORM_KEY
    groups = recording.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert {g["vpcId"] for g in groups} == {"vpc-0123456789abcdef0"}
    config = security(recording)
    assert config["AtRestEncryptionConfiguration"]["S3EncryptionConfiguration"]["AwsKmsKey"] == (
        PLATFORM_KEY
    )
    tls = config["InTransitEncryptionConfiguration"]["TLSCertificateConfiguration"]
    assert tls["S3Object"].startswith("s3://platform-artifacts/security/kappa-test-in-transit-tls-")
    assert certificates_object(recording)["bucket"] == "platform-artifacts"


def test_the_cluster_lives_in_the_private_subnets(default_stack: Recording):
    attributes = default_stack.one(CLUSTER)["ec2Attributes"]
    assert attributes["subnetIds"] == ["kappa-test-private-0-id", "kappa-test-private-1-id"]
    assert attributes["serviceAccessSecurityGroup"] == "kappa-test-service-id"


INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
GROUP_IDS = {
    role: f"kappa-test-{role}-id" for role in ("master", "workers", "service", "endpoints")
}


def rules(recording: Recording, type_token: str) -> set[tuple[str, str, int | None, str]]:
    """(group, protocol, port, peer group or CIDR) for every rule resource of a type."""
    role_of = {group_id: role for role, group_id in GROUP_IDS.items()}
    found = set()
    for rule in recording.of_type(type_token):
        peer = rule.get("referencedSecurityGroupId")
        port = rule.get("fromPort")
        assert port == rule.get("toPort"), rule.name
        found.add(
            (
                role_of[rule["securityGroupId"]],
                rule["ipProtocol"],
                None if port is None else int(port),
                role_of[peer] if peer else rule["cidrIpv4"],
            )
        )
    return found


def test_no_security_group_admits_traffic_from_outside_the_cluster(default_stack: Recording):
    for group in default_stack.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in group.get("ingress") or []:
            assert "0.0.0.0/0" not in (rule.get("cidrBlocks") or []), group.name
    for rule in default_stack.of_type(INGRESS):
        assert rule["referencedSecurityGroupId"] in GROUP_IDS.values(), rule.name
        assert not rule.get("cidrIpv4"), rule.name
        assert not rule.get("cidrIpv6"), rule.name


def test_security_groups_carry_the_rules_of_a_cluster_in_a_private_subnet(
    default_stack: Recording,
):
    """The provider strips the default allow-all egress from the groups it creates, and EMR
    adds only missing inbound rules to groups it is given ("creates any missing inbound
    rules", https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-man-sec-groups.html).
    Per that page's private-subnet tables: the service-access group takes TCP 9443 from the
    master and sends TCP 8443 to the master and to the core and task nodes; the nodes talk to
    each other on every port and reach the AWS endpoints on 443."""
    assert rules(default_stack, INGRESS) == {("service", "tcp", 9443, "master")}
    assert rules(default_stack, EGRESS) == {
        ("master", "-1", None, "master"),
        ("master", "-1", None, "workers"),
        ("workers", "-1", None, "master"),
        ("workers", "-1", None, "workers"),
        ("master", "tcp", 443, "0.0.0.0/0"),
        ("workers", "tcp", 443, "0.0.0.0/0"),
        ("master", "tcp", 9443, "service"),
        ("service", "tcp", 8443, "master"),
        ("service", "tcp", 8443, "workers"),
    }


def test_the_cluster_waits_for_its_security_group_rules(default_stack: Recording):
    """EMR validates the groups' rules when it creates the cluster."""
    cluster = default_stack.one(CLUSTER)
    declared = default_stack.of_type(INGRESS) + default_stack.of_type(EGRESS)
    assert len(declared) == 10
    for rule in declared:
        assert default_stack.depends_on(cluster, rule), rule.name


def test_emr_resources_carry_the_managed_policy_tag(default_stack: Recording):
    tagged = [default_stack.one(CLUSTER)] + [
        g
        for g in default_stack.of_type("aws:ec2/securityGroup:SecurityGroup")
        if g.name != "kappa-test-endpoints"
    ]
    for resource in tagged:
        assert resource["tags"]["for-use-with-amazon-emr-managed-policies"] == "true"


def test_logs_go_to_the_logs_bucket_encrypted(default_stack: Recording):
    cluster = default_stack.one(CLUSTER)
    assert cluster["logUri"] == "s3://kappa-test-logs-physical/emr/"
    assert cluster["logEncryptionKmsKeyId"] == default_stack.one("aws:kms/key:Key").outputs["arn"]


def test_bootstrap_action_runs_the_uploaded_script_with_the_wheelhouse(
    default_stack: Recording, fake_wheelhouse
):
    (action,) = default_stack.one(CLUSTER)["bootstrapActions"]
    artifacts = default_stack.named("kappa-test-artifacts", "aws:s3/bucket:Bucket")
    bucket = artifacts.outputs["bucket"]
    assert bucket == default_stack.outputs["buckets"]["artifacts"]
    script = default_stack.named("kappa-test-bootstrap", OBJECT)
    assert script["key"].startswith("bootstrap/emr-bootstrap-")
    assert action["path"] == f"s3://{bucket}/{script['key']}"
    # The node fetches exactly the wheelhouse that was built, and checks its bytes.
    assert action["args"] == [f"s3://{bucket}/{fake_wheelhouse.key}", fake_wheelhouse.sha256]
    assert default_stack.named("kappa-test-wheelhouse", OBJECT)["bucket"] == bucket


def test_long_running_has_no_auto_termination(default_stack: Recording):
    assert default_stack.one(CLUSTER).get("autoTerminationPolicy") is None


def test_ephemeral_cluster_terminates_when_idle(aws_stack):
    cluster = aws_stack(clusterMode="ephemeral", clusterIdleTimeoutMinutes=45).one(CLUSTER)
    assert cluster["autoTerminationPolicy"] == {"idleTimeout": 45 * 60}
    assert cluster["terminationProtection"] is False


def test_production_long_running_cluster_has_termination_protection(aws_stack):
    assert aws_stack(environment="prod").one(CLUSTER)["terminationProtection"] is True


def test_a_protected_cluster_is_released_just_before_pulumi_deletes_it(aws_stack):
    """A new bootstrap script or wheelhouse replaces the cluster: the new one is created
    first, the job moves over, then the release (which depends on the old cluster, so goes
    first) lifts the protection that would make EMR refuse to terminate the old one."""
    recording = aws_stack(environment="prod")
    cluster, release = recording.one(CLUSTER), recording.one(RELEASE)
    assert release["cluster_id"] == cluster.outputs["id"]
    assert release["region"] == "eu-west-1"
    assert recording.depends_on(release, cluster)
    assert cluster.delete_before_replace is False


def test_an_unprotected_cluster_needs_no_release(default_stack: Recording, aws_stack):
    assert default_stack.one(CLUSTER)["terminationProtection"] is False
    assert default_stack.of_type(RELEASE) == []
    ephemeral = aws_stack(environment="prod", clusterMode="ephemeral")
    assert ephemeral.of_type(RELEASE) == []


def test_a_protected_cluster_alone_is_released_with_the_profile_it_is_given():
    recording = cluster_alone(
        replace(PLATFORM_CLUSTER, termination_protection=True, aws_profile="platform-deploy")
    )
    release = recording.one(RELEASE)
    assert release["cluster_id"] == recording.one(CLUSTER).outputs["id"]
    assert release["profile"] == "platform-deploy"


def test_concurrent_steps_let_a_new_version_replay_beside_the_live_one(default_stack: Recording):
    assert default_stack.one(CLUSTER)["stepConcurrencyLevel"] > 1


def test_spark_defaults_suit_a_stream_on_spot(default_stack: Recording):
    (classification,) = default_stack.one(CLUSTER).json("configurationsJson")
    properties = classification["Properties"]
    assert properties["spark.speculation"] == "false"
    assert properties["spark.decommission.enabled"] == "true"
