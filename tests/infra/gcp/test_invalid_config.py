"""Invalid GCP stack configurations: refused with the key named, before any resource exists."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError
from tests.infra.gcp.conftest import with_kappa_prefix
from tests.infra.mocks import Recording
from tests.infra.program import GCP_BASE, run_main

SUBNET = "projects/acme-net/regions/europe-west1/subnetworks/data"

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
    ({"clusterIdleTimeoutMinutes": 5}, "kappa:clusterIdleTimeoutMinutes"),
    ({"clusterSpotAllocation": "lowest-price"}, "kappa:clusterSpotAllocation"),
    ({"clusterComponentGateway": "sometimes"}, "kappa:clusterComponentGateway"),
    ({"servingKind": "dynamodb"}, "kappa:servingKind"),
    ({"servingKind": "bigquery"}, "kappa:servingKind"),
    ({"servingMinNodes": 4, "servingMaxNodes": 2}, "kappa:servingMinNodes"),
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
