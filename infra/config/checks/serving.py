"""Serving rules: a store the cloud offers and the stack builds, Bigtable's node range and zone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from infra.config.checks.rule import reads
from infra.config.clouds import CLOUD_DEFAULTS, SERVING_KINDS, built_serving_kinds
from infra.config.messages import problem

if TYPE_CHECKING:
    from infra.config.stack import StackConfig


@reads("cloud", "servingKind")
def kind_is_built_on_the_cloud(config: StackConfig) -> Iterator[str]:
    kind, cloud = config.serving_kind, config.cloud
    if kind not in SERVING_KINDS[cloud]:
        yield problem(
            "servingKind", kind, f"{cloud} serves from one of {list(SERVING_KINDS[cloud])}"
        )
    elif kind not in built_serving_kinds(cloud):
        yield problem(
            "servingKind", kind, f"not built yet; use {CLOUD_DEFAULTS[cloud]['serving_kind']}"
        )


@reads("servingMinNodes", "servingMaxNodes")
def min_nodes_within_max(config: StackConfig) -> Iterator[str]:
    if config.serving.min_nodes > config.serving.max_nodes:
        yield problem(
            "servingMinNodes", config.serving.min_nodes, "must not exceed servingMaxNodes"
        )


@reads("cloud", "servingMinNodes", "servingMaxNodes")
def bigtable_range_spans_ten_at_most(config: StackConfig) -> Iterator[str]:
    # Bigtable autoscaling's range spans a factor of 10 at most
    # (https://cloud.google.com/bigtable/docs/autoscaling; infra/gcp/serving.py has the quote).
    ceiling = 10 * config.serving.min_nodes
    if config.cloud == "gcp" and config.serving.max_nodes > ceiling:
        yield problem(
            "servingMaxNodes",
            config.serving.max_nodes,
            f"Bigtable autoscaling allows at most 10 x servingMinNodes ({ceiling})",
        )


@reads("cloud", "servingZone", "region")
def zone_is_in_the_region(config: StackConfig) -> Iterator[str]:
    if config.cloud == "gcp" and not config.serving_zone.startswith(f"{config.region}-"):
        yield problem("servingZone", config.serving_zone, f"expected a zone of {config.region}")


RULES = (
    kind_is_built_on_the_cloud,
    min_nodes_within_max,
    bigtable_range_spans_ten_at_most,
    zone_is_in_the_region,
)
