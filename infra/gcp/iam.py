"""The cluster's identity: a dedicated service account and what it may touch.

Every data grant is bound on the resource it is for (a bucket, a subscription, a table), so
the account can reach this stack's data and nothing else in the project. The one project-level
grant is a custom role holding only what a Dataproc node's agent needs to talk to the service
and to write logs and metrics: no storage permission at all. Never editor or owner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.gcp.common import short_id
from infra.options import child_options

# roles/dataproc.worker, the role Google suggests for a cluster's service account, also holds
# storage.objects.* (with getIamPolicy/setIamPolicy) and storage.buckets.get on the whole
# project: every bucket in it. What remains without storage is what the node's agent needs
# at project level: GCP has no cluster-level binding for the agent and task permissions
# (https://cloud.google.com/dataproc/docs/concepts/iam/iam, "Dataproc Worker"; cluster
# creation refuses an account without dataproc.agents.* and dataproc.tasks.*), plus
# the writes of roles/logging.logWriter and roles/monitoring.metricWriter for the job's
# driver, YARN and agent logs and metrics. Left out: the profiler, data lineage, Dataproc
# Resource Manager and serverless (batches, sessions) permissions, none of which this
# cluster uses.
NODE_PERMISSIONS = (
    "dataproc.agents.create",
    "dataproc.agents.delete",
    "dataproc.agents.get",
    "dataproc.agents.list",
    "dataproc.agents.update",
    "dataproc.tasks.lease",
    "dataproc.tasks.listInvalidatedLeases",
    "dataproc.tasks.reportStatus",
    "logging.logEntries.create",
    "logging.logEntries.route",
    "monitoring.metricDescriptors.create",
    "monitoring.metricDescriptors.get",
    "monitoring.metricDescriptors.list",
    "monitoring.monitoredResourceDescriptors.get",
    "monitoring.monitoredResourceDescriptors.list",
    "monitoring.timeSeries.create",
)
# roles/dataproc.worker also carried bucket metadata reads, which the object roles below lack:
# the Cloud Storage connector reads a bucket's metadata for a bucket-root path (the spec's
# archive, checkpoint and dead-letter URIs are bucket roots) and Dataproc checks its staging and
# temp buckets. Bound on each bucket the account uses, never on the project.
BUCKET_PERMISSIONS = ("storage.buckets.get",)
BUCKET_READ_ROLE = "roles/storage.objectViewer"
# Read, write, list and delete objects, without the IAM and ACL rights objectAdmin adds.
BUCKET_WRITE_ROLE = "roles/storage.objectUser"
SUBSCRIPTION_ROLE = "roles/pubsub.subscriber"
# Custom role ids: letters, digits, '_' and '.', 3-64 characters.
ROLE_ID_MAX = 64


def role_id(name: str) -> str:
    """A custom role id per component name, so two stacks in one project never share a role."""
    return short_id(name, ROLE_ID_MAX, min_length=3).replace("-", "_")


@dataclass(frozen=True)
class Grantee:
    """Whom a serving store's bindings are for: the nodes' service account."""

    name: str  # the ClusterIdentity's name; a binding's resource name derives from it
    member: pulumi.Input[str]  # serviceAccount:...
    opts: pulumi.ResourceOptions  # the ClusterIdentity's children's options


# A serving store's grant to the nodes: a binding on one of the store's own resources, declared
# by ClusterIdentity for its account (infra/gcp/stores/, Serving.grants).
NodeGrant = Callable[[Grantee], pulumi.Resource]


@dataclass(frozen=True)
class ClusterIdentityArgs:
    project: pulumi.Input[str]
    # role -> bucket name; read-only buckets (job bundle, scripts) and read-write ones. The
    # cluster's staging and temp buckets must be among the read-write ones.
    read_buckets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    write_buckets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # pipeline version -> subscription name (or id) the job consumes
    subscriptions: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # The serving store's bindings (Serving.grants): the sink's access to each table.
    serving_grants: Sequence[NodeGrant] = ()
    account_id: str | None = None


class ClusterIdentity(pulumi.ComponentResource):
    account: gcp.serviceaccount.Account
    email: pulumi.Output[str]
    member: pulumi.Output[str]
    node_role: gcp.projects.IAMCustomRole
    bucket_role: gcp.projects.IAMCustomRole

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

        self.node_role = _custom_role(
            f"{name}-dataproc-node",
            args.project,
            f"Dataproc node of {name}",
            "Dataproc Worker without its project-wide Cloud Storage access.",
            NODE_PERMISSIONS,
            child,
        )
        gcp.projects.IAMMember(
            f"{name}-dataproc-node",
            project=args.project,
            role=self.node_role.name,
            member=self.member,
            opts=child,
        )
        self.bucket_role = _custom_role(
            f"{name}-bucket-metadata",
            args.project,
            f"Bucket metadata reader of {name}",
            "Reads a bucket's metadata; granted on single buckets only.",
            BUCKET_PERMISSIONS,
            child,
        )
        for grants, objects_role in (
            (args.read_buckets, BUCKET_READ_ROLE),
            (args.write_buckets, BUCKET_WRITE_ROLE),
        ):
            for bucket_role, bucket in grants.items():
                prefix = f"{name}-{bucket_role.replace('_', '-')}"
                for suffix, role in (("objects", objects_role), ("bucket", self.bucket_role.name)):
                    gcp.storage.BucketIAMMember(
                        f"{prefix}-{suffix}",
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
        for grant in args.serving_grants:
            grant(Grantee(name=name, member=self.member, opts=child))
        self.register_outputs(
            {
                "email": self.email,
                "member": self.member,
                "node_role": self.node_role.name,
                "bucket_role": self.bucket_role.name,
            }
        )


def _custom_role(
    resource_name: str,
    project: pulumi.Input[str],
    title: str,
    description: str,
    permissions: tuple[str, ...],
    opts: pulumi.ResourceOptions,
) -> gcp.projects.IAMCustomRole:
    # A deleted custom role keeps its id for up to 37 days: recreated within 7 days it is
    # undeleted, later the id is refused until Google frees it (IAMCustomRole's docs).
    return gcp.projects.IAMCustomRole(
        resource_name,
        project=project,
        role_id=role_id(resource_name),
        title=title[:100],
        description=description,
        permissions=list(permissions),
        stage="GA",
        opts=opts,
    )
