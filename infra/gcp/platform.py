"""The whole Kappa stack on Google Cloud: APIs, lake, broker, serving, network, identity,
cluster and the streaming job, wired from the stack's configuration."""

from __future__ import annotations

import pulumi
from kappa.spec import PubSubSource, Storage

from infra.artifacts import Artifact, bootstrap_script, build_job_bundle
from infra.config import PROJECT, ConfigError, StackConfig
from infra.gcp.broker import Broker, BrokerArgs, ack_deadline_for
from infra.gcp.cluster import PREEMPTIBILITY, Cluster, ClusterArgs
from infra.gcp.common import labels
from infra.gcp.iam import ClusterIdentity, ClusterIdentityArgs
from infra.gcp.job import StreamingJob, StreamingJobArgs
from infra.gcp.lake import Lake, LakeArgs
from infra.gcp.network import Network, NetworkArgs
from infra.gcp.services import Services, ServicesArgs, required_apis
from infra.gcp.serving import Serving, ServingArgs
from infra.gcp.stores import store_for
from infra.options import child_options
from infra.pipeline import build_spec

INIT_SCRIPT = "dataproc-init.sh"
CLUSTER_TAG_SUFFIX = "dataproc"
READ_ONLY_BUCKETS = ("artifacts",)
READ_WRITE_BUCKETS = ("archive", "checkpoints", "staging", "logs", "dead_letters")


class Platform(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        config: StackConfig,
        *,
        wheelhouse: Artifact,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        if config.cloud != "gcp":
            raise ConfigError([f"{PROJECT}:cloud: got {config.cloud!r}; this is the gcp platform"])
        super().__init__("kappa:gcp:Platform", name, None, opts)
        assert config.project is not None  # StackConfig requires it on gcp
        self.config = config
        project, region = config.project, config.region
        tags = labels(config.tags)
        kms_key = config.general.kms_key
        protect = config.deletion_protection

        self.services = Services(
            name,
            ServicesArgs(
                project=project,
                apis=required_apis(
                    cmek=kms_key is not None, store_apis=store_for(config.serving_kind).services
                ),
            ),
            opts=child_options(self, opts),
        )
        # Every layer waits for the APIs it calls.
        after_apis = child_options(self, opts, self.services)

        retention = config.retention
        self.lake = Lake(
            name,
            LakeArgs(
                project=project,
                location=region,
                labels=tags,
                kms_key=kms_key,
                protect=protect,
                archive_cold_after_days=retention.archive_cold_after_days,
                archive_archive_after_days=retention.archive_archive_after_days,
                archive_expire_after_days=retention.archive_expire_after_days,
                log_days=retention.log_days,
                dead_letter_days=retention.dead_letter_days,
            ),
            opts=after_apis,
        )
        pipeline = config.pipeline
        # The subscription and the job's reader agree on how long a pulled message stays leased.
        self.ack_deadline_seconds = ack_deadline_for(pipeline.trigger_seconds)
        self.broker = Broker(
            name,
            BrokerArgs(
                project=project,
                region=region,
                versions=pipeline.versions,
                retention_hours=config.broker.retention_hours,
                ack_deadline_seconds=self.ack_deadline_seconds,
                max_delivery_attempts=config.broker.max_delivery_attempts,
                labels=tags,
                kms_key=kms_key,
                protect=protect,
            ),
            opts=after_apis,
        )
        self.serving = Serving(
            name,
            ServingArgs(
                project=project,
                zone=config.serving_zone,
                versions=pipeline.versions,
                live_version=pipeline.live,
                kind=config.serving_kind,
                min_nodes=config.serving.min_nodes,
                max_nodes=config.serving.max_nodes,
                ttl_days=config.serving.ttl_days,
                labels=tags,
                kms_key=kms_key,
                protect=protect,
            ),
            opts=after_apis,
        )
        cluster_tag = f"{name}-{CLUSTER_TAG_SUFFIX}"
        network = config.network
        self.network = Network(
            name,
            NetworkArgs(
                project=project,
                region=region,
                cidr=network.cidr,
                egress=network.egress,
                network=network.vpc_id,
                subnetwork=network.subnet_ids[0] if network.subnet_ids else None,
                cluster_tag=cluster_tag,
            ),
            opts=after_apis,
        )
        buckets = self.lake.names
        self.identity = ClusterIdentity(
            name,
            ClusterIdentityArgs(
                project=project,
                read_buckets={role: buckets[role] for role in READ_ONLY_BUCKETS},
                write_buckets={role: buckets[role] for role in READ_WRITE_BUCKETS},
                subscriptions={v: s.name for v, s in self.broker.subscriptions.items()},
                serving_grants=self.serving.grants,
            ),
            opts=after_apis,
        )
        cluster = config.cluster
        self.cluster = Cluster(
            name,
            ClusterArgs(
                project=project,
                region=region,
                subnetwork=self.network.subnetwork,
                service_account=self.identity.email,
                image_version=config.release,
                master_type=config.master_type,
                worker_type=config.core_type,
                worker_count=cluster.core_count,
                secondary_type=config.task_types[0],
                secondary_min=cluster.task_min,
                secondary_max=cluster.task_max,
                preemptibility=PREEMPTIBILITY[cluster.task_capacity],
                disk_gib=cluster.disk_gib,
                mode=cluster.mode,
                idle_delete_minutes=cluster.idle_timeout_minutes,
                # Spark history and other ephemeral files land with the logs and expire with
                # them; the cluster's configuration files must not, so they get their own.
                staging_bucket=buckets["staging"],
                temp_bucket=buckets["logs"],
                artifacts_bucket=buckets["artifacts"],
                init_script=bootstrap_script(INIT_SCRIPT),
                wheelhouse=wheelhouse,
                network_tags=(cluster_tag,),
                component_gateway=cluster.component_gateway,
                labels=tags,
                kms_key=kms_key,
            ),
            # Nodes read the init action and write logs as the service account from their
            # first boot, so its grants must exist, and have taken effect (the cluster waits
            # ClusterArgs.iam_propagation_seconds after them), before the cluster does.
            opts=child_options(self, opts, self.services, self.identity),
        )
        self.job = StreamingJob(
            name,
            StreamingJobArgs(
                project=project,
                region=region,
                cluster_name=self.cluster.name,
                artifacts_bucket=buckets["artifacts"],
                bundle=build_job_bundle(),
                specs={version: self._spec(version) for version in pipeline.versions},
                labels=tags,
            ),
            opts=after_apis,
        )
        self.register_outputs(self.stack_outputs())

    def _spec(self, version: str) -> pulumi.Output[str]:
        config = self.config
        uris = self.lake.uris
        return pulumi.Output.all(
            self.broker.subscription_paths[version],
            self.serving.spec_sink(
                region=config.region, project=config.project, ttl_days=config.serving.ttl_days
            ),
            uris["archive"],
            uris["dead_letters"],
            uris["checkpoints"],
        ).apply(
            lambda values: build_spec(
                config.pipeline,
                version,
                source=PubSubSource(
                    subscription=values[0],
                    ack_deadline_seconds=self.ack_deadline_seconds,
                    # A new version's first start seeks back over what the topic retains.
                    replay_window_seconds=config.broker.retention_hours * 3600,
                ),
                sink=values[1],
                storage=Storage(
                    archive_uri=values[2], dead_letter_uri=values[3], checkpoint_uri=values[4]
                ),
            ).to_json()
        )

    def stack_outputs(self) -> dict[str, pulumi.Input]:
        """What an operator or a composing stack needs; the AWS platform uses the same names."""
        return {
            "cloud": "gcp",
            "region": self.config.region,
            "broker_name": self.broker.topic_name,
            "broker_id": self.broker.topic_id,
            "buckets": self.lake.names,
            "cluster_id": self.cluster.id,
            "cluster_master": self.cluster.master_instance,
            "serving_kind": self.serving.kind,
            "serving_table": self.serving.live_table,
            "serving_tables": self.serving.tables,
            "job_specs": self.job.spec_uris,
            "job_bundle": self.job.bundle_uri,
            "logs_uri": self.lake.uris["logs"],
        }
