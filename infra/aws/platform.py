"""The whole Kappa stack on AWS: key, lake, broker, serving, network, identity, cluster, job."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
from kappa.spec import KinesisSource, Storage

from infra.artifacts import Artifact, bootstrap_script, build_job_bundle
from infra.aws.broker import Broker, BrokerArgs
from infra.aws.cluster import BootstrapAction, Cluster, ClusterArgs
from infra.aws.encryption import Encryption, EncryptionArgs, checked_key
from infra.aws.iam import ClusterIdentity, ClusterIdentityArgs
from infra.aws.job import EMR_KINESIS_CONNECTOR_JAR, StreamingJob, StreamingJobArgs, upload
from infra.aws.lake import Lake, LakeArgs
from infra.aws.network import Network, NetworkArgs
from infra.aws.policy import EMR_MANAGED_POLICY_TAG
from infra.aws.serving import Serving, ServingArgs
from infra.aws.stores import store_for
from infra.config import StackConfig
from infra.options import child_options
from infra.pipeline import build_spec

BOOTSTRAP_SCRIPT = "emr-bootstrap.sh"
CLUSTER_TAG_KEY = "kappa-cluster"
# Where in the logs bucket EMR keeps the cluster's logs; the nodes may write only there.
LOG_PREFIX = "emr/"


class Platform(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        config: StackConfig,
        *,
        wheelhouse: Artifact,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kappa:aws:Platform", name, None, opts)
        self.config = config
        self._opts = opts
        child = child_options(self, opts)
        tags = config.tags

        if config.general.kms_key:
            key_arn: pulumi.Input[str] = checked_key(config.general.kms_key, self)
        else:
            key_arn = Encryption(
                name,
                EncryptionArgs(protect=config.deletion_protection, tags=tags),
                opts=child,
            ).key_arn

        retention = config.retention
        self.lake = Lake(
            name,
            LakeArgs(
                kms_key_arn=key_arn,
                archive_cold_after_days=retention.archive_cold_after_days,
                archive_archive_after_days=retention.archive_archive_after_days,
                archive_expire_after_days=retention.archive_expire_after_days,
                log_days=retention.log_days,
                dead_letter_days=retention.dead_letter_days,
                force_destroy=not config.deletion_protection,
                protect=config.deletion_protection,
                tags=tags,
            ),
            opts=child,
        )
        broker = config.broker
        self.broker = Broker(
            name,
            BrokerArgs(
                kms_key_id=key_arn,
                mode=broker.mode,
                ingest_kib_per_second=broker.ingest_kib_per_second,
                ingest_records_per_second=broker.ingest_records_per_second,
                read_consumers=broker.read_consumers,
                pipeline_versions=len(config.pipeline.versions),
                reader=broker.reader,
                headroom_percent=broker.headroom_percent,
                shards=broker.shards,
                retention_hours=broker.retention_hours,
                protect=config.deletion_protection,
                tags=tags,
            ),
            opts=child,
        )
        self.serving = Serving(
            name,
            ServingArgs(
                kms_key_arn=key_arn,
                versions=config.pipeline.versions,
                live_version=config.pipeline.live,
                kind=config.serving_kind,
                deletion_protection=config.deletion_protection,
                tags=tags,
            ),
            opts=child,
        )
        vpc_id, subnet_ids = self._network(name, config)

        artifacts = self.lake.names["artifacts"]
        bootstrap = bootstrap_script(BOOTSTRAP_SCRIPT)
        bootstrap_uri = upload(f"{name}-bootstrap", artifacts, bootstrap, self, opts)
        wheelhouse_uri = upload(f"{name}-wheelhouse", artifacts, wheelhouse, self, opts)

        lake_arns = self.lake.arns
        identity = ClusterIdentity(
            name,
            ClusterIdentityArgs(
                stream_arn=self.broker.arn,
                kms_key_arn=key_arn,
                read_bucket_arns=[lake_arns["artifacts"]],
                write_bucket_arns=[
                    lake_arns[role] for role in ("archive", "checkpoints", "dead_letters")
                ],
                log_arn_prefix=pulumi.Output.concat(lake_arns["logs"], "/", LOG_PREFIX),
                stream_reader=config.broker.reader,
                region=config.region,
                permissions_boundary=config.general.permissions_boundary,
                serving_grants=self.serving.grants,
                tags=tags,
            ),
            opts=child,
        )
        cluster_config = config.cluster
        task_capacity = "on_demand" if cluster_config.task_capacity == "on_demand" else "spot"
        self.cluster = Cluster(
            name,
            ClusterArgs(
                vpc_id=vpc_id,
                subnet_ids=subnet_ids,
                service_role_arn=identity.service_role_arn,
                instance_profile_arn=identity.instance_profile_arn,
                kms_key_arn=key_arn,
                log_uri=pulumi.Output.format("s3://{0}/{1}", self.lake.names["logs"], LOG_PREFIX),
                artifacts_bucket=artifacts,
                region=config.region,
                bootstrap_actions=[
                    BootstrapAction(
                        name="kappa-node-setup",
                        path=bootstrap_uri,
                        args=[wheelhouse_uri, wheelhouse.sha256],
                    )
                ],
                release=config.release,
                mode=cluster_config.mode,
                idle_timeout_minutes=cluster_config.idle_timeout_minutes,
                master_type=config.master_type,
                core_type=config.core_type,
                core_count=cluster_config.core_count,
                task_types=config.task_types,
                task_capacity=task_capacity,
                task_min=cluster_config.task_min,
                task_max=cluster_config.task_max,
                spot_allocation=cluster_config.spot_allocation,
                disk_gib=cluster_config.disk_gib,
                termination_protection=(
                    config.deletion_protection and cluster_config.mode == "long_running"
                ),
                aws_profile=config.aws_profile,
                aws_assume_roles=config.aws_role_chain,
                tags={**tags, CLUSTER_TAG_KEY: name},
            ),
            opts=child,
        )

        checkpoints = self.lake.names["checkpoints"]
        self.job = StreamingJob(
            name,
            StreamingJobArgs(
                cluster_id=self.cluster.id,
                region=config.region,
                artifacts_bucket=artifacts,
                control_uri=pulumi.Output.format("s3://{0}/_control", checkpoints),
                bundle=build_job_bundle(),
                specs={version: self._spec(version) for version in config.pipeline.versions},
                application_prefix=name,
                jars=(
                    (EMR_KINESIS_CONNECTOR_JAR,) if config.broker.reader == "emr-connector" else ()
                ),
                aws_profile=config.aws_profile,
                aws_assume_roles=config.aws_role_chain,
            ),
            opts=child,
        )
        self.register_outputs(self.stack_outputs())

    def _network(
        self, name: str, config: StackConfig
    ) -> tuple[pulumi.Input[str], list[pulumi.Input[str]]]:
        network = config.network
        if network.vpc_id is not None and network.subnet_ids is not None:
            for index, subnet in enumerate(network.subnet_ids):
                # AmazonEMRServicePolicy_v2 launches instances only into subnets with this tag.
                ((tag_key, tag_value),) = EMR_MANAGED_POLICY_TAG.items()
                aws.ec2.Tag(
                    f"{name}-subnet-{index}-emr",
                    resource_id=subnet,
                    key=tag_key,
                    value=tag_value,
                    opts=child_options(self, self._opts),
                )
            return network.vpc_id, list(network.subnet_ids)
        created = Network(
            name,
            NetworkArgs(
                region=config.region,
                cidr=network.cidr,
                az_count=network.az_count,
                egress=network.egress,
                store_gateways=store_for(config.serving_kind).services,
                tags=config.tags,
            ),
            opts=child_options(self, self._opts),
        )
        return created.vpc_id, list(created.subnet_ids)

    def _spec(self, version: str) -> pulumi.Output[str]:
        config = self.config
        names = self.lake.names
        return pulumi.Output.all(
            self.broker.name,
            names["archive"],
            names["dead_letters"],
            names["checkpoints"],
            self.serving.spec_sink(region=config.region, ttl_days=config.serving.ttl_days),
        ).apply(
            lambda values: build_spec(
                config.pipeline,
                version,
                source=KinesisSource(
                    stream_name=values[0], region=config.region, reader=config.broker.reader
                ),
                sink=values[4],
                storage=Storage(
                    archive_uri=f"s3://{values[1]}",
                    dead_letter_uri=f"s3://{values[2]}",
                    checkpoint_uri=f"s3://{values[3]}",
                ),
            ).to_json()
        )

    def stack_outputs(self) -> dict[str, pulumi.Input]:
        """What an operator or a composing stack needs; the GCP platform uses the same names."""
        return {
            "cloud": "aws",
            "region": self.config.region,
            "broker_name": self.broker.name,
            "broker_id": self.broker.arn,
            "buckets": self.lake.names,
            "cluster_id": self.cluster.id,
            "cluster_master": self.cluster.master_dns,
            "serving_kind": self.serving.kind,
            "serving_table": self.serving.live_table,
            "serving_tables": self.serving.tables,
            "job_specs": self.job.spec_uris,
            "job_bundle": self.job.bundle_uri,
            "logs_uri": pulumi.Output.format("s3://{0}/{1}", self.lake.names["logs"], LOG_PREFIX),
        }
