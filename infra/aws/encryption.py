"""The stack's customer-managed KMS key: one key encrypts the stream, buckets, table and disks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.aws.policy import document, statement


@dataclass(frozen=True)
class EncryptionArgs:
    deletion_window_days: int = 30
    # Pulumi refuses to schedule the key's deletion: without it nothing can be read.
    protect: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


class Encryption(pulumi.ComponentResource):
    """A KMS key with yearly rotation whose policy delegates to IAM in this account only."""

    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kappa:aws:Encryption", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        account_root = pulumi.Output.format(
            "arn:{0}:iam::{1}:root", partition.partition, identity.account_id
        )
        # The account root principal means "whatever IAM in this account allows": the roles
        # the stack creates are then granted use of the key by their own scoped policies.
        key_policy = document(
            statement(
                "AccountIamDelegation",
                ["kms:*"],
                ["*"],
                principal={"AWS": account_root},
            )
        )
        key = aws.kms.Key(
            f"{name}-key",
            description=f"Kappa stack {name}: stream, buckets, table, cluster disks",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=key_policy,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        aws.kms.Alias(f"{name}-alias", name=f"alias/{name}", target_key_id=key.key_id, opts=child)
        self.key_arn = key.arn
        self.key_id = key.key_id
        self.register_outputs({"key_arn": key.arn, "key_id": key.key_id})
