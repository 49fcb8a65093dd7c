"""A component told to wait for something passes that on to every resource it declares.

Pulumi does not hand a component's depends_on to its children: without the shared helper
(infra/options.py) a layer composed after another would create its resources at once. Each
layer of both clouds is checked alone, and each cloud's Platform as a whole: a gate given to
the Platform holds back every resource of the stack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from infra.artifacts import bootstrap_script, build_job_bundle
from infra.aws.broker import Broker, BrokerArgs
from infra.aws.cluster import Cluster
from infra.aws.encryption import Encryption, EncryptionArgs
from infra.aws.iam import ClusterIdentity, ClusterIdentityArgs
from infra.aws.job import StreamingJob, StreamingJobArgs
from infra.aws.lake import Lake, LakeArgs
from infra.aws.network import Network, NetworkArgs
from infra.aws.platform import Platform as AwsPlatform
from infra.aws.serving import Serving, ServingArgs
from infra.config import load_config
from infra.gcp import broker as gcp_broker
from infra.gcp import cluster as gcp_cluster
from infra.gcp import iam as gcp_iam
from infra.gcp import job as gcp_job
from infra.gcp import lake as gcp_lake
from infra.gcp import network as gcp_network
from infra.gcp import services as gcp_services
from infra.gcp import serving as gcp_serving
from infra.gcp.platform import INIT_SCRIPT
from infra.gcp.platform import Platform as GcpPlatform
from tests.infra.aws.test_cluster import PLATFORM_CLUSTER
from tests.infra.gcp.conftest import CMEK_KEY, built_wheelhouse
from tests.infra.mocks import Recording, run_program
from tests.infra.program import AWS_BASE, GCP_BASE, as_the_cli_merges_it

KEY = "arn:aws:kms:eu-west-1:123456789012:key/composed"
GATE = "aws:s3/bucket:Bucket"
PROJECT = "acme-data"
GCP_REGION = "europe-west1"

LAYERS: dict[str, Callable[[pulumi.ResourceOptions], object]] = {
    "aws-encryption": lambda o: Encryption("c", EncryptionArgs(), opts=o),
    "aws-lake": lambda o: Lake("c", LakeArgs(kms_key_arn=KEY), opts=o),
    "aws-broker": lambda o: Broker("c", BrokerArgs(kms_key_id=KEY), opts=o),
    "aws-serving": lambda o: Serving("c", ServingArgs(kms_key_arn=KEY), opts=o),
    "aws-network": lambda o: Network("c", NetworkArgs(region="eu-west-1", egress="nat"), opts=o),
    "aws-identity": lambda o: ClusterIdentity(
        "c",
        ClusterIdentityArgs(
            stream_arn="arn:aws:kinesis:eu-west-1:123456789012:stream/s",
            kms_key_arn=KEY,
            read_bucket_arns=["arn:aws:s3:::a"],
            write_bucket_arns=["arn:aws:s3:::b"],
        ),
        opts=o,
    ),
    "aws-cluster": lambda o: Cluster("c", PLATFORM_CLUSTER, opts=o),
    "aws-job": lambda o: StreamingJob(
        "c",
        StreamingJobArgs(
            cluster_id="j-PLATFORM00001",
            region="eu-west-1",
            artifacts_bucket="platform-artifacts",
            control_uri="s3://platform-checkpoints/_control",
            bundle=build_job_bundle(),
            specs={"v1": "{}"},
        ),
        opts=o,
    ),
    # With CMEK: the layers then also declare service identities and key grants.
    "gcp-services": lambda o: gcp_services.Services(
        "c", gcp_services.ServicesArgs(project=PROJECT), opts=o
    ),
    "gcp-lake": lambda o: gcp_lake.Lake(
        "c", gcp_lake.LakeArgs(project=PROJECT, location=GCP_REGION, kms_key=CMEK_KEY), opts=o
    ),
    "gcp-broker": lambda o: gcp_broker.Broker(
        "c",
        gcp_broker.BrokerArgs(
            project=PROJECT, region=GCP_REGION, versions=("v1", "v2"), kms_key=CMEK_KEY
        ),
        opts=o,
    ),
    "gcp-serving": lambda o: gcp_serving.Serving(
        "c",
        gcp_serving.ServingArgs(project=PROJECT, zone="europe-west1-b", kms_key=CMEK_KEY),
        opts=o,
    ),
    "gcp-network": lambda o: gcp_network.Network(
        "c", gcp_network.NetworkArgs(project=PROJECT, region=GCP_REGION, egress="nat"), opts=o
    ),
    "gcp-identity": lambda o: gcp_iam.ClusterIdentity(
        "c",
        gcp_iam.ClusterIdentityArgs(
            project=PROJECT,
            read_buckets={"artifacts": "platform-artifacts"},
            write_buckets={"staging": "platform-staging", "logs": "platform-logs"},
            subscriptions={"v1": "platform-events-kappa"},
        ),
        opts=o,
    ),
    "gcp-cluster": lambda o: gcp_cluster.Cluster(
        "c",
        gcp_cluster.ClusterArgs(
            project=PROJECT,
            region=GCP_REGION,
            subnetwork="projects/acme-net/regions/europe-west1/subnetworks/data",
            service_account="dataproc@acme-data.iam.gserviceaccount.com",
            artifacts_bucket="platform-artifacts",
            init_script=bootstrap_script(INIT_SCRIPT),
            wheelhouse=built_wheelhouse(),
            kms_key=CMEK_KEY,
        ),
        opts=o,
    ),
    "gcp-job": lambda o: gcp_job.StreamingJob(
        "c",
        gcp_job.StreamingJobArgs(
            project=PROJECT,
            region=GCP_REGION,
            cluster_name="platform-cluster",
            artifacts_bucket="platform-artifacts",
            bundle=build_job_bundle(),
            specs={"v1": "{}"},
        ),
        opts=o,
    ),
}


def assert_everything_waits_for_the_gate(recording: Recording) -> None:
    gate = recording.named("gate", GATE)
    declared = [r for r in recording if r.name != "gate"]
    assert declared
    not_waiting = [f"{r.type} {r.name}" for r in declared if not recording.depends_on(r, gate)]
    assert not not_waiting, f"{len(not_waiting)} of {len(declared)}: {not_waiting}"


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_layers_dependency_reaches_every_resource_it_declares(layer: str):
    def program() -> None:
        gate = aws.s3.Bucket("gate")
        LAYERS[layer](pulumi.ResourceOptions(depends_on=[gate]))

    assert_everything_waits_for_the_gate(run_program(program, {"aws:region": "eu-west-1"}))


# Each cloud's default stack, and one with the optional parts on (NAT, and on GCP CMEK).
PLATFORMS: dict[str, tuple[type[Any], dict[str, Any]]] = {
    "aws": (AwsPlatform, AWS_BASE),
    "aws-nat": (AwsPlatform, {**AWS_BASE, "kappa:networkEgress": "nat"}),
    "gcp": (GcpPlatform, GCP_BASE),
    "gcp-cmek-nat": (
        GcpPlatform,
        {**GCP_BASE, "kappa:kmsKey": CMEK_KEY, "kappa:networkEgress": "nat"},
    ),
}


@pytest.mark.parametrize("stack", sorted(PLATFORMS))
def test_a_platforms_dependency_reaches_every_resource_of_the_stack(stack: str):
    platform, config = PLATFORMS[stack]

    def program() -> None:
        gate = aws.s3.Bucket("gate")
        platform(
            "kappa-test",
            load_config(),
            wheelhouse=built_wheelhouse(),
            opts=pulumi.ResourceOptions(depends_on=[gate]),
        )

    assert_everything_waits_for_the_gate(run_program(program, as_the_cli_merges_it(config)))
