"""EMR on EC2 running Spark: on-demand master and core fleets, a spot task fleet.

Managed scaling moves the task fleet between `task_min` and `task_max`; on-demand capacity
is capped at the core fleet, so everything above it is spot. Fleet capacities are counted
in instances (every type weighs 1), which is why task types must share one size.

When spot capacity runs out, nothing falls back to on-demand: EMR applies a spot timeout
only while a cluster is first provisioned, the task fleet is added to a running cluster, and
managed scaling fills on-demand capacity first, up to its on-demand cap (the core fleet),
then spot. The job keeps running on the core fleet and the task fleet grows again when spot
returns; `task_capacity="on_demand"` buys certainty instead
(https://docs.aws.amazon.com/emr/latest/ManagementGuide/managed-scaling-allocation-strategy.html).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from infra.aws.emr_protection import ProtectionRelease
from infra.aws.policy import EMR_MANAGED_POLICY_TAG
from infra.aws.tls import in_transit_certificates
from infra.config import CLOUD_DEFAULTS, cluster_default
from infra.options import child_options

# Spark's own settings for a long-lived streaming job on reclaimable capacity.
SPARK_DEFAULTS = {
    # Speculative copies of a micro-batch task would read the stream twice.
    "spark.speculation": "false",
    # Executors on a spot node that gets its two-minute notice hand their blocks over.
    "spark.decommission.enabled": "true",
    "spark.storage.decommission.enabled": "true",
    "spark.storage.decommission.shuffleBlocks.enabled": "true",
    # RocksDB keeps deduplication state off the JVM heap.
    "spark.sql.streaming.stateStore.providerClass": (
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
    ),
}


# The provider requires a spot timeout on every spot specification, but EMR applies it only
# while the cluster is first provisioned: never to a task fleet added to a running cluster
# (https://docs.aws.amazon.com/emr/latest/APIReference/API_SpotProvisioningSpecification.html).
# These are the API's minimum, stated so the plan says what it is, not a promise of fallback.
SPOT_PROVISIONING_TIMEOUT_ACTION = "SWITCH_TO_ON_DEMAND"
SPOT_PROVISIONING_TIMEOUT_MINUTES = 5
# With an allocation strategy a fleet may list up to 30 instance types instead of 5, and EMR
# then wants one on every fleet of the cluster, master and core included
# (https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-instance-fleet.html;
# hashicorp/terraform-provider-aws#25132).
ON_DEMAND_ALLOCATION = "lowest-price"
# Ports EMR's service uses to manage a cluster in a private subnet: the service-access group
# takes 9443 from the master and reaches every node on 8443
# (https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-man-sec-groups.html).
SERVICE_INGRESS_PORT = 9443
SERVICE_TO_NODES_PORT = 8443


_AWS = CLOUD_DEFAULTS["aws"]


@dataclass(frozen=True)
class BootstrapAction:
    name: str
    path: pulumi.Input[str]
    args: Sequence[pulumi.Input[str]] = ()


@dataclass(frozen=True)
class ClusterArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    service_role_arn: pulumi.Input[str]
    instance_profile_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    log_uri: pulumi.Input[str]
    # Where the in-transit TLS material is uploaded (the artifacts bucket).
    artifacts_bucket: pulumi.Input[str]
    # The cluster's region: it names the nodes' DNS domain, which the TLS certificate covers.
    region: str
    bootstrap_actions: Sequence[BootstrapAction] = ()
    # Defaults are the stack configuration's, so a layer taken alone matches the platform.
    release: str = _AWS["release"]
    mode: Literal["long_running", "ephemeral"] = cluster_default("mode")
    idle_timeout_minutes: int = cluster_default("idle_timeout_minutes")
    master_type: str = _AWS["master_type"]
    core_type: str = _AWS["core_type"]
    core_count: int = cluster_default("core_count")
    task_types: Sequence[str] = _AWS["task_types"]
    task_capacity: Literal["spot", "on_demand"] = cluster_default("task_capacity")
    task_min: int = cluster_default("task_min")
    task_max: int = cluster_default("task_max")
    spot_allocation: str = cluster_default("spot_allocation")
    disk_gib: int = cluster_default("disk_gib")
    termination_protection: bool = False
    # The stack's `aws:profile` and role chain (config.aws_role_chain), for the call that
    # lifts termination protection when Pulumi itself deletes the cluster (emr_protection).
    aws_profile: str | None = None
    aws_assume_roles: Sequence[Mapping[str, Any]] = ()
    # Several steps at once so a new pipeline version can replay beside the live one.
    step_concurrency: int = 4
    tags: Mapping[str, str] = field(default_factory=dict)


class Cluster(pulumi.ComponentResource):
    id: pulumi.Output[str]
    master_dns: pulumi.Output[str]
    security_group_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kappa:aws:Cluster", name, None, opts)
        self._opts = opts
        child = child_options(self, opts)
        tags = {**args.tags, **EMR_MANAGED_POLICY_TAG}

        groups, rules = self._security_groups(name, args, tags)
        security = aws.emr.SecurityConfiguration(
            f"{name}-security",
            configuration=self._security_configuration(name, args),
            opts=child,
        )
        cluster = aws.emr.Cluster(
            f"{name}-emr",
            name=name,
            release_label=args.release,
            applications=["Spark"],
            service_role=args.service_role_arn,
            security_configuration=security.name,
            log_uri=args.log_uri,
            log_encryption_kms_key_id=args.kms_key_arn,
            ec2_attributes={
                "subnet_ids": list(args.subnet_ids),
                "instance_profile": args.instance_profile_arn,
                "emr_managed_master_security_group": groups["master"].id,
                "emr_managed_slave_security_group": groups["workers"].id,
                "service_access_security_group": groups["service"].id,
            },
            master_instance_fleet={
                "name": "master",
                "target_on_demand_capacity": 1,
                "instance_type_configs": [self._instance_type(args.master_type, args)],
                "launch_specifications": {
                    "on_demand_specifications": [{"allocation_strategy": ON_DEMAND_ALLOCATION}]
                },
            },
            core_instance_fleet={
                "name": "core",
                "target_on_demand_capacity": args.core_count,
                "instance_type_configs": [self._instance_type(args.core_type, args)],
                "launch_specifications": {
                    "on_demand_specifications": [{"allocation_strategy": ON_DEMAND_ALLOCATION}]
                },
            },
            bootstrap_actions=[
                {"name": action.name, "path": action.path, "args": list(action.args)}
                for action in args.bootstrap_actions
            ],
            configurations_json=json.dumps(
                [{"Classification": "spark-defaults", "Properties": SPARK_DEFAULTS}]
            ),
            auto_termination_policy=(
                {"idle_timeout": args.idle_timeout_minutes * 60}
                if args.mode == "ephemeral"
                else None
            ),
            keep_job_flow_alive_when_no_steps=True,
            termination_protection=args.termination_protection,
            step_concurrency_level=args.step_concurrency,
            unhealthy_node_replacement=True,
            tags=tags,
            opts=child_options(
                self,
                opts,
                # EMR validates the groups' rules when it creates the cluster.
                *rules,
                # Managed scaling moves the core fleet's target; that is not drift.
                ignore_changes=["coreInstanceFleet.targetOnDemandCapacity"],
            ),
        )
        if args.termination_protection:
            # Protection refuses Pulumi's delete too, and a new bootstrap script or wheelhouse
            # replaces the cluster: this lifts it just before Pulumi deletes the cluster.
            ProtectionRelease(
                f"{name}-protection-release",
                cluster_id=cluster.id,
                region=args.region,
                profile=args.aws_profile,
                assume_roles=args.aws_assume_roles,
                opts=child,
            )
        self._task_fleet(name, cluster, args)
        aws.emr.ManagedScalingPolicy(
            f"{name}-scaling",
            cluster_id=cluster.id,
            compute_limits=[
                {
                    "unit_type": "InstanceFleetUnits",
                    "minimum_capacity_units": args.core_count + args.task_min,
                    "maximum_capacity_units": args.core_count + args.task_max,
                    "maximum_core_capacity_units": args.core_count,
                    "maximum_ondemand_capacity_units": (
                        args.core_count
                        if args.task_capacity == "spot"
                        else args.core_count + args.task_max
                    ),
                }
            ],
            opts=child,
        )
        self.id = cluster.id
        self.master_dns = cluster.master_public_dns
        self.security_group_ids = {role: group.id for role, group in groups.items()}
        self.register_outputs({"id": cluster.id, "master_dns": cluster.master_public_dns})

    def _security_groups(
        self, name: str, args: ClusterArgs, tags: dict[str, str]
    ) -> tuple[dict[str, aws.ec2.SecurityGroup], list[pulumi.Resource]]:
        """EMR-managed groups with the rules a cluster in a private subnet needs.

        The provider strips the default allow-all egress from every group it creates, and EMR
        adds only missing *inbound* rules to groups it is given, so the egress (and the
        service group's 9443, which EMR checks before it adds anything) is declared here, as
        rule resources the cluster waits for. Inline rules would make Pulumi remove the
        inbound rules EMR adds. Nothing outside the cluster may reach a node: every inbound
        rule names one of these groups.
        """
        groups = {}
        for role, purpose in (
            ("master", "EMR master node"),
            ("workers", "EMR core and task nodes"),
            ("service", "EMR service access in a private subnet"),
        ):
            groups[role] = aws.ec2.SecurityGroup(
                f"{name}-{role}",
                vpc_id=args.vpc_id,
                description=f"{purpose} (inbound rules managed by EMR)",
                # Groups reference each other; EMR's rules must go before the groups can.
                revoke_rules_on_delete=True,
                tags={**tags, "Name": f"{name}-{role}"},
                opts=child_options(self, self._opts),
            )
        child = child_options(self, self._opts)
        rules: list[pulumi.Resource] = []

        def egress(rule: str, role: str, description: str, **target: Any) -> None:
            rules.append(
                aws.vpc.SecurityGroupEgressRule(
                    f"{name}-{role}-{rule}",
                    security_group_id=groups[role].id,
                    description=description,
                    **target,
                    opts=child,
                )
            )

        every_port = {"ip_protocol": "-1"}
        for role in ("master", "workers"):
            for peer in ("master", "workers"):
                # YARN, HDFS, Spark's shuffle and block transfers between any two nodes.
                egress(
                    f"to-{peer}",
                    role,
                    f"Cluster traffic to the {peer} group",
                    referenced_security_group_id=groups[peer].id,
                    **every_port,
                )
            egress(
                "https-out",
                role,
                "AWS APIs over TLS (endpoints; NAT when egress is enabled)",
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                # S3 and DynamoDB gateway endpoints answer on public addresses.
                cidr_ipv4="0.0.0.0/0",
            )
        egress(
            "to-service",
            "master",
            "EMR service access",
            ip_protocol="tcp",
            from_port=SERVICE_INGRESS_PORT,
            to_port=SERVICE_INGRESS_PORT,
            referenced_security_group_id=groups["service"].id,
        )
        for peer in ("master", "workers"):
            egress(
                f"to-{peer}",
                "service",
                f"EMR's cluster manager to the {peer} nodes",
                ip_protocol="tcp",
                from_port=SERVICE_TO_NODES_PORT,
                to_port=SERVICE_TO_NODES_PORT,
                referenced_security_group_id=groups[peer].id,
            )
        rules.append(
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-service-from-master",
                security_group_id=groups["service"].id,
                description="EMR service access from the master node",
                ip_protocol="tcp",
                from_port=SERVICE_INGRESS_PORT,
                to_port=SERVICE_INGRESS_PORT,
                referenced_security_group_id=groups["master"].id,
                opts=child,
            )
        )
        return groups, rules

    def _security_configuration(self, name: str, args: ClusterArgs) -> pulumi.Output[str]:
        certificates_uri = in_transit_certificates(
            name,
            region=args.region,
            bucket=args.artifacts_bucket,
            # The cluster's children, as they always were: the same URNs in deployed stacks.
            opts=child_options(self, self._opts),
        )
        return pulumi.Output.json_dumps(
            {
                "EncryptionConfiguration": {
                    "EnableAtRestEncryption": True,
                    "EnableInTransitEncryption": True,
                    "AtRestEncryptionConfiguration": {
                        "S3EncryptionConfiguration": {
                            "EncryptionMode": "SSE-KMS",
                            "AwsKmsKey": args.kms_key_arn,
                        },
                        "LocalDiskEncryptionConfiguration": {
                            "EncryptionKeyProviderType": "AwsKms",
                            "AwsKmsKey": args.kms_key_arn,
                            "EnableEbsEncryption": True,
                        },
                    },
                    "InTransitEncryptionConfiguration": {
                        "TLSCertificateConfiguration": {
                            "CertificateProviderType": "PEM",
                            "S3Object": certificates_uri,
                        }
                    },
                }
            }
        )

    @staticmethod
    def _instance_type(
        instance_type: str, args: ClusterArgs
    ) -> aws.emr.InstanceFleetInstanceTypeConfigArgsDict:
        return {
            "instance_type": instance_type,
            "weighted_capacity": 1,
            "ebs_configs": [{"size": args.disk_gib, "type": "gp3", "volumes_per_instance": 1}],
        }

    def _task_fleet(self, name: str, cluster: aws.emr.Cluster, args: ClusterArgs) -> None:
        if args.task_max == 0:
            # No fleet to scale into; EMR refuses a fleet with no target capacity at all.
            return
        spot = args.task_capacity == "spot"
        configs = [self._instance_type(t, args) for t in args.task_types]
        if spot:
            for config in configs:
                # Never pay more than on-demand; price-capacity-optimized picks the pools.
                config["bid_price_as_percentage_of_on_demand_price"] = 100
        # EMR refuses a fleet whose spot and on-demand targets are both 0
        # (https://docs.aws.amazon.com/emr/latest/APIReference/API_InstanceFleetConfig.html),
        # so the fleet starts with one unit; managed scaling then takes it down to task_min
        # when the job does not need it.
        initial = max(args.task_min, 1)
        aws.emr.InstanceFleet(
            f"{name}-task",
            cluster_id=cluster.id,
            name="task",
            target_spot_capacity=initial if spot else 0,
            target_on_demand_capacity=0 if spot else initial,
            instance_type_configs=configs,
            launch_specifications={
                "spot_specifications": (
                    [
                        {
                            "allocation_strategy": args.spot_allocation,
                            "timeout_action": SPOT_PROVISIONING_TIMEOUT_ACTION,
                            "timeout_duration_minutes": SPOT_PROVISIONING_TIMEOUT_MINUTES,
                        }
                    ]
                    if spot
                    else []
                ),
                "on_demand_specifications": [{"allocation_strategy": ON_DEMAND_ALLOCATION}],
            },
            opts=child_options(
                self, self._opts, ignore_changes=["targetSpotCapacity", "targetOnDemandCapacity"]
            ),
        )
