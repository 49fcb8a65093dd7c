"""The cluster's identity: a dedicated service account and what it may touch.

Every grant is bound on the resource it is for (a bucket, a subscription, a table), so the
account can reach this stack's data and nothing else in the project. The one exception is
Dataproc Worker, which only exists at project level (see below). Never editor or owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.gcp.common import child_options, short_id

# The agent and task permissions a Dataproc VM needs (dataproc.agents.*, dataproc.tasks.*)
# are granted on the project: GCP has no cluster-level binding for them
# (https://cloud.google.com/dataproc/docs/concepts/configuring-clusters/service-accounts).
PROJECT_ROLES = ("roles/dataproc.worker",)
BUCKET_READ_ROLE = "roles/storage.objectViewer"
# Read, write, list and delete objects, without the IAM and ACL rights objectAdmin adds.
BUCKET_WRITE_ROLE = "roles/storage.objectUser"
SUBSCRIPTION_ROLE = "roles/pubsub.subscriber"
TABLE_ROLE = "roles/bigtable.user"


@dataclass(frozen=True)
class ClusterIdentityArgs:
    project: pulumi.Input[str]
    # role -> bucket name; read-only buckets (job bundle, scripts) and read-write ones.
    read_buckets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    write_buckets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # pipeline version -> subscription name (or id) the job consumes
    subscriptions: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # pipeline version -> serving table, all in `bigtable_instance`
    bigtable_instance: pulumi.Input[str] | None = None
    bigtable_tables: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    account_id: str | None = None

    def __post_init__(self) -> None:
        if self.bigtable_tables and self.bigtable_instance is None:
            raise ValueError("ClusterIdentityArgs: bigtable_tables need bigtable_instance")


class ClusterIdentity(pulumi.ComponentResource):
    account: gcp.serviceaccount.Account
    email: pulumi.Output[str]
    member: pulumi.Output[str]

    def __init__(
        self, name: str, args: ClusterIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kappa:gcp:ClusterIdentity", name, None, opts)
        child = child_options(self, opts)
        self.account = gcp.serviceaccount.Account(
            f"{name}-sa",
            project=args.project,
            # Account ids are 6-30 characters and not auto-named.
            account_id=args.account_id or short_id(f"{name}-sa", 30, min_length=6),
            display_name=f"Dataproc nodes of {name}",
            description="Runs the Kappa streaming job; scoped to this stack's resources.",
            opts=child,
        )
        self.email = self.account.email
        self.member = pulumi.Output.concat("serviceAccount:", self.account.email)

        for role in PROJECT_ROLES:
            gcp.projects.IAMMember(
                f"{name}-{role.split('/')[-1].replace('.', '-')}",
                project=args.project,
                role=role,
                member=self.member,
                opts=child,
            )
        for grants, role in (
            (args.read_buckets, BUCKET_READ_ROLE),
            (args.write_buckets, BUCKET_WRITE_ROLE),
        ):
            for bucket_role, bucket in grants.items():
                gcp.storage.BucketIAMMember(
                    f"{name}-{bucket_role.replace('_', '-')}-objects",
                    bucket=bucket,
                    role=role,
                    member=self.member,
                    opts=child,
                )
        for version, subscription in args.subscriptions.items():
            gcp.pubsub.SubscriptionIAMMember(
                f"{name}-{version}-subscriber",
                project=args.project,
                subscription=subscription,
                role=SUBSCRIPTION_ROLE,
                member=self.member,
                opts=child,
            )
        instance = args.bigtable_instance
        for version, table in args.bigtable_tables.items() if instance is not None else ():
            gcp.bigtable.TableIamMember(
                f"{name}-{version}-table",
                project=args.project,
                instance_name=instance,
                table=table,
                role=TABLE_ROLE,
                member=self.member,
                opts=child,
            )
        self.register_outputs({"email": self.email, "member": self.member})
