"""The serving store: one table of aggregates per pipeline version.

Each version replays the log into its own table, so a new version fills up beside the live
one and readers switch when it has caught up (the Kappa move). What a kind of store declares,
grants and writes into the spec is its `Store`, found in `STORES` (`infra/gcp/stores/`) by
`ServingArgs.kind`: Bigtable is the one built today; Cloud SQL or BigQuery would each be one
more module registered there (`infra/stores.py` says how). The store's settings are fields of
`ServingArgs`, checked here against the store's limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi

from infra.gcp.iam import NodeGrant
from infra.gcp.stores import STORES as STORES
from infra.gcp.stores import store_for
from infra.stores import ServingComponent

TABLE_BASE = "aggregates"
COLUMN_FAMILY = "agg"
# Bigtable's recommended CPU target for latency-sensitive serving is 60% or lower
# (https://cloud.google.com/bigtable/docs/autoscaling); the API accepts 10-80.
CPU_TARGET_PERCENT = 60
CPU_TARGET_BOUNDS = (10, 80)
# Autoscaling's range may span a factor of 10 at most: max nodes <= 10 x min nodes
# (https://cloud.google.com/bigtable/docs/autoscaling; Google's announcement, "the maximum node
# count in your range cannot be more than 10 times the minimum node count",
# https://cloud.google.com/blog/products/databases/dive-deep-into-bigtable-autoscaling-and-how-it-optimizes-costs).
MAX_TO_MIN_NODES = 10
# Storage utilization per node the autoscaler aims at, in GiB; anything else is
# INVALID_ARGUMENT (the Admin API's AutoscalingTargets, as its client reference documents it:
# https://cloud.google.com/dotnet/docs/reference/Google.Cloud.Bigtable.Admin.V2/latest/Google.Cloud.Bigtable.Admin.V2.AutoscalingTargets).
STORAGE_TARGET_GIB: dict[str, tuple[int, int]] = {"SSD": (2560, 5120), "HDD": (8192, 16384)}


@dataclass(frozen=True)
class ServingArgs:
    project: pulumi.Input[str]
    zone: str
    versions: tuple[str, ...] = ("v1",)
    # The version readers use (live_table); None: the first of `versions`.
    live_version: str | None = None
    # A key of STORES.
    kind: str = "bigtable"
    # The Bigtable store's settings (kind "bigtable").
    # min_nodes == max_nodes: a fixed-size cluster; otherwise Bigtable autoscales between them.
    min_nodes: int = 1
    max_nodes: int = 3
    storage_type: Literal["SSD", "HDD"] = "SSD"
    table_base: str = TABLE_BASE
    column_family: str = COLUMN_FAMILY
    ttl_days: int = 0  # 0 keeps rows forever
    labels: dict[str, str] = field(default_factory=dict)
    kms_key: str | None = None
    protect: bool = True
    # Autoscaling targets: CPU in percent; storage per node in GiB, None for Bigtable's
    # default (2560 on SSD, 8192 on HDD).
    cpu_target_percent: int = CPU_TARGET_PERCENT
    storage_target_gib: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.min_nodes <= self.max_nodes:
            raise ValueError("ServingArgs: need 1 <= min_nodes <= max_nodes")
        if self.max_nodes > MAX_TO_MIN_NODES * self.min_nodes:
            raise ValueError(
                f"ServingArgs.max_nodes: got {self.max_nodes}; Bigtable autoscaling allows at "
                f"most {MAX_TO_MIN_NODES} x min_nodes ({MAX_TO_MIN_NODES * self.min_nodes})"
            )
        low, high = CPU_TARGET_BOUNDS
        if not low <= self.cpu_target_percent <= high:
            raise ValueError(
                f"ServingArgs.cpu_target_percent: got {self.cpu_target_percent}; "
                f"Bigtable allows {low}-{high}"
            )
        low, high = STORAGE_TARGET_GIB[self.storage_type]
        if self.storage_target_gib is not None and not low <= self.storage_target_gib <= high:
            raise ValueError(
                f"ServingArgs.storage_target_gib: got {self.storage_target_gib}; Bigtable "
                f"allows {low}-{high} GiB per node on {self.storage_type}"
            )
        if not self.versions:
            raise ValueError("ServingArgs.versions needs at least one pipeline version")

    @property
    def autoscaling(self) -> bool:
        return self.min_nodes != self.max_nodes


class Serving(ServingComponent[ServingArgs, NodeGrant]):
    """`tables`: version -> table name; `table_ids`: version -> table id; `grants`: the
    bindings for ClusterIdentityArgs.serving_grants; `outputs`: the store's (Bigtable: its
    `instance` and `column_family`)."""

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "kappa:gcp:Serving",
            name,
            store=store_for(args.kind),
            kind=args.kind,
            # Tables live in the stack's own instance (or dataset), which keeps stacks apart.
            table_base=args.table_base,
            versions=args.versions,
            live_version=args.live_version,
            args=args,
            opts=opts,
        )
