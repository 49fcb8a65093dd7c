"""The network the cluster runs in: an existing subnet, or a VPC and subnet made for it.

The cluster's VMs have internal addresses only, so they reach Google APIs (Cloud Storage,
Pub/Sub, Bigtable) through Private Google Access on the subnet; Dataproc refuses an
internal-IP-only cluster on a subnet without it. Nothing else leaves the network unless
Cloud NAT is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_gcp as gcp

from infra.options import child_options


@dataclass(frozen=True)
class NetworkArgs:
    project: pulumi.Input[str]
    region: str
    cidr: str = "10.64.0.0/16"
    egress: Literal["none", "nat"] = "none"
    # Bring your own: both set, nothing is created. The subnet must have Private Google
    # Access and a firewall rule letting the cluster's VMs reach each other.
    network: pulumi.Input[str] | None = None
    subnetwork: pulumi.Input[str] | None = None
    # Network tag the cluster's VMs carry; the intra-cluster firewall rule matches on it.
    cluster_tag: str = "kappa-cluster"

    def __post_init__(self) -> None:
        if (self.network is None) != (self.subnetwork is None):
            raise ValueError("NetworkArgs: pass both network and subnetwork, or neither")
        if self.network is not None and self.egress == "nat":
            raise ValueError("NetworkArgs: a network brought along manages its own egress")


class Network(pulumi.ComponentResource):
    network: pulumi.Output[str]
    subnetwork: pulumi.Output[str]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kappa:gcp:Network", name, None, opts)
        self.cluster_tag = args.cluster_tag
        if args.network is not None and args.subnetwork is not None:
            self.network = pulumi.Output.from_input(args.network)
            self.subnetwork = pulumi.Output.from_input(args.subnetwork)
        else:
            self.network, self.subnetwork = self._create(name, args, child_options(self, opts))
        self.register_outputs(
            {
                "network": self.network,
                "subnetwork": self.subnetwork,
                "cluster_tag": self.cluster_tag,
            }
        )

    def _create(
        self, name: str, args: NetworkArgs, child: pulumi.ResourceOptions
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        vpc = gcp.compute.Network(
            f"{name}-vpc",
            project=args.project,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            # The default 0.0.0.0/0 route is how Private Google Access reaches the APIs'
            # public addresses; without external IPs or NAT nothing else can use it.
            delete_default_routes_on_create=False,
            opts=child,
        )
        subnet = gcp.compute.Subnetwork(
            f"{name}-subnet",
            project=args.project,
            region=args.region,
            network=vpc.id,
            ip_cidr_range=args.cidr,
            private_ip_google_access=True,
            opts=child,
        )
        tag = args.cluster_tag
        gcp.compute.Firewall(
            f"{name}-intra-cluster",
            project=args.project,
            network=vpc.id,
            direction="INGRESS",
            priority=1000,
            description="Dataproc nodes talk to each other (YARN, HDFS, Spark shuffle).",
            source_tags=[tag],
            target_tags=[tag],
            allows=[
                gcp.compute.FirewallAllowArgs(protocol="tcp", ports=["0-65535"]),
                gcp.compute.FirewallAllowArgs(protocol="udp", ports=["0-65535"]),
                gcp.compute.FirewallAllowArgs(protocol="icmp"),
            ],
            opts=child,
        )
        if args.egress == "nat":
            router = gcp.compute.Router(
                f"{name}-router",
                project=args.project,
                region=args.region,
                network=vpc.id,
                opts=child,
            )
            gcp.compute.RouterNat(
                f"{name}-nat",
                project=args.project,
                region=args.region,
                router=router.name,
                nat_ip_allocate_option="AUTO_ONLY",
                source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
                subnetworks=[
                    gcp.compute.RouterNatSubnetworkArgs(
                        name=subnet.id, source_ip_ranges_to_nats=["ALL_IP_RANGES"]
                    )
                ],
                log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
                opts=child,
            )
        return vpc.id, subnet.id
