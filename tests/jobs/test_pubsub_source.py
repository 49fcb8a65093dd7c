"""The Pub/Sub reader against Google's fake (pstest, a Go program in jobs/emulators/pubsub),
and the pipeline from Pub/Sub to Bigtable (Google's bttest, jobs/emulators/bigtable).

pstest cannot replay: its Seek puts the messages published after the target time back into
the subscription without their bodies (pstest/fake.go, GServer.Seek: "This was not
preserved!"), and its Pull then dereferences the missing body and the fake dies. So the
starting-position tests check the seek the reader asks for, on a fake of their own, and seek
only where nothing lies after the target; the other tests do not seek (replay window 0).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kappa import pipeline
from kappa.sources.pubsub import PubSubStreamReader
from kappa.spec import PubSubSource

from tests.jobs import servers, stores
from tests.jobs.support import assert_matches_truth, generate, make_spec, serving_view, truth

pytestmark = pytest.mark.filterwarnings("ignore:Connecting to Bigtable emulator")

_names = itertools.count()


@pytest.fixture
def clients(pubsub_emulator: str) -> tuple[Any, Any]:
    """Publisher and subscriber clients of pstest (PUBSUB_EMULATOR_HOST points there)."""
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()


@pytest.fixture
def own_clients(pubsub_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Clients of a pstest of this test's own: a seek there touches no other test's messages
    (pstest's Seek takes the messages of every topic on the server)."""
    from google.cloud import pubsub_v1

    with servers.go_emulator("pubsub", servers.free_port()) as address:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", address)  # read by each client it makes
        yield pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()


class _SeekRecorder:
    """A subscriber client that records the times it is asked to seek to, and seeks."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.seeks: list[datetime] = []

    def seek(self, request: dict[str, Any]) -> Any:
        self.seeks.append(request["time"])
        return self._client.seek(request=request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _recording(reader: PubSubStreamReader, subscriber: Any) -> _SeekRecorder:
    recorder = _SeekRecorder(subscriber)
    reader._client = recorder
    return recorder


def _subscription(clients: tuple[Any, Any]) -> tuple[str, str]:
    publisher, subscriber = clients
    n = next(_names)
    topic = f"projects/test-project/topics/events-{n}"
    subscription = f"projects/test-project/subscriptions/kappa-{n}"
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)
    return topic, subscription


def _publish(clients: tuple[Any, Any], topic: str, payloads: list[str]) -> None:
    publisher, _ = clients
    for future in [publisher.publish(topic, p.encode()) for p in payloads]:
        future.result()


def _reader(subscription: str, state: Path, **options: str) -> PubSubStreamReader:
    # No seek unless a test asks for one: see the module's docstring.
    defaults = {"subscription": subscription, "state_uri": str(state), "replay_window_seconds": "0"}
    return PubSubStreamReader({**defaults, **options})


def _rows(reader: PubSubStreamReader, start: dict, end: dict) -> list[tuple[Any, ...]]:
    return [tuple(row) for part in reader.partitions(start, end) for row in reader.read(part)]


def _read(reader: PubSubStreamReader, start: dict, end: dict) -> list[str]:
    return [payload for payload, *_ in _rows(reader, start, end)]


def _stored_ack_ids(state: Path, batch: int) -> list[str]:
    return json.loads((state / "batches" / f"{batch:012d}.json").read_text())["ack_ids"]


def test_pulled_messages_are_kept_as_a_replayable_batch(clients: Any, tmp_path: Path) -> None:
    topic, subscription = _subscription(clients)
    _publish(clients, topic, ["m1", "m2", "m3"])
    reader = _reader(subscription, tmp_path)
    start = reader.initialOffset()
    end = reader.latestOffset()
    assert (start, end) == ({"batch": -1}, {"batch": 0})
    assert sorted(_read(reader, start, end)) == ["m1", "m2", "m3"]
    assert sorted(_read(reader, start, end)) == ["m1", "m2", "m3"]  # a replay reads the same
    assert reader.latestOffset() == {"batch": 0}  # nothing new: no new batch


def test_each_message_is_identified_by_its_message_id(clients: Any, tmp_path: Path) -> None:
    """Messages with the same bytes are told apart; a replayed batch gives the same ids, and so
    does a redelivery (its lease lapsed before Spark committed the batch)."""
    publisher, subscriber = clients
    topic, subscription = _subscription(clients)
    ids = [publisher.publish(topic, b"{broken").result() for _ in range(3)]
    reader = _reader(subscription, tmp_path)
    start = reader.initialOffset()
    end = reader.latestOffset()
    rows = _rows(reader, start, end)
    assert sorted((payload, record_id) for payload, _, record_id in rows) == sorted(
        ("{broken", message_id) for message_id in ids
    )
    assert _rows(reader, start, end) == rows
    subscriber.modify_ack_deadline(
        request={
            "subscription": subscription,
            "ack_ids": _stored_ack_ids(tmp_path, 0),
            "ack_deadline_seconds": 0,
        }
    )
    redelivered = _rows(reader, end, reader.latestOffset())
    assert sorted(record_id for *_, record_id in redelivered) == sorted(ids)


def test_a_batch_stored_without_message_ids_is_still_read(clients: Any, tmp_path: Path) -> None:
    """Batches stored by the reader before it kept message ids: their records have none."""
    reader = _reader("projects/test-project/subscriptions/none", tmp_path)
    batch = tmp_path / "batches" / f"{0:012d}.json"
    batch.parent.mkdir(parents=True)
    batch.write_text(json.dumps({"ack_ids": ["a"], "messages": [["{broken", 1_795_601_103_000]]}))
    [(payload, _, record_id)] = _rows(reader, {"batch": -1}, {"batch": 0})
    assert (payload, record_id) == ("{broken", None)


def test_messages_are_acknowledged_only_when_spark_commits(clients: Any, tmp_path: Path) -> None:
    _, subscriber = clients
    topic, subscription = _subscription(clients)
    _publish(clients, topic, ["m1", "m2"])
    reader = _reader(subscription, tmp_path)
    reader.initialOffset()
    end = reader.latestOffset()
    ack_ids = _stored_ack_ids(tmp_path, 0)
    # Let the lease lapse, as a crash would: unacknowledged messages come back.
    subscriber.modify_ack_deadline(
        request={"subscription": subscription, "ack_ids": ack_ids, "ack_deadline_seconds": 0}
    )
    restarted = _reader(subscription, tmp_path)
    assert restarted.latestOffset() == {"batch": 1}
    assert sorted(_read(restarted, end, {"batch": 1})) == ["m1", "m2"]
    restarted.commit({"batch": 1})
    assert list((tmp_path / "batches").iterdir()) == []
    redelivered = subscriber.pull(
        request={"subscription": subscription, "max_messages": 10}, timeout=5
    )
    assert list(redelivered.received_messages) == []


def test_batch_numbers_continue_after_a_restart(clients: Any, tmp_path: Path) -> None:
    topic, subscription = _subscription(clients)
    _publish(clients, topic, ["m1"])
    reader = _reader(subscription, tmp_path)
    reader.initialOffset()
    reader.commit(reader.latestOffset())
    _publish(clients, topic, ["m2"])
    restarted = _reader(subscription, tmp_path)
    end = restarted.latestOffset()
    assert end == {"batch": 1}
    assert _read(restarted, {"batch": 0}, end) == ["m2"]


def test_latest_skips_the_backlog(clients: Any, tmp_path: Path) -> None:
    topic, subscription = _subscription(clients)
    _publish(clients, topic, ["old"])
    reader = _reader(subscription, tmp_path, starting_position="latest")
    start = reader.initialOffset()
    assert reader.latestOffset() == start
    _publish(clients, topic, ["new"])
    assert _read(reader, start, reader.latestOffset()) == ["new"]


def test_earliest_seeks_a_new_query_back_over_the_topics_retention(
    own_clients: Any, tmp_path: Path
) -> None:
    topic, subscription = _subscription(own_clients)
    reader = _reader(subscription, tmp_path, replay_window_seconds="3600")
    recorder = _recording(reader, own_clients[1])
    before = datetime.now(UTC)
    start = reader.initialOffset()
    assert reader.latestOffset() == start  # nothing published yet
    after = datetime.now(UTC)
    [target] = recorder.seeks
    assert before - timedelta(hours=1) <= target <= after - timedelta(hours=1)
    _publish(own_clients, topic, ["m1"])
    assert _read(reader, start, reader.latestOffset()) == ["m1"]


def test_a_restarted_query_does_not_seek_again(own_clients: Any, tmp_path: Path) -> None:
    topic, subscription = _subscription(own_clients)
    first = _reader(subscription, tmp_path, replay_window_seconds="3600")
    seeks = _recording(first, own_clients[1]).seeks
    first.initialOffset()
    first.latestOffset()
    _publish(own_clients, topic, ["m1"])
    first.commit(first.latestOffset())
    assert len(seeks) == 1
    restarted = _reader(subscription, tmp_path, replay_window_seconds="3600")
    seeks_after_restart = _recording(restarted, own_clients[1]).seeks
    _publish(own_clients, topic, ["m2"])
    end = restarted.latestOffset()
    assert seeks_after_restart == []
    assert _read(restarted, {"batch": 0}, end) == ["m2"]


def test_a_timestamp_start_skips_what_was_published_before_it(
    own_clients: Any, tmp_path: Path
) -> None:
    topic, subscription = _subscription(own_clients)
    _publish(own_clients, topic, ["before"])
    time.sleep(0.05)
    moment = datetime.now(UTC)
    time.sleep(0.05)
    reader = _reader(subscription, tmp_path, starting_position=moment.isoformat())
    recorder = _recording(reader, own_clients[1])
    start = reader.initialOffset()
    assert reader.latestOffset() == start
    assert recorder.seeks == [moment]
    _publish(own_clients, topic, ["after"])
    assert _read(reader, start, reader.latestOffset()) == ["after"]


def test_a_replay_window_of_zero_reads_the_subscription_as_it_stands(
    clients: Any, tmp_path: Path
) -> None:
    topic, subscription = _subscription(clients)
    _publish(clients, topic, ["m1"])
    reader = _reader(subscription, tmp_path, replay_window_seconds="0")
    recorder = _recording(reader, clients[1])
    start = reader.initialOffset()
    assert _read(reader, start, reader.latestOffset()) == ["m1"]
    assert recorder.seeks == []


def test_a_batch_holds_at_most_max_messages(clients: Any, tmp_path: Path) -> None:
    topic, subscription = _subscription(clients)
    _publish(clients, topic, [f"m{i}" for i in range(5)])
    reader = _reader(subscription, tmp_path, max_messages_per_batch="2")
    offsets = [reader.initialOffset()]
    sizes = []
    for _ in range(3):
        offsets.append(reader.latestOffset())
        sizes.append(len(_read(reader, offsets[-2], offsets[-1])))
    assert sizes == [2, 2, 1]


@pytest.mark.spark
@pytest.mark.e2e
def test_pipeline_from_pubsub_to_bigtable_matches_truth(
    spark: Any, clients: Any, bigtable_emulator: str, tmp_path: Path
) -> None:
    topic, subscription = _subscription(clients)
    events = generate(100, seed=33)
    _publish(clients, topic, [e.to_json() for e in events] + [events[0].to_json(), "{oops"])
    backing = stores.bigtable_store()
    spec = make_spec(
        tmp_path,
        sink=backing.sink,
        # Published before the query starts, so no seek: see the module's docstring.
        source=PubSubSource(subscription=subscription, replay_window_seconds=0),
        version="ps",
    )
    stores.create_bigtable_table(spec.serving_table)
    query, writer = pipeline.start(spark, spec, trigger_seconds=0.5)
    try:
        query.processAllAvailable()
    finally:
        query.stop()
    assert sum(c.on_time for c in writer.history.values()) == 100
    assert sum(c.malformed for c in writer.history.values()) == 1
    assert_matches_truth(serving_view(backing.read_rows(spec.serving_table)), truth(events))
    # Committed batches are acknowledged and their stored copies removed.
    assert list((Path(spec.checkpoint_location) / "source-state" / "batches").iterdir()) == []
