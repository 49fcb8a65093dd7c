"""DynamoDB: one on-demand table per pipeline version, keyed by (key, window start).

Encrypted with the stack's key, point-in-time recoverable, and with a TTL attribute the job
sets only when the spec asks rows to expire.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws
from kappa.spec import (
    SERVING_EXPIRY_ATTRIBUTE,
    SERVING_KEY_ATTRIBUTE,
    SERVING_WINDOW_ATTRIBUTE,
    DynamoDbSink,
)

from infra.aws.policy import statement
from infra.options import child_options
from infra.stores import DeclaredStore, SinkContext, StoreScope, StoreTable, VersionTable

if TYPE_CHECKING:
    from infra.aws.iam import NodeGrant
    from infra.aws.serving import ServingArgs

# The sink reads the batch fence and writes rows in batches (jobs/kappa/sinks/dynamodb.py).
DYNAMODB_SINK = ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DescribeTable")


def node_grants(table_arns: Sequence[pulumi.Input[str]]) -> tuple[NodeGrant, ...]:
    """The node policy's statement for the sink's calls on these tables."""
    return (statement("ServingTables", DYNAMODB_SINK, list(table_arns)),)


class DynamoDbStore:
    # The nodes have no route to the internet by default: the sink reaches DynamoDB through
    # a gateway endpoint, which is free.
    services: tuple[str, ...] = ("dynamodb",)

    def declare(
        self, scope: StoreScope, tables: Sequence[VersionTable], args: ServingArgs
    ) -> DeclaredStore[NodeGrant]:
        declared: dict[str, StoreTable] = {}
        for table in tables:
            resource = aws.dynamodb.Table(
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
                opts=child_options(scope.parent, scope.opts, protect=args.deletion_protection),
            )
            declared[table.version] = StoreTable(name=resource.name, id=resource.arn)
        return DeclaredStore(tables=declared, grants=node_grants([t.id for t in declared.values()]))

    def spec_sink(self, context: SinkContext) -> DynamoDbSink:
        return DynamoDbSink(
            table=context.table_base, region=context.region, ttl_days=context.ttl_days
        )
