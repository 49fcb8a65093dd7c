"""EMR: Spark 4 release, on-demand master/core, spot task fleet, encryption, private network."""

from __future__ import annotations

from typing import Any

from tests.infra.mocks import Recording

CLUSTER = "aws:emr/cluster:Cluster"
TASK_FLEET = "aws:emr/instanceFleet:InstanceFleet"
SCALING = "aws:emr/managedScalingPolicy:ManagedScalingPolicy"


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


def test_spot_falls_back_to_on_demand_after_a_timeout(default_stack: Recording):
    (spot,) = default_stack.one(TASK_FLEET)["launchSpecifications"]["spotSpecifications"]
    assert spot["timeoutAction"] == "SWITCH_TO_ON_DEMAND"
    assert spot["timeoutDurationMinutes"] == 10


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
    resource = recording.one("aws:emr/securityConfiguration:SecurityConfiguration")
    return resource.json("configuration")["EncryptionConfiguration"]


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
    (certificates,) = [
        o
        for o in default_stack.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
        if o["key"].startswith("security/")
    ]
    assert tls["S3Object"] == f"s3://{certificates['bucket']}/{certificates['key']}"
    assert certificates["bucket"] == "kappa-test-artifacts-physical"


def test_the_cluster_lives_in_the_private_subnets(default_stack: Recording):
    attributes = default_stack.one(CLUSTER)["ec2Attributes"]
    assert attributes["subnetIds"] == ["kappa-test-private-0-id", "kappa-test-private-1-id"]
    assert attributes["serviceAccessSecurityGroup"] == "kappa-test-service-id"


def test_no_security_group_admits_traffic_from_the_internet(default_stack: Recording):
    for group in default_stack.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in group.get("ingress") or []:
            assert "0.0.0.0/0" not in (rule.get("cidrBlocks") or []), group.name
    assert default_stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") == []


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
    objects = {o.name: o for o in default_stack.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    script = objects["kappa-test-bootstrap"]
    wheelhouse = objects["kappa-test-wheelhouse"]
    assert action["path"] == f"s3://{script['bucket']}/{script['key']}"
    assert script["key"].startswith("bootstrap/emr-bootstrap-")
    assert action["args"] == [
        f"s3://{wheelhouse['bucket']}/{wheelhouse['key']}",
        fake_wheelhouse.sha256,
    ]
    assert wheelhouse["key"] == fake_wheelhouse.key


def test_long_running_has_no_auto_termination(default_stack: Recording):
    assert default_stack.one(CLUSTER).get("autoTerminationPolicy") is None


def test_ephemeral_cluster_terminates_when_idle(aws_stack):
    cluster = aws_stack(clusterMode="ephemeral", clusterIdleTimeoutMinutes=45).one(CLUSTER)
    assert cluster["autoTerminationPolicy"] == {"idleTimeout": 45 * 60}
    assert cluster["terminationProtection"] is False


def test_production_long_running_cluster_has_termination_protection(aws_stack):
    assert aws_stack(environment="prod").one(CLUSTER)["terminationProtection"] is True


def test_concurrent_steps_let_a_new_version_replay_beside_the_live_one(default_stack: Recording):
    assert default_stack.one(CLUSTER)["stepConcurrencyLevel"] > 1


def test_spark_defaults_suit_a_stream_on_spot(default_stack: Recording):
    (classification,) = default_stack.one(CLUSTER).json("configurationsJson")
    properties = classification["Properties"]
    assert properties["spark.speculation"] == "false"
    assert properties["spark.decommission.enabled"] == "true"
