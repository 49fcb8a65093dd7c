"""A component told to wait for something passes that on to every resource it declares.

Pulumi does not hand a component's depends_on to its children: without the shared helper
(infra/options.py) a layer composed after another would create its resources at once."""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_aws as aws
import pytest

from infra.aws.broker import Broker, BrokerArgs
from infra.aws.cluster import Cluster
from infra.aws.encryption import Encryption, EncryptionArgs
from infra.aws.iam import ClusterIdentity, ClusterIdentityArgs
from infra.aws.lake import Lake, LakeArgs
from infra.aws.network import Network, NetworkArgs
from infra.aws.serving import Serving, ServingArgs
from infra.gcp.lake import Lake as GcpLake
from infra.gcp.lake import LakeArgs as GcpLakeArgs
from tests.infra.aws.test_cluster import PLATFORM_CLUSTER
from tests.infra.mocks import run_program

KEY = "arn:aws:kms:eu-west-1:123456789012:key/composed"
GATE = "aws:s3/bucket:Bucket"
GCP_LAKE = GcpLakeArgs(project="acme", location="europe-west1")

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
    "gcp-lake": lambda o: GcpLake("c", GCP_LAKE, opts=o),
}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_layers_dependency_reaches_every_resource_it_declares(layer: str):
    def program() -> None:
        gate = aws.s3.Bucket("gate")
        LAYERS[layer](pulumi.ResourceOptions(depends_on=[gate]))

    recording = run_program(program, {"aws:region": "eu-west-1"})
    gate = recording.named("gate", GATE)
    declared = [
        r for r in recording if r.name != "gate" and not r.type.startswith("pulumi-python:dynamic")
    ]
    assert declared
    for resource in declared:
        assert recording.depends_on(resource, gate), f"{resource.type} {resource.name}"
