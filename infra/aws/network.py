"""A small private network for the cluster, used when the stack does not bring its own.

Egress: by default there is no route to the internet at all. The cluster reaches S3, and
the serving store when it needs one (DynamoDB), through gateway endpoints (free) and the
other AWS APIs it calls (EMR, Kinesis, and KMS for the local-disk keys) through interface
endpoints. Which gateway endpoints a store needs is the store's to say (`services` of its
store in `infra/aws/stores/`); the platform hands them over as `NetworkArgs.store_gateways`.
Nothing on the nodes calls STS (the instance profile's credentials come from the instance
metadata service) or CloudWatch Logs (EMR pushes logs to S3), so neither has an endpoint,
each of which bills by the hour.
Nothing on the nodes needs the internet: the job's Python dependencies arrive as a
wheelhouse from the artifacts bucket.
`egress="nat"` adds a public subnet with one NAT gateway for teams whose jobs call
third-party services.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from infra.aws.policy import EMR_MANAGED_POLICY_TAG
from infra.options import child_options

# The lake's: archive, checkpoints, artifacts and logs are all in S3.
GATEWAY_ENDPOINTS = ("s3",)
INTERFACE_ENDPOINTS = ("elasticmapreduce", "kinesis-streams", "kms")


@dataclass(frozen=True)
class NetworkArgs:
    region: str
    cidr: str = "10.64.0.0/16"
    az_count: int = 2
    egress: Literal["none", "nat"] = "none"
    # The serving store's gateway endpoints, besides the network's own (GATEWAY_ENDPOINTS).
    store_gateways: Sequence[str] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    subnet_ids: list[pulumi.Output[str]]
    cidr: str

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kappa:aws:Network", name, None, opts)
        self._opts = opts
        child = child_options(self, opts)
        self.cidr = args.cidr
        tags = dict(args.tags)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,  # interface endpoints answer on private DNS names
            enable_dns_support=True,
            tags={**tags, "Name": f"{name}-vpc"},
            opts=child,
        )
        # Lock down the default security group every VPC comes with: nothing uses it.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, tags=tags, opts=child)
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        )
        blocks = list(ipaddress.IPv4Network(args.cidr).subnets(prefixlen_diff=4))
        private_routes = aws.ec2.RouteTable(
            f"{name}-private", vpc_id=vpc.id, tags={**tags, "Name": f"{name}-private"}, opts=child
        )
        self.subnet_ids = []
        for index in range(args.az_count):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                cidr_block=str(blocks[index]),
                availability_zone=zones.names[index],
                map_public_ip_on_launch=False,
                # AmazonEMRServicePolicy_v2 launches instances only into tagged subnets.
                tags={**tags, **EMR_MANAGED_POLICY_TAG, "Name": f"{name}-private-{index}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}",
                subnet_id=subnet.id,
                route_table_id=private_routes.id,
                opts=child,
            )
            self.subnet_ids.append(subnet.id)

        for service in dict.fromkeys((*GATEWAY_ENDPOINTS, *args.store_gateways)):
            aws.ec2.VpcEndpoint(
                f"{name}-{service}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Gateway",
                route_table_ids=[private_routes.id],
                tags={**tags, "Name": f"{name}-{service}"},
                opts=child,
            )
        endpoint_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=vpc.id,
            description="HTTPS from inside the VPC to the AWS API endpoints",
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": [args.cidr],
                    "description": "AWS APIs over TLS from the VPC",
                }
            ],
            tags={**tags, "Name": f"{name}-endpoints"},
            opts=child,
        )
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{name}-{service}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=self.subnet_ids,
                security_group_ids=[endpoint_group.id],
                tags={**tags, "Name": f"{name}-{service}"},
                opts=child,
            )
        if args.egress == "nat":
            self._nat(name, vpc, private_routes, blocks[-1], zones.names[0], tags)
        self.vpc_id = vpc.id
        self.register_outputs({"vpc_id": vpc.id, "subnet_ids": self.subnet_ids})

    def _nat(
        self,
        name: str,
        vpc: aws.ec2.Vpc,
        private_routes: aws.ec2.RouteTable,
        block: ipaddress.IPv4Network,
        zone: pulumi.Input[str],
        tags: dict[str, str],
    ) -> None:
        child = child_options(self, self._opts)
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags, opts=child)
        public = aws.ec2.Subnet(
            f"{name}-public",
            vpc_id=vpc.id,
            cidr_block=str(block),
            availability_zone=zone,
            map_public_ip_on_launch=False,
            tags={**tags, "Name": f"{name}-public"},
            opts=child,
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            tags={**tags, "Name": f"{name}-public"},
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public", subnet_id=public.id, route_table_id=public_routes.id, opts=child
        )
        # A NAT gateway, and the address it holds, work only once the VPC has an attached
        # internet gateway; nothing in their inputs says so, hence the explicit order
        # (https://www.pulumi.com/registry/packages/aws/api-docs/ec2/natgateway/ and
        # .../ec2/eip/: "use depends_on to set an explicit dependency on the IGW").
        after_gateway = child_options(self, self._opts, gateway)
        address = aws.ec2.Eip(f"{name}-nat", domain="vpc", tags=tags, opts=after_gateway)
        nat = aws.ec2.NatGateway(
            f"{name}-nat",
            allocation_id=address.id,
            subnet_id=public.id,
            tags=tags,
            opts=after_gateway,
        )
        aws.ec2.Route(
            f"{name}-private-default",
            route_table_id=private_routes.id,
            destination_cidr_block="0.0.0.0/0",
            nat_gateway_id=nat.id,
            opts=child,
        )
