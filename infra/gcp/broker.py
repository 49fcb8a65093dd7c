"""The log: a Pub/Sub topic, one pull subscription per pipeline version, and a dead-letter topic.

Pub/Sub has no offsets. What makes it replayable is retention on both ends: the topic keeps
every message for its retention, so a new subscription (a new pipeline version) can seek
back to any time within it, and each subscription keeps acknowledged messages, so a version
can seek back over what it has already read. Older history is in the lake's raw archive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

# The ack deadline's rule lives with the config, which checks the deduplication against it.
from infra.config.clouds import (
    MAX_ACK_DEADLINE_SECONDS,
    MIN_ACK_DEADLINE_SECONDS,
    ack_deadline_for,
)
from infra.gcp.common import grant_kms, project_number, service_agent
from infra.options import child_options

# Pub/Sub retention, topic and subscription alike: 10 minutes to 31 days.
MAX_RETENTION_HOURS = 31 * 24
__all__ = ["Broker", "BrokerArgs", "ack_deadline_for"]


@dataclass(frozen=True)
class BrokerArgs:
    project: pulumi.Input[str]
    region: str
    versions: tuple[str, ...] = ("v1",)
    retention_hours: int = 168
    ack_deadline_seconds: int = 60
    max_delivery_attempts: int = 10
    # Exponential backoff between redeliveries of a message the job failed to acknowledge.
    minimum_backoff: str = "10s"
    maximum_backoff: str = "600s"
    labels: dict[str, str] = field(default_factory=dict)
    kms_key: str | None = None
    protect: bool = True
    # Bring your own topic (its id, projects/p/topics/t): only subscriptions are created.
    topic: pulumi.Input[str] | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.retention_hours <= MAX_RETENTION_HOURS:
            raise ValueError(f"BrokerArgs.retention_hours must be 1-{MAX_RETENTION_HOURS}")
        if not MIN_ACK_DEADLINE_SECONDS <= self.ack_deadline_seconds <= MAX_ACK_DEADLINE_SECONDS:
            raise ValueError("BrokerArgs.ack_deadline_seconds must be 10-600")
        if not 5 <= self.max_delivery_attempts <= 100:
            raise ValueError("BrokerArgs.max_delivery_attempts must be 5-100 (Pub/Sub's bounds)")
        if not self.versions:
            raise ValueError("BrokerArgs.versions needs at least one pipeline version")


class Broker(pulumi.ComponentResource):
    topic_name: pulumi.Output[str]
    topic_id: pulumi.Output[str]

    def __init__(self, name: str, args: BrokerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kappa:gcp:Broker", name, None, opts)
        child = child_options(self, opts)
        retention = f"{args.retention_hours * 3600}s"

        # The Pub/Sub service agent forwards undeliverable messages; it exists once the API
        # is on, and creating its identity explicitly makes that true before it is granted.
        identity = gcp.projects.ServiceIdentity(
            f"{name}-pubsub-agent",
            project=args.project,
            service="pubsub.googleapis.com",
            opts=child,
        )
        agent = service_agent(project_number(args.project, self), "pubsub")
        kms_grants = grant_kms(name, args.kms_key, {"pubsub": agent}, child) if args.kms_key else []
        topic_opts = child_options(self, opts, identity, *kms_grants)

        def topic(resource_name: str) -> gcp.pubsub.Topic:
            return gcp.pubsub.Topic(
                resource_name,
                project=args.project,
                message_retention_duration=retention,
                # Messages stay in the region the rest of the stack lives in.
                message_storage_policy=gcp.pubsub.TopicMessageStoragePolicyArgs(
                    allowed_persistence_regions=[args.region]
                ),
                kms_key_name=args.kms_key,
                labels=args.labels,
                deletion_policy="PREVENT" if args.protect else None,
                # Pulumi refuses to delete the log too, as on AWS.
                opts=pulumi.ResourceOptions.merge(
                    topic_opts, pulumi.ResourceOptions(protect=args.protect)
                ),
            )

        if args.topic is None:
            self.topic: gcp.pubsub.Topic | None = topic(f"{name}-events")
            self.topic_id = self.topic.id
            self.topic_name = self.topic.name
        else:
            self.topic = None
            self.topic_id = pulumi.Output.from_input(args.topic)
            self.topic_name = self.topic_id.apply(lambda topic_id: topic_id.rsplit("/", 1)[-1])

        self.dead_letter_topic = topic(f"{name}-dead-letter")
        self.dead_letter_subscription = gcp.pubsub.Subscription(
            f"{name}-dead-letter",
            project=args.project,
            topic=self.dead_letter_topic.id,
            # A topic without a subscription drops what is published to it.
            message_retention_duration=retention,
            retain_acked_messages=True,
            ack_deadline_seconds=60,
            expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
            labels=args.labels,
            opts=child,
        )
        gcp.pubsub.TopicIAMMember(
            f"{name}-dead-letter-publisher",
            project=args.project,
            topic=self.dead_letter_topic.name,
            role="roles/pubsub.publisher",
            member=agent,
            opts=child_options(self, opts, identity),
        )

        self.subscriptions: dict[str, gcp.pubsub.Subscription] = {}
        self.subscription_paths: dict[str, pulumi.Output[str]] = {}
        for version in args.versions:
            subscription = gcp.pubsub.Subscription(
                f"{name}-{version}",
                project=args.project,
                topic=self.topic_id,
                ack_deadline_seconds=args.ack_deadline_seconds,
                message_retention_duration=retention,
                retain_acked_messages=True,
                # The default deletes a subscription after 31 days without a pull: a job
                # stopped for a month would come back to nothing.
                expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
                retry_policy=gcp.pubsub.SubscriptionRetryPolicyArgs(
                    minimum_backoff=args.minimum_backoff, maximum_backoff=args.maximum_backoff
                ),
                dead_letter_policy=gcp.pubsub.SubscriptionDeadLetterPolicyArgs(
                    dead_letter_topic=self.dead_letter_topic.id,
                    max_delivery_attempts=args.max_delivery_attempts,
                ),
                # The job deduplicates on the event id, so at-least-once delivery suffices
                # and exactly-once's extra acknowledgement latency buys nothing.
                enable_exactly_once_delivery=False,
                labels={**args.labels, "kappa-version": version},
                opts=child,
            )
            # Forwarding to the dead-letter topic acknowledges the message on the source
            # subscription, which the service agent may only do as a subscriber.
            gcp.pubsub.SubscriptionIAMMember(
                f"{name}-{version}-dead-letter-subscriber",
                project=args.project,
                subscription=subscription.name,
                role="roles/pubsub.subscriber",
                member=agent,
                opts=child_options(self, opts, identity),
            )
            self.subscriptions[version] = subscription
            self.subscription_paths[version] = pulumi.Output.concat(
                "projects/", args.project, "/subscriptions/", subscription.name
            )

        self.register_outputs(
            {
                "name": self.topic_name,
                "id": self.topic_id,
                "subscriptions": self.subscription_paths,
                "dead_letter_topic": self.dead_letter_topic.id,
                "dead_letter_subscription": self.dead_letter_subscription.id,
            }
        )
