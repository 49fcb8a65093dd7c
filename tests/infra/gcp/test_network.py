"""Network: a private subnet reaching Google APIs, intra-cluster traffic only, NAT on request."""

from __future__ import annotations

import pulumi
import pytest

from infra.gcp.network import Network, NetworkArgs
from tests.infra.gcp.conftest import GcpStack, run_layer
from tests.infra.mocks import Recording

VPC = "gcp:compute/network:Network"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
FIREWALL = "gcp:compute/firewall:Firewall"
ROUTER = "gcp:compute/router:Router"
NAT = "gcp:compute/routerNat:RouterNat"
BYO_NETWORK = "projects/acme-net/global/networks/shared"
BYO_SUBNET = "projects/acme-net/regions/europe-west1/subnetworks/data"


def test_vpc_has_no_automatic_subnets(default_stack: Recording):
    assert default_stack.one(VPC)["autoCreateSubnetworks"] is False


def test_subnet_reaches_google_apis_privately(default_stack: Recording):
    subnet = default_stack.one(SUBNET)
    assert subnet["privateIpGoogleAccess"] is True
    assert subnet["network"] == default_stack.one(VPC).outputs["id"]
    assert subnet["region"] == "europe-west1"


def test_subnet_takes_the_configured_range(gcp_stack: GcpStack):
    assert gcp_stack(networkCidr="10.20.0.0/20").one(SUBNET)["ipCidrRange"] == "10.20.0.0/20"


def test_firewall_admits_only_traffic_between_cluster_nodes(default_stack: Recording):
    (rule,) = default_stack.of_type(FIREWALL)
    assert rule["direction"] == "INGRESS"
    assert rule["sourceTags"] == rule["targetTags"] == ["kappa-test-dataproc"]
    assert rule.get("sourceRanges") is None
    assert {allow["protocol"] for allow in rule["allows"]} == {"tcp", "udp", "icmp"}


def test_no_internet_egress_by_default(default_stack: Recording):
    assert default_stack.of_type(ROUTER) == []
    assert default_stack.of_type(NAT) == []


def test_cloud_nat_only_when_asked_for(gcp_stack: GcpStack):
    recording = gcp_stack(networkEgress="nat")
    nat = recording.one(NAT)
    assert nat["router"] == recording.one(ROUTER).outputs["name"]
    assert nat["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    (subnet,) = nat["subnetworks"]
    assert subnet["name"] == recording.one(SUBNET).outputs["id"]
    assert nat["natIpAllocateOption"] == "AUTO_ONLY"


def test_bring_your_own_network_creates_no_network_resources(gcp_stack: GcpStack):
    recording = gcp_stack(networkVpcId=BYO_NETWORK, networkSubnetIds=[BYO_SUBNET])
    for kind in (VPC, SUBNET, FIREWALL, ROUTER, NAT):
        assert recording.of_type(kind) == []
    cluster = recording.one("gcp:dataproc/cluster:Cluster")
    assert cluster["clusterConfig"]["gceClusterConfig"]["subnetwork"] == BYO_SUBNET


def test_a_network_alone_passes_existing_ids_through():
    def program() -> None:
        network = Network(
            "kappa-test",
            NetworkArgs(
                project="p", region="europe-west1", network=BYO_NETWORK, subnetwork=BYO_SUBNET
            ),
        )
        pulumi.export("subnetwork", network.subnetwork)

    recording = run_layer(program)
    assert [r.type for r in recording] == ["kappa:gcp:Network"]
    assert recording.outputs["subnetwork"] == BYO_SUBNET


def test_network_args_need_both_network_and_subnetwork():
    with pytest.raises(ValueError, match="both network and subnetwork"):
        NetworkArgs(project="p", region="europe-west1", network=BYO_NETWORK)
