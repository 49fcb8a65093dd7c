"""The GCP platform as a whole: its layers, its outputs, and the program for real stack files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.outputs import STACK_OUTPUTS
from tests.infra.gcp.conftest import CMEK_KEY, GcpStack, named, with_kappa_prefix
from tests.infra.mocks import Recording
from tests.infra.program import GCP_BASE, REPO, fake_wheelhouse_installed, run_main

LAYERS = {
    "kappa:gcp:Services",
    "kappa:gcp:Lake",
    "kappa:gcp:Broker",
    "kappa:gcp:Serving",
    "kappa:gcp:Network",
    "kappa:gcp:ClusterIdentity",
    "kappa:gcp:Cluster",
    "kappa:gcp:StreamingJob",
}
OUTPUTS = set(STACK_OUTPUTS)
CLUSTER = "gcp:dataproc/cluster:Cluster"


def stack_file(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())["config"]


def test_platform_is_one_component_per_layer(default_stack: Recording):
    (platform,) = default_stack.of_type("kappa:gcp:Platform")
    layers = [r for r in default_stack if r.type.startswith("kappa:gcp:") and r is not platform]
    assert {r.type for r in layers} == LAYERS
    for layer in layers:
        assert layer.parent is not None
        assert layer.parent.endswith("kappa:gcp:Platform::kappa-test")


def test_every_cloud_resource_belongs_to_a_layer(default_stack: Recording):
    for resource in default_stack:
        if resource.type.startswith("gcp:"):
            assert resource.parent is not None
            assert resource.parent.split("::")[-2].split("$")[-1] in LAYERS, resource.name


def test_resource_names_derive_from_the_stack(gcp_stack: GcpStack):
    recording = gcp_stack(stack="staging")
    assert all(r.name.startswith("kappa-staging") for r in recording)


def test_exports_the_same_output_names_as_the_aws_stack(default_stack: Recording):
    assert set(default_stack.outputs) == OUTPUTS


def test_outputs_name_the_stacks_resources(default_stack: Recording):
    outputs = default_stack.outputs
    topic = named(default_stack, "gcp:pubsub/topic:Topic", "kappa-test-events")
    cluster = default_stack.one(CLUSTER)
    assert (outputs["cloud"], outputs["region"]) == ("gcp", "europe-west1")
    assert (outputs["broker_name"], outputs["broker_id"]) == (
        topic.outputs["name"],
        topic.outputs["id"],
    )
    assert outputs["cluster_id"] == cluster.outputs["id"]
    assert outputs["cluster_master"] == f"{cluster.outputs['name']}-m"
    assert outputs["serving_kind"] == "bigtable"


def test_outputs_name_every_bucket_by_role(default_stack: Recording):
    buckets = default_stack.outputs["buckets"]
    data = {"archive", "checkpoints", "dead_letters"}
    assert set(buckets) == data | {"artifacts", "staging", "logs"}
    assert (
        buckets["logs"]
        == named(default_stack, "gcp:storage/bucket:Bucket", "kappa-test-logs").outputs["name"]
    )
    assert default_stack.outputs["logs_uri"] == f"gs://{buckets['logs']}"


def test_outputs_point_at_the_uploaded_spec_and_bundle(default_stack: Recording):
    job = named(default_stack, "gcp:dataproc/job:Job", "kappa-test-v1")["pysparkConfig"]
    assert default_stack.outputs["job_specs"] == {"v1": job["args"][1]}
    assert default_stack.outputs["job_bundle"] == job["pythonFileUris"][0]


def test_serving_table_is_the_live_versions(gcp_stack: GcpStack):
    outputs = gcp_stack(pipelineVersions=["v1", "v2"], pipelineLiveVersion="v2").outputs
    assert outputs["serving_tables"] == {"v1": "aggregates_v1", "v2": "aggregates_v2"}
    assert outputs["serving_table"] == "aggregates_v2"


# --- the whole program (__main__.py), for the checked-in stack file and its variants ------


@pytest.fixture(scope="module")
def gcp_yaml() -> dict[str, Any]:
    return stack_file(REPO / "Pulumi.gcp.yaml")


@pytest.fixture(scope="module")
def gcp_yaml_stack(gcp_yaml: dict[str, Any]) -> Recording:
    with fake_wheelhouse_installed():
        return run_main(gcp_yaml, stack="gcp")


def test_program_builds_the_gcp_platform_for_pulumi_gcp_yaml(gcp_yaml_stack: Recording):
    assert len(gcp_yaml_stack.of_type("kappa:gcp:Platform")) == 1
    assert set(gcp_yaml_stack.outputs) == OUTPUTS
    assert gcp_yaml_stack.outputs["region"] == "europe-west1"


def test_pulumi_gcp_yaml_values_reach_the_resources(
    gcp_yaml: dict[str, Any], gcp_yaml_stack: Recording
):
    policy = gcp_yaml_stack.one("gcp:dataproc/autoscalingPolicy:AutoscalingPolicy")
    assert policy["secondaryWorkerConfig"]["maxInstances"] == gcp_yaml["kappa:clusterTaskMax"]
    assert {s["project"] for s in gcp_yaml_stack.of_type("gcp:projects/service:Service")} == {
        gcp_yaml["gcp:project"]
    }
    labels = gcp_yaml_stack.one(CLUSTER)["labels"]
    for key, value in gcp_yaml["kappa:tags"].items():
        assert labels[key] == value


def test_pulumi_gcp_yaml_is_protected_outside_dev(gcp_yaml_stack: Recording):
    assert gcp_yaml_stack.one("gcp:bigtable/instance:Instance")["deletionProtection"] is True
    archive = named(gcp_yaml_stack, "gcp:storage/bucket:Bucket", "kappa-gcp-archive")
    assert archive["deletionPolicy"] == "PREVENT"


def test_pulumi_itself_refuses_to_delete_the_gcp_data_outside_dev(gcp_yaml_stack: Recording):
    """Beside each service's own deletion protection, Pulumi's `protect`, as on AWS: a
    `pulumi destroy` or a replacement stops before it touches the data."""
    protected = {(r.type, r.name) for r in gcp_yaml_stack if r.protected}
    bucket, topic = "gcp:storage/bucket:Bucket", "gcp:pubsub/topic:Topic"
    for role in ("archive", "checkpoints", "dead-letters"):
        assert (bucket, f"kappa-gcp-{role}") in protected
    for role in ("artifacts", "logs"):
        assert (bucket, f"kappa-gcp-{role}") not in protected
    assert (topic, "kappa-gcp-events") in protected
    assert (topic, "kappa-gcp-dead-letter") in protected
    assert ("gcp:bigtable/instance:Instance", "kappa-gcp-serving") in protected
    assert ("gcp:bigtable/table:Table", "kappa-gcp-v1") in protected


def test_a_dev_gcp_stack_protects_nothing():
    assert [r.name for r in run_variant(environment="dev") if r.protected] == []


def run_variant(**overrides: Any) -> Recording:
    return run_main({**GCP_BASE, **with_kappa_prefix(overrides)})


def test_program_runs_an_ephemeral_cluster():
    recording = run_variant(clusterMode="ephemeral", clusterIdleTimeoutMinutes=30)
    config = recording.one(CLUSTER)["clusterConfig"]
    assert config["lifecycleConfig"] == {"idleDeleteTtl": "1800s"}


def test_program_runs_in_a_network_brought_along():
    subnet = "projects/acme-net/regions/europe-west1/subnetworks/data"
    recording = run_variant(networkVpcId="shared", networkSubnetIds=[subnet])
    assert recording.of_type("gcp:compute/network:Network") == []
    assert recording.one(CLUSTER)["clusterConfig"]["gceClusterConfig"]["subnetwork"] == subnet


def test_program_encrypts_every_store_with_a_customer_key():
    recording = run_variant(kmsKey=CMEK_KEY)
    assert {
        b["encryption"]["defaultKmsKeyName"] for b in recording.of_type("gcp:storage/bucket:Bucket")
    } == {CMEK_KEY}
    assert {t["kmsKeyName"] for t in recording.of_type("gcp:pubsub/topic:Topic")} == {CMEK_KEY}
    (bigtable,) = recording.one("gcp:bigtable/instance:Instance")["clusters"]
    assert bigtable["kmsKeyName"] == CMEK_KEY
    assert recording.one(CLUSTER)["clusterConfig"]["encryptionConfig"] == {"kmsKeyName": CMEK_KEY}
    grants = recording.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    assert len(grants) == 5  # storage, pubsub, bigtable, compute and dataproc agents
    assert {g["cryptoKeyId"] for g in grants} == {CMEK_KEY}
