"""S3 storage for the raw archive, checkpoints, artifacts, logs and dead letters.

One bucket per role rather than prefixes in one bucket: versioning, lifecycle and access
grants are per bucket in S3, and the roles want different ones (the job writes the archive
but only reads artifacts; logs expire, the archive never does by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.aws.policy import deny_insecure_transport, document
from infra.options import child_options

MIN_DAYS_IN_STANDARD = 30
MIN_DAYS_IN_STANDARD_IA = 30
BUCKET_ROLES = ("archive", "checkpoints", "artifacts", "logs", "dead_letters")
PROTECTED_ROLES = ("archive", "checkpoints", "dead_letters")


@dataclass(frozen=True)
class LakeArgs:
    kms_key_arn: pulumi.Input[str]
    archive_cold_after_days: int = 30
    archive_archive_after_days: int = 180
    archive_expire_after_days: int = 0
    log_days: int = 30
    dead_letter_days: int = 365
    # Emptying buckets on destroy is for throwaway dev stacks only.
    force_destroy: bool = False
    # Pulumi refuses to delete the buckets that hold data (not logs or artifacts). On unless a
    # caller turns it off (a dev stack), as on GCP.
    protect: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # S3 refuses a lifecycle rule that moves objects out of Standard-IA before they spent
        # 30 days in it, and wants Standard-IA no sooner than 30 days after creation
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html).
        if self.archive_cold_after_days < MIN_DAYS_IN_STANDARD:
            raise ValueError(
                f"LakeArgs.archive_cold_after_days: got {self.archive_cold_after_days}; S3 moves "
                f"objects to STANDARD_IA no sooner than {MIN_DAYS_IN_STANDARD} days"
            )
        earliest = self.archive_cold_after_days + MIN_DAYS_IN_STANDARD_IA
        if self.archive_archive_after_days < earliest:
            raise ValueError(
                f"LakeArgs.archive_archive_after_days: got {self.archive_archive_after_days}; "
                f"must be at least archive_cold_after_days + {MIN_DAYS_IN_STANDARD_IA} "
                f"({earliest}): S3 keeps objects {MIN_DAYS_IN_STANDARD_IA} days in STANDARD_IA"
            )


@dataclass(frozen=True)
class _BucketPlan:
    versioned: bool
    rules: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]


def _rule(
    rule_id: str,
    *,
    expire_days: int = 0,
    noncurrent_days: int = 0,
    transitions: tuple[tuple[int, str], ...] = (),
) -> aws.s3.BucketLifecycleConfigurationRuleArgsDict:
    """A whole-bucket rule; every rule also drops multipart uploads left incomplete."""
    rule: aws.s3.BucketLifecycleConfigurationRuleArgsDict = {
        "id": rule_id,
        "status": "Enabled",
        "filter": {},
        "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
    }
    if transitions:
        rule["transitions"] = [{"days": d, "storage_class": c} for d, c in transitions]
    if expire_days:
        rule["expiration"] = {"days": expire_days}
    if noncurrent_days:
        rule["noncurrent_version_expiration"] = {"noncurrent_days": noncurrent_days}
    return rule


def _plans(args: LakeArgs) -> dict[str, _BucketPlan]:
    return {
        "archive": _BucketPlan(
            versioned=True,
            rules=[
                _rule(
                    "archive-tiering",
                    transitions=(
                        (args.archive_cold_after_days, "STANDARD_IA"),
                        (args.archive_archive_after_days, "GLACIER_IR"),
                    ),
                    expire_days=args.archive_expire_after_days,
                    noncurrent_days=30,
                )
            ],
        ),
        # Versioned so an accidental delete does not reset the job; Spark rewrites its small
        # metadata files all the time, so old versions go after a week.
        "checkpoints": _BucketPlan(
            versioned=True, rules=[_rule("checkpoint-history", noncurrent_days=7)]
        ),
        "artifacts": _BucketPlan(
            versioned=True, rules=[_rule("artifact-history", noncurrent_days=90)]
        ),
        "logs": _BucketPlan(
            versioned=False, rules=[_rule("log-expiry", expire_days=args.log_days)]
        ),
        "dead_letters": _BucketPlan(
            versioned=True,
            rules=[
                _rule(
                    "dead-letter-expiry",
                    # S3 wants expiry after any transition, and Standard-IA bills 30 days
                    # at least: short-lived dead letters stay in Standard.
                    transitions=((30, "STANDARD_IA"),) if args.dead_letter_days > 60 else (),
                    expire_days=args.dead_letter_days,
                    noncurrent_days=30,
                )
            ],
        ),
    }


class Lake(pulumi.ComponentResource):
    """Five private, KMS-encrypted, TLS-only buckets with lifecycle rules."""

    buckets: dict[str, aws.s3.Bucket]
    names: dict[str, pulumi.Output[str]]
    arns: dict[str, pulumi.Output[str]]
    uris: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: LakeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kappa:aws:Lake", name, None, opts)
        self._opts = opts
        self.buckets = {}
        for role, plan in _plans(args).items():
            self.buckets[role] = self._secure_bucket(
                f"{name}-{role.replace('_', '-')}",
                plan,
                args,
                protect=args.protect and role in PROTECTED_ROLES,
            )
        self.names = {role: bucket.bucket for role, bucket in self.buckets.items()}
        self.arns = {role: bucket.arn for role, bucket in self.buckets.items()}
        self.uris = {role: pulumi.Output.concat("s3://", b) for role, b in self.names.items()}
        self.register_outputs({"names": self.names, "arns": self.arns, "uris": self.uris})

    def _secure_bucket(
        self, name: str, plan: _BucketPlan, args: LakeArgs, *, protect: bool
    ) -> aws.s3.Bucket:
        child = child_options(self, self._opts)
        bucket = aws.s3.Bucket(
            name,
            force_destroy=args.force_destroy,
            tags=dict(args.tags),
            opts=child_options(self, self._opts, protect=protect),
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": args.kms_key_arn,
                    },
                    # Bucket keys cut KMS requests (and cost) by orders of magnitude for
                    # the many small files a streaming job writes.
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        if plan.versioned:
            aws.s3.BucketVersioning(
                f"{name}-versioning",
                bucket=bucket.id,
                versioning_configuration={"status": "Enabled"},
                opts=child,
            )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id, rules=plan.rules, opts=child
        )
        # S3 rejects a bucket policy while the public access block is still being applied.
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=document(deny_insecure_transport(bucket.arn)),
            opts=child_options(self, self._opts, public_access),
        )
        return bucket
