"""The serving store: one table of aggregates per pipeline version.

Each version replays the log into its own table, so a new version fills up beside the live
one and readers switch when it has caught up (the Kappa move). DynamoDB is built today; RDS
and Redshift slot in as further `_Store` implementations chosen by `kind`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

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
    kind: Literal["dynamodb"] = "dynamodb"
    deletion_protection: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)


class Serving(pulumi.ComponentResource):
    kind: str
    table_base: str
    tables: dict[str, pulumi.Output[str]]
    arns: dict[str, pulumi.Output[str]]
    live_table: pulumi.Output[str]

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kappa:aws:Serving", name, None, opts)
        if args.live_version not in args.versions:
            raise ValueError(f"live_version {args.live_version!r} is not in {list(args.versions)}")
        self.kind = args.kind
        # Physical names are fixed (not auto-named) because the job derives a version's table
        # from the base name in its spec; the stack name inside `name` keeps stacks apart.
        self.table_base = f"{name}-aggregates"
        self.tables, self.arns = {}, {}
        for version in args.versions:
            table = self._dynamodb_table(name, version, args)
            self.tables[version] = table.name
            self.arns[version] = table.arn
        self.live_table = self.tables[args.live_version]
        self.register_outputs(
            {"kind": self.kind, "tables": self.tables, "live_table": self.live_table}
        )

    def _dynamodb_table(self, name: str, version: str, args: ServingArgs) -> aws.dynamodb.Table:
        return aws.dynamodb.Table(
            f"{name}-{version}",
            name=versioned_table_name(self.table_base, version),
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
            tags={**args.tags, "pipeline-version": version},
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )
