"""The serving store: a Bigtable instance with one table per pipeline version.

Rows are keyed by (key, window start) and upserted, so a replayed batch rewrites the same
cells; the garbage-collection policy keeps only the newest cell of each, and drops cells
older than the TTL when one is set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_gcp as gcp
from kappa.spec import versioned_table_name

from infra.gcp.common import child_options, grant_kms, project_number, service_agent, short_id

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


def gc_rules(ttl_days: int) -> str:
    rules: list[dict[str, object]] = [{"max_version": 1}]
    if ttl_days:
        rules.append({"max_age": f"{ttl_days * 24}h"})
        return json.dumps({"mode": "union", "rules": rules})
    return json.dumps({"rules": rules})


class Serving(pulumi.ComponentResource):
    instance: gcp.bigtable.Instance
    tables: dict[str, gcp.bigtable.Table]

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kappa:gcp:Serving", name, None, opts)
        child = child_options(self, opts)
        kms_grants: list[pulumi.Resource] = []
        if args.kms_key:
            # The Bigtable agent is created on first use only; CMEK needs it beforehand.
            identity = gcp.projects.ServiceIdentity(
                f"{name}-bigtable-agent",
                project=args.project,
                service="bigtableadmin.googleapis.com",
                opts=child,
            )
            agent = service_agent(project_number(args.project, self), "bigtable")
            kms_grants = [
                identity,
                *grant_kms(
                    name, args.kms_key, {"bigtable": agent}, child_options(self, opts, identity)
                ),
            ]

        self.instance = gcp.bigtable.Instance(
            f"{name}-serving",
            # Instance ids are 6-33 characters and not auto-named within that limit.
            name=short_id(f"{name}-serving", 33, min_length=6),
            project=args.project,
            instance_type="PRODUCTION",
            clusters=[
                gcp.bigtable.InstanceClusterArgs(
                    cluster_id="serving-1",
                    zone=args.zone,
                    storage_type=args.storage_type,
                    num_nodes=None if args.autoscaling else args.min_nodes,
                    autoscaling_config=(
                        gcp.bigtable.InstanceClusterAutoscalingConfigArgs(
                            min_nodes=args.min_nodes,
                            max_nodes=args.max_nodes,
                            cpu_target=args.cpu_target_percent,
                            storage_target=args.storage_target_gib,
                        )
                        if args.autoscaling
                        else None
                    ),
                    kms_key_name=args.kms_key,
                )
            ],
            deletion_protection=args.protect,
            labels=args.labels,
            opts=child_options(self, opts, *kms_grants),
        )
        self.tables = {}
        for version in args.versions:
            table = gcp.bigtable.Table(
                f"{name}-{version}",
                name=versioned_table_name(args.table_base, version),
                project=args.project,
                instance_name=self.instance.name,
                column_families=[gcp.bigtable.TableColumnFamilyArgs(family=args.column_family)],
                deletion_protection="PROTECTED" if args.protect else "UNPROTECTED",
                opts=child,
            )
            gcp.bigtable.GCPolicy(
                f"{name}-{version}-gc",
                project=args.project,
                instance_name=self.instance.name,
                table=table.name,
                column_family=args.column_family,
                gc_rules=gc_rules(args.ttl_days),
                # Removing the policy from the stack leaves it on the table rather than
                # letting cells pile up forever.
                deletion_policy="ABANDON",
                opts=child,
            )
            self.tables[version] = table
        self.instance_name = self.instance.name
        self.table_names: dict[str, pulumi.Output[str]] = {
            version: table.name for version, table in self.tables.items()
        }
        self.register_outputs({"instance": self.instance_name, "tables": self.table_names})
