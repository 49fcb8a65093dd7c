"""The serving store: one table of aggregates per pipeline version.

Each version replays the log into its own table, so a new version fills up beside the live
one and readers switch when it has caught up (the Kappa move). What a kind of store declares,
grants and writes into the spec is its `Store`, found in `STORES` (`infra/aws/stores/`) by
`ServingArgs.kind`: DynamoDB is the one built today; RDS or Redshift would each be one more
module registered there (`infra/stores.py` says how).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from infra.aws.iam import NodeGrant
from infra.aws.stores import STORES as STORES
from infra.aws.stores import store_for
from infra.stores import ServingComponent


@dataclass(frozen=True)
class ServingArgs:
    kms_key_arn: pulumi.Input[str]
    versions: Sequence[str] = ("v1",)
    # The version readers use (live_table); None: the first of `versions`.
    live_version: str | None = None
    # A key of STORES.
    kind: str = "dynamodb"
    deletion_protection: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)


class Serving(ServingComponent[ServingArgs, NodeGrant]):
    """`tables`: version -> table name; `table_ids`: version -> table ARN; `grants`: the node
    policy statements for ClusterIdentityArgs.serving_grants."""

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "kappa:aws:Serving",
            name,
            store=store_for(args.kind),
            kind=args.kind,
            # The stack name inside `name` keeps stacks' tables apart.
            table_base=f"{name}-aggregates",
            versions=args.versions,
            live_version=args.live_version,
            args=args,
            opts=opts,
        )
