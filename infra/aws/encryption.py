"""The stack's customer-managed KMS key: one key encrypts the stream, buckets, table and disks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.policy import document, statement
from infra.options import child_options


@dataclass(frozen=True)
class EncryptionArgs:
    deletion_window_days: int = 30
    # Pulumi refuses to schedule the key's deletion: without it nothing can be read. On unless
    # a caller turns it off (a dev stack), as on GCP.
    protect: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)


class Encryption(pulumi.ComponentResource):
    """A KMS key with yearly rotation whose policy delegates to IAM in this account only."""

    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kappa:aws:Encryption", name, None, opts)
        child = child_options(self, opts)
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
            opts=child_options(self, opts, protect=args.protect),
        )
        aws.kms.Alias(f"{name}-alias", name=f"alias/{name}", target_key_id=key.key_id, opts=child)
        self.key_arn = key.arn
        self.key_id = key.key_id
        self.register_outputs({"key_arn": key.arn, "key_id": key.key_id})


def brought_key_problems(key: Mapping[str, Any], key_arn: str) -> list[str]:
    """What makes a key brought with `kmsKey` unusable for the stream, buckets, tables and
    disks, from its DescribeKey metadata (camelCase, as the provider's getKey returns it).
    Kinesis, S3, DynamoDB and EBS take only enabled, symmetric encryption keys, and an AWS
    managed key (aws/s3, aws/ebs...) serves its own service only and takes no grants
    (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#key-mgmt)."""
    wanted = {
        "keyState": ("Enabled", "an enabled key"),
        "keyUsage": ("ENCRYPT_DECRYPT", "an encryption key"),
        "keySpec": ("SYMMETRIC_DEFAULT", "a symmetric key (SYMMETRIC_DEFAULT)"),
        "keyManager": ("CUSTOMER", "a customer managed key, not an AWS managed one"),
    }
    return [
        f"kappa:kmsKey: {key_arn} has {field} {key.get(field)!r}; the stack needs {expected}"
        for field, (value, expected) in wanted.items()
        if key.get(field) != value
    ]


def checked_key(key_arn: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """`key_arn` once the key is known to suit the stack: every resource encrypted with it
    waits, so a disabled or asymmetric key stops the deployment before any of them exists.

    What cannot be read here is the key policy: it must let IAM policies in the deploying
    account grant the key's use (the default key policy does), or the roles this stack
    creates are refused; docs/deploying.md says what else a brought key needs."""
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    described = aws.kms.get_key_output(key_id=key_arn, opts=invoke)
    account = aws.get_caller_identity_output(opts=invoke).account_id

    def check(values: list[Any]) -> str:
        metadata, deploying_account = values
        problems = brought_key_problems(
            {
                "keyState": metadata.key_state,
                "keyUsage": metadata.key_usage,
                "keySpec": metadata.key_spec,
                "keyManager": metadata.key_manager,
            },
            key_arn,
        )
        if problems:
            raise ValueError("; ".join(problems))
        if metadata.aws_account_id != deploying_account:
            pulumi.log.warn(
                f"kappa:kmsKey {key_arn} belongs to account {metadata.aws_account_id}, not the "
                f"deploying account {deploying_account}: its key policy must grant this "
                "account the key's use, or every encrypted resource will be refused",
                resource=parent,
            )
        return key_arn

    return pulumi.Output.all(described, account).apply(check)
