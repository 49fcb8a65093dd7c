"""Pub/Sub: a replayable log with one subscription per pipeline version and dead-lettering."""

from __future__ import annotations

import pytest

from infra.gcp.broker import Broker, BrokerArgs, ack_deadline_for
from tests.infra.gcp.conftest import (
    CMEK_KEY,
    GcpStack,
    agent,
    named,
    run_layer,
)
from tests.infra.mocks import Recording, Resource

TOPIC = "gcp:pubsub/topic:Topic"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
TOPIC_MEMBER = "gcp:pubsub/topicIAMMember:TopicIAMMember"
SUBSCRIPTION_MEMBER = "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember"
SERVICE_IDENTITY = "gcp:projects/serviceIdentity:ServiceIdentity"
KEY_GRANT = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
SEVEN_DAYS = f"{7 * 24 * 3600}s"


def events(recording: Recording) -> Resource:
    return named(recording, TOPIC, "kappa-test-events")


def dead_letter_topic(recording: Recording) -> Resource:
    return named(recording, TOPIC, "kappa-test-dead-letter")


def subscription(recording: Recording, version: str = "v1") -> Resource:
    return named(recording, SUBSCRIPTION, f"kappa-test-{version}")


def test_topic_keeps_messages_for_seven_days_by_default(default_stack: Recording):
    assert events(default_stack)["messageRetentionDuration"] == SEVEN_DAYS


def test_topic_retention_follows_broker_retention_hours(gcp_stack: GcpStack):
    recording = gcp_stack(brokerRetentionHours=31 * 24)
    assert events(recording)["messageRetentionDuration"] == f"{31 * 24 * 3600}s"
    assert subscription(recording)["messageRetentionDuration"] == f"{31 * 24 * 3600}s"


def test_messages_are_stored_only_in_the_stacks_region(default_stack: Recording):
    for topic in default_stack.of_type(TOPIC):
        assert topic["messageStoragePolicy"] == {"allowedPersistenceRegions": ["europe-west1"]}


def test_subscription_reads_the_events_topic(default_stack: Recording):
    assert subscription(default_stack)["topic"] == events(default_stack).outputs["id"]


def test_subscription_retains_acknowledged_messages_for_replay(default_stack: Recording):
    sub = subscription(default_stack)
    assert sub["retainAckedMessages"] is True
    assert sub["messageRetentionDuration"] == SEVEN_DAYS


def test_subscription_never_expires_while_the_job_is_stopped(default_stack: Recording):
    assert subscription(default_stack)["expirationPolicy"] == {"ttl": ""}


def test_subscription_is_pull_without_exactly_once(default_stack: Recording):
    sub = subscription(default_stack)
    assert sub.get("pushConfig") is None
    assert sub["enableExactlyOnceDelivery"] is False


@pytest.mark.parametrize(
    ("trigger_seconds", "deadline"), [(1, 60), (30, 60), (120, 240), (300, 600), (3600, 600)]
)
def test_ack_deadline_spans_two_trigger_intervals_within_pubsub_bounds(
    trigger_seconds: int, deadline: int
):
    assert ack_deadline_for(trigger_seconds) == deadline


def test_ack_deadline_follows_the_trigger_interval(gcp_stack: GcpStack):
    recording = gcp_stack(pipelineTriggerSeconds=120)
    assert subscription(recording)["ackDeadlineSeconds"] == 240


def test_redelivery_backs_off_exponentially(default_stack: Recording):
    assert subscription(default_stack)["retryPolicy"] == {
        "minimumBackoff": "10s",
        "maximumBackoff": "600s",
    }


def test_undeliverable_messages_go_to_the_dead_letter_topic(default_stack: Recording):
    policy = subscription(default_stack)["deadLetterPolicy"]
    assert policy == {
        "deadLetterTopic": dead_letter_topic(default_stack).outputs["id"],
        "maxDeliveryAttempts": 10,
    }


def test_delivery_attempts_come_from_config(gcp_stack: GcpStack):
    recording = gcp_stack(brokerMaxDeliveryAttempts=5)
    assert subscription(recording)["deadLetterPolicy"]["maxDeliveryAttempts"] == 5


def test_dead_letters_are_kept_by_a_subscription_of_their_own(default_stack: Recording):
    sub = named(default_stack, SUBSCRIPTION, "kappa-test-dead-letter")
    assert sub["topic"] == dead_letter_topic(default_stack).outputs["id"]
    assert sub["retainAckedMessages"] is True
    assert sub["expirationPolicy"] == {"ttl": ""}
    assert sub.get("deadLetterPolicy") is None


def test_pubsub_agent_may_publish_to_the_dead_letter_topic_only(default_stack: Recording):
    (grant,) = default_stack.of_type(TOPIC_MEMBER)
    assert grant["topic"] == dead_letter_topic(default_stack).outputs["name"]
    assert grant["role"] == "roles/pubsub.publisher"
    assert grant["member"] == agent("pubsub")


def test_pubsub_agent_may_acknowledge_forwarded_messages(default_stack: Recording):
    grants = [
        g for g in default_stack.of_type(SUBSCRIPTION_MEMBER) if g["member"] == agent("pubsub")
    ]
    assert [(g["subscription"], g["role"]) for g in grants] == [
        (subscription(default_stack).outputs["name"], "roles/pubsub.subscriber")
    ]


def test_pubsub_agent_exists_before_it_is_granted(default_stack: Recording):
    identity = default_stack.one(SERVICE_IDENTITY)
    assert identity["service"] == "pubsub.googleapis.com"
    for grant in [
        *default_stack.of_type(TOPIC_MEMBER),
        *default_stack.of_type(SUBSCRIPTION_MEMBER),
    ]:
        if grant["member"] == agent("pubsub"):
            assert default_stack.depends_on(grant, identity)


def test_each_pipeline_version_replays_through_its_own_subscription(gcp_stack: GcpStack):
    recording = gcp_stack(pipelineVersions=["v1", "v2"], pipelineLiveVersion="v1")
    for version in ("v1", "v2"):
        sub = subscription(recording, version)
        assert sub["topic"] == events(recording).outputs["id"]
        assert sub["labels"]["kappa-version"] == version
    dead_letter_grants = [
        g["subscription"]
        for g in recording.of_type(SUBSCRIPTION_MEMBER)
        if g["member"] == agent("pubsub")
    ]
    assert sorted(dead_letter_grants) == ["kappa-test-v1-physical", "kappa-test-v2-physical"]


def test_topics_refuse_deletion_outside_dev(gcp_stack: GcpStack):
    recording = gcp_stack(environment="prod")
    assert {t.get("deletionPolicy") for t in recording.of_type(TOPIC)} == {"PREVENT"}


def test_topics_use_google_managed_keys_without_cmek(default_stack: Recording):
    assert all(t.get("kmsKeyName") is None for t in default_stack.of_type(TOPIC))


def broker_with_key() -> Broker:
    return Broker(
        "kappa-test", BrokerArgs(project="acme-data", region="europe-west1", kms_key=CMEK_KEY)
    )


def test_cmek_encrypts_both_topics_after_the_agent_may_use_the_key():
    recording = run_layer(broker_with_key)
    grant = recording.one(KEY_GRANT)
    assert (grant["cryptoKeyId"], grant["member"]) == (CMEK_KEY, agent("pubsub"))
    for topic in recording.of_type(TOPIC):
        assert topic["kmsKeyName"] == CMEK_KEY
        assert recording.depends_on(topic, grant)


def test_an_existing_topic_gets_subscriptions_but_is_not_created():
    topic_id = "projects/platform/topics/events"
    recording = run_layer(
        lambda: Broker(
            "kappa-test", BrokerArgs(project="acme-data", region="europe-west1", topic=topic_id)
        )
    )
    assert [t.name for t in recording.of_type(TOPIC)] == ["kappa-test-dead-letter"]
    assert subscription(recording)["topic"] == topic_id


def test_broker_args_reject_retention_pubsub_cannot_keep():
    with pytest.raises(ValueError, match="retention_hours"):
        BrokerArgs(project="p", region="europe-west1", retention_hours=32 * 24)
