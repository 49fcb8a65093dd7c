"""Invalid GCP stack configurations: refused with the key named, before any resource exists."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError
from tests.infra.gcp.conftest import GcpStack, with_kappa_prefix
from tests.infra.mocks import Recording
from tests.infra.program import GCP_BASE, run_main

SUBNET = "projects/acme-net/regions/europe-west1/subnetworks/data"
CLUSTER = "gcp:dataproc/cluster:Cluster"
INSTANCE = "gcp:bigtable/instance:Instance"

# Each case: config values, and the key the error must name.
INVALID_GCP: list[tuple[dict[str, Any], str]] = [
    ({"brokerRetentionHours": 800}, "kappa:brokerRetentionHours"),
    ({"brokerMaxDeliveryAttempts": 3}, "kappa:brokerMaxDeliveryAttempts"),
    ({"brokerShards": 4}, "kappa:brokerShards"),
    ({"clusterRelease": "2.2-debian12"}, "kappa:clusterRelease"),
    ({"clusterMasterType": "m6i.xlarge"}, "kappa:clusterMasterType"),
    ({"clusterCoreCount": 1}, "kappa:clusterCoreCount"),
    ({"clusterTaskTypes": ["n2-standard-4", "n2-standard-8"]}, "kappa:clusterTaskTypes"),
    ({"clusterTaskCapacity": "reserved"}, "kappa:clusterTaskCapacity"),
    ({"clusterTaskMin": 5, "clusterTaskMax": 2}, "kappa:clusterTaskMin"),
    ({"clusterIdleTimeoutMinutes": 4}, "kappa:clusterIdleTimeoutMinutes"),
    ({"clusterIdleTimeoutMinutes": 20161}, "kappa:clusterIdleTimeoutMinutes"),
    ({"clusterSpotAllocation": "lowest-price"}, "kappa:clusterSpotAllocation"),
    ({"clusterComponentGateway": "sometimes"}, "kappa:clusterComponentGateway"),
    ({"servingKind": "dynamodb"}, "kappa:servingKind"),
    ({"servingKind": "bigquery"}, "kappa:servingKind"),
    ({"servingMinNodes": 4, "servingMaxNodes": 2}, "kappa:servingMinNodes"),
    ({"servingMinNodes": 1, "servingMaxNodes": 11}, "kappa:servingMaxNodes"),
    ({"servingZone": "europe"}, "kappa:servingZone"),
    ({"servingZone": "us-central1-a"}, "kappa:servingZone"),
    ({"networkVpcId": "shared"}, "kappa:networkSubnetIds"),
    ({"networkVpcId": "shared", "networkSubnetIds": [SUBNET, "other"]}, "kappa:networkSubnetIds"),
    ({"networkVpcId": "Shared_VPC", "networkSubnetIds": [SUBNET]}, "kappa:networkVpcId"),
    (
        {"networkVpcId": "shared", "networkSubnetIds": [SUBNET], "networkEgress": "nat"},
        "kappa:networkEgress",
    ),
    ({"networkAzCount": 3}, "kappa:networkAzCount"),
    ({"kmsKey": "arn:aws:kms:eu-west-1:123456789012:key/abcd-1234"}, "kappa:kmsKey"),
    ({"kmsKey": "projects/sec/locations/us-east1/keyRings/r/cryptoKeys/k"}, "kappa:kmsKey"),
    ({"tags": {"Team": "data"}}, "kappa:tags.Team"),
    ({"tags": {f"team-{i}": "data" for i in range(29)}}, "kappa:tags"),
]


@pytest.mark.parametrize(
    ("values", "key"), INVALID_GCP, ids=[f"{key}-{i}" for i, (_, key) in enumerate(INVALID_GCP)]
)
def test_invalid_gcp_config_names_the_key_and_declares_nothing(values: dict[str, Any], key: str):
    recording = Recording()
    with pytest.raises(ConfigError) as error:
        run_main({**GCP_BASE, **with_kappa_prefix(values)}, recording=recording)
    assert key in str(error.value)
    assert len(recording) == 0


def refused(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        run_main({**GCP_BASE, **with_kappa_prefix(values)})
    return error.value.problems


def test_bigtable_autoscaling_may_span_a_factor_of_ten_at_most(gcp_stack: GcpStack):
    """Bigtable refuses an autoscaling maximum above 10 x the minimum: "the maximum node count
    in your range cannot be more than 10 times the minimum node count"
    (https://cloud.google.com/blog/products/databases/dive-deep-into-bigtable-autoscaling-and-how-it-optimizes-costs,
    https://cloud.google.com/bigtable/docs/autoscaling)."""
    (problem,) = refused({"servingMinNodes": 2, "servingMaxNodes": 21})
    assert problem == (
        "kappa:servingMaxNodes: got 21; Bigtable autoscaling allows at most "
        "10 x servingMinNodes (20)"
    )
    (instance,) = gcp_stack(servingMinNodes=2, servingMaxNodes=20).of_type(INSTANCE)
    assert instance["clusters"][0]["autoscalingConfig"]["maxNodes"] == 20


def test_an_ephemeral_cluster_may_go_after_dataprocs_five_minute_minimum(gcp_stack: GcpStack):
    """Dataproc's idle deletion takes 5 minutes to 14 days
    (https://cloud.google.com/dataproc/docs/concepts/configuring-clusters/scheduled-deletion,
    --max-idle; the API's LifecycleConfig.idleDeleteTtl, "Minimum value is 5 minutes; maximum
    value is 14 days":
    https://cloud.google.com/dotnet/docs/reference/Google.Cloud.Dataproc.V1/latest/Google.Cloud.Dataproc.V1.LifecycleConfig)."""
    recording = gcp_stack(clusterMode="ephemeral", clusterIdleTimeoutMinutes=5)
    (cluster,) = recording.of_type(CLUSTER)
    assert cluster["clusterConfig"]["lifecycleConfig"] == {"idleDeleteTtl": "300s"}
    (problem,) = refused({"clusterMode": "ephemeral", "clusterIdleTimeoutMinutes": 4})
    assert problem == "kappa:clusterIdleTimeoutMinutes: got 4; gcp allows 5-20160"


def test_a_dataproc_cluster_takes_at_most_32_labels(gcp_stack: GcpStack):
    """ "No more than 32 labels can be associated with a cluster" (Cluster.labels,
    https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.clusters); the
    stack adds project, stack and environment, and the gcp provider goog-pulumi-provisioned
    (https://www.pulumi.com/registry/packages/gcp/how-to-guides/8-0-migration/, "Default
    label")."""
    (cluster,) = gcp_stack(tags={f"team-{i}": "data" for i in range(28)}).of_type(CLUSTER)
    assert len(cluster["labels"]) + 1 == 32
    (problem,) = refused({"tags": {f"team-{i}": "data" for i in range(29)}})
    assert problem.startswith("kappa:tags: got 29 tags; a Dataproc cluster takes at most 32")
    assert problem.endswith("at most 28 of your own")
