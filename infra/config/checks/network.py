"""Network rules: a network brought along is named whole and keeps its egress; a private range."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from infra.config.checks.rule import reads
from infra.config.clouds import NETWORK_ID_PATTERN
from infra.config.keys import PROJECT
from infra.config.messages import problem

if TYPE_CHECKING:
    from infra.config.stack import StackConfig


@reads("networkVpcId", "networkSubnetIds")
def network_and_subnets_go_together(config: StackConfig) -> Iterator[str]:
    network = config.network
    if (network.vpc_id is None) != (network.subnet_ids is None):
        yield (
            f"{PROJECT}:networkVpcId and {PROJECT}:networkSubnetIds go together: "
            "set both to bring your own network, or neither to create one"
        )


@reads("cloud", "networkVpcId")
def network_id_is_the_clouds(config: StackConfig) -> Iterator[str]:
    vpc_id, cloud = config.network.vpc_id, config.cloud
    if vpc_id is not None and not re.match(NETWORK_ID_PATTERN[cloud][0], vpc_id):
        yield problem("networkVpcId", vpc_id, f"not a {cloud} network id")


@reads("cloud", "networkSubnetIds")
def subnet_ids_are_the_clouds(config: StackConfig) -> Iterator[str]:
    cloud = config.cloud
    for subnet in config.network.subnet_ids or ():
        if not re.match(NETWORK_ID_PATTERN[cloud][1], subnet):
            yield problem("networkSubnetIds", subnet, f"not a {cloud} subnet id")


@reads("networkVpcId", "networkEgress")
def network_brought_along_keeps_its_egress(config: StackConfig) -> Iterator[str]:
    if config.network.bring_your_own and config.network.egress == "nat":
        yield (
            f"{PROJECT}:networkEgress: got 'nat'; a network brought along (networkVpcId) keeps "
            "its own egress, so leave it at none"
        )


@reads("cloud", "networkSubnetIds")
def dataproc_uses_one_subnet(config: StackConfig) -> Iterator[str]:
    subnets = config.network.subnet_ids
    if config.cloud == "gcp" and subnets and len(subnets) != 1:
        yield f"{PROJECT}:networkSubnetIds: a Dataproc cluster uses exactly one subnet"


@reads("networkCidr")
def cidr_is_a_private_range(config: StackConfig) -> Iterator[str]:
    if not _private_range(config.network.cidr):
        yield problem(
            "networkCidr", config.network.cidr, "expected a private IPv4 range /16 to /24"
        )


def _private_range(text: str) -> bool:
    try:
        cidr = ipaddress.IPv4Network(text)
    except ValueError:
        return False
    return cidr.is_private and 16 <= cidr.prefixlen <= 24


RULES = (
    network_and_subnets_go_together,
    network_id_is_the_clouds,
    subnet_ids_are_the_clouds,
    network_brought_along_keeps_its_egress,
    dataproc_uses_one_subnet,
    cidr_is_a_private_range,
)
