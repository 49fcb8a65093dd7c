"""Cloud Storage for everything the pipeline keeps: one bucket per role.

Every bucket: uniform bucket-level access (no object ACLs), public access prevention
enforced, regional in the cluster's region (no cross-region traffic), CMEK when a key is
given. Versioning where losing an object loses data nobody can rebuild (the raw archive,
dead letters, checkpoints); not where the stack rebuilds it (artifacts), where Dataproc
rebuilds it (staging) or where it is disposable (logs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_gcp as gcp

from infra.gcp.common import bucket_uri, grant_kms
from infra.options import child_options

Role = Literal["archive", "checkpoints", "artifacts", "staging", "logs", "dead_letters"]
ROLES: tuple[Role, ...] = (
    "archive",
    "checkpoints",
    "artifacts",
    "staging",
    "logs",
    "dead_letters",
)
VERSIONED: frozenset[Role] = frozenset({"archive", "checkpoints", "dead_letters"})
# Losing these loses data; removing them should never be a side effect of `pulumi up`.
STATEFUL: frozenset[Role] = frozenset({"archive", "checkpoints", "dead_letters"})

# How long an overwritten or deleted version stays recoverable.
NONCURRENT_DAYS: dict[Role, int] = {"archive": 30, "checkpoints": 7, "dead_letters": 30}
# Parallel composite and multipart uploads left behind by a killed writer are billed.
ABANDONED_UPLOAD_DAYS = 7


@dataclass(frozen=True)
class LakeArgs:
    project: pulumi.Input[str]
    location: str
    labels: dict[str, str] = field(default_factory=dict)
    kms_key: str | None = None
    # Deletion protection: stateful buckets refuse deletion, and no bucket is emptied on destroy.
    protect: bool = True
    archive_cold_after_days: int = 30
    archive_archive_after_days: int = 180
    archive_expire_after_days: int = 0  # 0 keeps the archive forever
    log_days: int = 30
    dead_letter_days: int = 365


class Lake(pulumi.ComponentResource):
    buckets: dict[Role, gcp.storage.Bucket]

    def __init__(self, name: str, args: LakeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kappa:gcp:Lake", name, None, opts)
        kms_grants: list[pulumi.Resource] = []
        if args.kms_key:
            children = child_options(self, opts)
            # Cloud Storage answers this lookup only once its API is on, which on a new
            # project the stack itself enables; an invoke does not inherit its parent's
            # depends_on, so it is given what the lake waits for.
            agent = gcp.storage.get_project_service_account_output(
                project=args.project,
                opts=pulumi.InvokeOutputOptions(parent=self, depends_on=children.depends_on),
            )
            kms_grants = list(
                grant_kms(
                    name,
                    args.kms_key,
                    {"storage": pulumi.Output.concat("serviceAccount:", agent.email_address)},
                    children,
                )
            )
        bucket_opts = child_options(self, opts, *kms_grants)
        self.buckets = {role: _bucket(name, role, args, bucket_opts) for role in ROLES}
        self.names: dict[str, pulumi.Output[str]] = {
            role: bucket.name for role, bucket in self.buckets.items()
        }
        self.uris: dict[str, pulumi.Output[str]] = {
            role: bucket_uri(bucket.name) for role, bucket in self.buckets.items()
        }
        self.register_outputs({"names": self.names, "uris": self.uris})


def _bucket(
    name: str, role: Role, args: LakeArgs, opts: pulumi.ResourceOptions
) -> gcp.storage.Bucket:
    return gcp.storage.Bucket(
        f"{name}-{role.replace('_', '-')}",
        project=args.project,
        location=args.location.upper(),
        storage_class="STANDARD",
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning=gcp.storage.BucketVersioningArgs(enabled=role in VERSIONED),
        lifecycle_rules=_lifecycle(role, args),
        encryption=(
            gcp.storage.BucketEncryptionArgs(default_kms_key_name=args.kms_key)
            if args.kms_key
            else None
        ),
        force_destroy=not args.protect,
        deletion_policy="PREVENT" if args.protect and role in STATEFUL else None,
        labels={**args.labels, "kappa-role": role.replace("_", "-")},
        # Pulumi refuses to delete the buckets that hold data too, as on AWS.
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(protect=args.protect and role in STATEFUL)
        ),
    )


_Condition = gcp.storage.BucketLifecycleRuleConditionArgs


def _rule(
    action: str, condition: _Condition, storage_class: str | None = None
) -> gcp.storage.BucketLifecycleRuleArgs:
    return gcp.storage.BucketLifecycleRuleArgs(
        action=gcp.storage.BucketLifecycleRuleActionArgs(type=action, storage_class=storage_class),
        condition=condition,
    )


def _lifecycle(role: Role, args: LakeArgs) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    rules = [_rule("AbortIncompleteMultipartUpload", _Condition(age=ABANDONED_UPLOAD_DAYS))]
    if role in NONCURRENT_DAYS:
        noncurrent = _Condition(
            with_state="ARCHIVED", days_since_noncurrent_time=NONCURRENT_DAYS[role]
        )
        rules.append(_rule("Delete", noncurrent))
    if role == "archive":
        # Nearline and Archive have 30- and 365-day minimum storage durations: replays read
        # recent data far more often than old data, so old data moves down, never back up.
        cold = _Condition(age=args.archive_cold_after_days, matches_storage_classes=["STANDARD"])
        rules.append(_rule("SetStorageClass", cold, "NEARLINE"))
        archived = _Condition(
            age=args.archive_archive_after_days, matches_storage_classes=["STANDARD", "NEARLINE"]
        )
        rules.append(_rule("SetStorageClass", archived, "ARCHIVE"))
        if args.archive_expire_after_days:
            expired = _Condition(age=args.archive_expire_after_days, with_state="LIVE")
            rules.append(_rule("Delete", expired))
    elif role == "logs":
        rules.append(_rule("Delete", _Condition(age=args.log_days)))
    elif role == "dead_letters":
        rules.append(_rule("Delete", _Condition(age=args.dead_letter_days, with_state="LIVE")))
    # Artifacts never expire: a node added by autoscaling months later still runs the
    # initialization action it was created with, from the same object. Nor does the staging
    # bucket: it holds the cluster's configuration files, which Dataproc gives no TTL
    # (https://cloud.google.com/dataproc/docs/concepts/configuring-clusters/staging-bucket),
    # and a long-running cluster still needs them when logs of its age have long expired.
    return rules
