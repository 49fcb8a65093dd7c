"""The serving store: one table of aggregates per pipeline version.

Each version replays the log into its own table, so a new version fills up beside the live
one and readers switch when it has caught up (the Kappa move). How a kind of store declares a
version's table is a `Store`, found in `STORES` by `ServingArgs.kind`: DynamoDB is the one
built today; RDS or Redshift would each be one more `Store` registered there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pulumi
import pulumi_aws as aws
from kappa.spec import (
    SERVING_EXPIRY_ATTRIBUTE,
    SERVING_KEY_ATTRIBUTE,
    SERVING_WINDOW_ATTRIBUTE,
    versioned_table_name,
)


@dataclass(frozen=True)
class ServingArgs:
    kms_key_arn: pulumi.Input[str]
    versions: Sequence[str] = ("v1",)
    live_version: str = "v1"
    # A key of STORES.
    kind: str = "dynamodb"
    deletion_protection: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionTable:
    """One version's table as Serving names it, whatever the store."""

    version: str
    resource_name: str  # the Pulumi resource
    # Fixed, not auto-named: the job derives it from the base name in its spec.
    table_name: str


@dataclass(frozen=True)
class StoreTable:
    """What the stack needs of a version's table: its name (for the job) and ARN (for IAM)."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]


class Store(Protocol):
    def declare_table(
        self, parent: pulumi.Resource, table: VersionTable, args: ServingArgs
    ) -> StoreTable:
        """Declare the table as a child of `parent`."""
        ...


class DynamoDbStore:
    def declare_table(
        self, parent: pulumi.Resource, table: VersionTable, args: ServingArgs
    ) -> StoreTable:
        declared = aws.dynamodb.Table(
            table.resource_name,
            name=table.table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=SERVING_KEY_ATTRIBUTE,
            range_key=SERVING_WINDOW_ATTRIBUTE,
            attributes=[
                {"name": SERVING_KEY_ATTRIBUTE, "type": "S"},
                # ISO-8601 UTC text sorts in time order and reads well in the console.
                {"name": SERVING_WINDOW_ATTRIBUTE, "type": "S"},
            ],
            point_in_time_recovery={"enabled": True},
            server_side_encryption={"enabled": True, "kms_key_arn": args.kms_key_arn},
            # Rows without the attribute never expire, so the TTL is opt-in per spec.
            ttl={"attribute_name": SERVING_EXPIRY_ATTRIBUTE, "enabled": True},
            deletion_protection_enabled=args.deletion_protection,
            tags={**args.tags, "pipeline-version": table.version},
            opts=pulumi.ResourceOptions(parent=parent, protect=args.deletion_protection),
        )
        return StoreTable(name=declared.name, arn=declared.arn)


# The serving kinds built on AWS.
STORES: dict[str, Store] = {"dynamodb": DynamoDbStore()}


def store_for(kind: str) -> Store:
    if kind not in STORES:
        raise ValueError(
            f"serving kind {kind!r} is not built on AWS; built: {', '.join(sorted(STORES))}"
        )
    return STORES[kind]


class Serving(pulumi.ComponentResource):
    kind: str
    table_base: str
    tables: dict[str, pulumi.Output[str]]
    arns: dict[str, pulumi.Output[str]]
    live_table: pulumi.Output[str]

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None):
        store = store_for(args.kind)
        if args.live_version not in args.versions:
            raise ValueError(f"live_version {args.live_version!r} is not in {list(args.versions)}")
        super().__init__("kappa:aws:Serving", name, None, opts)
        self.kind = args.kind
        # The stack name inside `name` keeps stacks' tables apart.
        self.table_base = f"{name}-aggregates"
        self.tables, self.arns = {}, {}
        for version in args.versions:
            table = store.declare_table(
                self,
                VersionTable(
                    version=version,
                    resource_name=f"{name}-{version}",
                    table_name=versioned_table_name(self.table_base, version),
                ),
                args,
            )
            self.tables[version] = table.name
            self.arns[version] = table.arn
        self.live_table = self.tables[args.live_version]
        self.register_outputs(
            {"kind": self.kind, "tables": self.tables, "live_table": self.live_table}
        )
