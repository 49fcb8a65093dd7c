"""Bigtable: an instance with one table per pipeline version.

Rows are keyed by (key, window start) and upserted, so a replayed batch rewrites the same
cells; the garbage-collection policy keeps only the newest cell of each, and drops cells
older than the TTL when one is set. The instance's sizing is ServingArgs' (infra/gcp/serving.py
checks it against Bigtable's limits).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pulumi
import pulumi_gcp as gcp
from kappa.spec import BigtableSink

from infra.gcp.common import grant_kms, project_number, service_agent, short_id
from infra.options import child_options
from infra.stores import DeclaredStore, SinkContext, StoreScope, StoreTable, VersionTable

if TYPE_CHECKING:
    from infra.gcp.iam import Grantee, NodeGrant
    from infra.gcp.serving import ServingArgs

# Read and write rows of one table: bound on each table, never on the instance or project.
TABLE_ROLE = "roles/bigtable.user"


def gc_rules(ttl_days: int) -> str:
    rules: list[dict[str, object]] = [{"max_version": 1}]
    if ttl_days:
        rules.append({"max_age": f"{ttl_days * 24}h"})
        return json.dumps({"mode": "union", "rules": rules})
    return json.dumps({"rules": rules})


def table_user(
    project: pulumi.Input[str],
    instance: pulumi.Input[str],
    table: pulumi.Input[str],
    version: str,
) -> NodeGrant:
    """The binding that lets the nodes read and write one version's table."""

    def bind(grantee: Grantee) -> pulumi.Resource:
        return gcp.bigtable.TableIamMember(
            f"{grantee.name}-{version}-table",
            project=project,
            instance_name=instance,
            table=table,
            role=TABLE_ROLE,
            member=grantee.member,
            opts=grantee.opts,
        )

    return bind


class BigtableStore:
    services: tuple[str, ...] = (
        "bigtableadmin.googleapis.com",  # the instance, its tables and their bindings
        "bigtable.googleapis.com",  # the job's reads and writes
    )

    def declare(
        self, scope: StoreScope, tables: Sequence[VersionTable], args: ServingArgs
    ) -> DeclaredStore[NodeGrant]:
        name, parent, opts = scope.name, scope.parent, scope.opts
        child = child_options(parent, opts)
        kms_grants: list[pulumi.Resource] = []
        if args.kms_key:
            # The Bigtable agent is created on first use only; CMEK needs it beforehand.
            identity = gcp.projects.ServiceIdentity(
                f"{name}-bigtable-agent",
                project=args.project,
                service="bigtableadmin.googleapis.com",
                opts=child,
            )
            agent = service_agent(project_number(args.project, parent), "bigtable")
            kms_grants = [
                identity,
                *grant_kms(
                    name, args.kms_key, {"bigtable": agent}, child_options(parent, opts, identity)
                ),
            ]

        instance = gcp.bigtable.Instance(
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
            # Pulumi refuses to delete the serving data too, as on AWS.
            opts=child_options(parent, opts, *kms_grants, protect=args.protect),
        )
        declared: dict[str, StoreTable] = {}
        grants: list[NodeGrant] = []
        for version_table in tables:
            table = gcp.bigtable.Table(
                version_table.resource_name,
                name=version_table.table_name,
                project=args.project,
                instance_name=instance.name,
                column_families=[gcp.bigtable.TableColumnFamilyArgs(family=args.column_family)],
                deletion_protection="PROTECTED" if args.protect else "UNPROTECTED",
                opts=child_options(parent, opts, protect=args.protect),
            )
            gcp.bigtable.GCPolicy(
                f"{version_table.resource_name}-gc",
                project=args.project,
                instance_name=instance.name,
                table=table.name,
                column_family=args.column_family,
                gc_rules=gc_rules(args.ttl_days),
                # Removing the policy from the stack leaves it on the table rather than
                # letting cells pile up forever.
                deletion_policy="ABANDON",
                opts=child,
            )
            declared[version_table.version] = StoreTable(name=table.name, id=table.id)
            grants.append(
                table_user(args.project, instance.name, table.name, version_table.version)
            )
        return DeclaredStore(
            tables=declared,
            grants=tuple(grants),
            # What the job and readers need besides the table: where it is and which family.
            outputs={"instance": instance.name, "column_family": args.column_family},
        )

    def spec_sink(self, context: SinkContext) -> BigtableSink:
        if context.project is None:
            raise ValueError("the Bigtable sink needs the project of its instance")
        return BigtableSink(
            project=context.project,
            instance=context.outputs["instance"],
            table=context.table_base,
            column_family=context.outputs["column_family"],
        )
