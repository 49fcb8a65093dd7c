"""Pub/Sub as a Spark 4 Python streaming data source, over google-cloud-pubsub (pull).

Pub/Sub has no offsets, so this reader makes its own: batch numbers. latestOffset() pulls up
to max_messages_per_batch messages, stores them as batch N+1 under state_uri (beside the
query's checkpoint) and only then returns {"batch": N+1}. A batch is therefore replayable:
after a crash Spark re-reads the stored messages, not whatever Pub/Sub hands out next.
Messages are acknowledged in commit(), i.e. only after Spark has committed the batch that
holds them; until then their lease is renewed on every trigger. A message whose lease ran out
anyway is redelivered, and the job's deduplication on the event id drops the repeat.

PUBSUB_EMULATOR_HOST, when set, is honoured by the client library itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

from .. import objects
from ..spec import DEFAULT_REPLAY_WINDOW_SECONDS
from .planned import PlannedOffsets

NAME = "kappa-pubsub"
SCHEMA = "payload string, arrival_time timestamp, record_id string"

_PULL_LIMIT = 1_000  # messages one Pull returns at most
_ACK_LIMIT = 1_000  # ack ids per Acknowledge / ModifyAckDeadline request (request size cap)
_FIRST_PULL_TIMEOUT = 10.0
_NEXT_PULL_TIMEOUT = 2.0

logger = logging.getLogger(__name__)


class PubSubBatch(InputPartition):
    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.uri = uri


class PubSubDataSource(DataSource):
    """Options: subscription, starting_position ("earliest", "latest" or ISO-8601 time),
    replay_window_seconds (how far back "earliest" seeks; 0: no seek), max_messages_per_batch,
    ack_deadline_seconds, state_uri (where pulled batches are kept)."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def schema(self) -> str:
        return SCHEMA

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return PubSubStreamReader(dict(self.options))


class PubSubStreamReader(DataSourceStreamReader):
    def __init__(self, options: dict[str, str]) -> None:
        self._subscription = options["subscription"]
        self._starting_position = options.get("starting_position", "earliest")
        self._max_messages = int(options.get("max_messages_per_batch", "10000"))
        self._ack_deadline = int(options.get("ack_deadline_seconds", "600"))
        self._replay_window = timedelta(
            seconds=int(options.get("replay_window_seconds", DEFAULT_REPLAY_WINDOW_SECONDS))
        )
        self._state_uri = options["state_uri"]
        self._latest: int | None = None
        # Ack ids of batches planned but not yet committed, kept to renew their leases.
        self._leased: dict[int, list[str]] = {}
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None
        state["_leased"] = {}
        return state

    def _subscriber(self) -> Any:
        if self._client is None:
            from google.cloud import pubsub_v1

            self._client = pubsub_v1.SubscriberClient()
        return self._client

    def _batches_uri(self) -> str:
        return objects.join(self._state_uri, "batches")

    def _batch_uri(self, number: int) -> str:
        # Zero-padded so that names sort by number.
        return objects.join(self._batches_uri(), f"{number:012d}.json")

    def initialOffset(self) -> dict:
        return {"batch": -1}

    def _current(self) -> int:
        if self._latest is None:
            saved = PlannedOffsets(self._state_uri).load()
            if saved is None:
                self._seek_to_start()
                self._latest = -1
                PlannedOffsets(self._state_uri).save({"batch": -1})
            else:
                self._latest = int(saved["batch"])
        return self._latest

    def _seek_to_start(self) -> None:
        """Position a new query's subscription; runs once, before its first pull.

        Pub/Sub has no offsets, only Seek to a time: retained messages published before it
        count as acknowledged, those published after it as not. The time may lie before the
        subscription was created: with the topic's message retention, the subscription then
        gets what the topic retains from that time on, and seeking to before the retained
        range replays what is retained (cloud.google.com/pubsub/docs/replay-overview).
        "earliest" seeks to now minus the replay window (the topic's retention), so that a new
        pipeline version's new subscription replays the log, including messages older than
        the subscription or acknowledged by an earlier reader; a window of 0 takes the
        subscription as it stands. A timestamp seeks there; "latest" skips the backlog.
        """
        moment = self._seek_target(datetime.now(UTC))
        if moment is None:
            return
        logger.info(
            "starting position %s: seeking %s to %s",
            self._starting_position,
            self._subscription,
            moment.isoformat(),
        )
        self._subscriber().seek(request={"subscription": self._subscription, "time": moment})

    def _seek_target(self, now: datetime) -> datetime | None:
        if self._starting_position == "latest":
            return now
        if self._starting_position != "earliest":
            return datetime.fromisoformat(self._starting_position)
        return now - self._replay_window if self._replay_window else None

    def latestOffset(self) -> dict:
        current = self._current()
        self._renew_leases()
        messages, ack_ids = self._pull()
        if not messages:
            return {"batch": current}
        number = current + 1
        document = {"ack_ids": ack_ids, "messages": messages}
        objects.write_bytes(self._batch_uri(number), json.dumps(document).encode("utf-8"))
        PlannedOffsets(self._state_uri).save({"batch": number})
        self._leased[number] = ack_ids
        self._latest = number
        return {"batch": number}

    def _pull(self) -> tuple[list[list[Any]], list[str]]:
        from google.api_core import exceptions

        subscriber = self._subscriber()
        messages: list[list[Any]] = []
        ack_ids: list[str] = []
        timeout = _FIRST_PULL_TIMEOUT
        while len(messages) < self._max_messages:
            wanted = min(_PULL_LIMIT, self._max_messages - len(messages))
            try:
                response = subscriber.pull(
                    request={"subscription": self._subscription, "max_messages": wanted},
                    timeout=timeout,
                )
            except exceptions.DeadlineExceeded:
                break  # nothing arrived within the timeout
            received = response.received_messages
            for item in received:
                message = item.message
                messages.append(
                    [
                        message.data.decode("utf-8", errors="replace"),
                        int(message.publish_time.timestamp() * 1000),
                        # The same on every redelivery of the message: its identity.
                        message.message_id,
                    ]
                )
                ack_ids.append(item.ack_id)
            if not received:
                break
            timeout = _NEXT_PULL_TIMEOUT
        if ack_ids:
            self._modify_deadline(ack_ids, self._ack_deadline)
        return messages, ack_ids

    def _modify_deadline(self, ack_ids: list[str], seconds: int) -> None:
        subscriber = self._subscriber()
        for start in range(0, len(ack_ids), _ACK_LIMIT):
            subscriber.modify_ack_deadline(
                request={
                    "subscription": self._subscription,
                    "ack_ids": ack_ids[start : start + _ACK_LIMIT],
                    "ack_deadline_seconds": seconds,
                }
            )

    def _renew_leases(self) -> None:
        pending = [ack_id for ids in self._leased.values() for ack_id in ids]
        if not pending:
            return
        try:
            self._modify_deadline(pending, self._ack_deadline)
        except Exception as error:
            # A lapsed lease only means redelivery, which deduplication absorbs.
            logger.warning("could not renew the lease of %d messages: %s", len(pending), error)

    def partitions(self, start: dict, end: dict) -> list[PubSubBatch]:
        first, last = int(start["batch"]) + 1, int(end["batch"])
        return [PubSubBatch(self._batch_uri(n)) for n in range(first, last + 1)]

    def read(self, partition: InputPartition) -> Iterator[tuple[str, datetime, str | None]]:
        assert isinstance(partition, PubSubBatch)
        document = json.loads(objects.read_bytes(partition.uri))
        for data, publish_millis, *message_id in document["messages"]:
            # A batch stored by an earlier version of the reader has no message ids: its
            # malformed records are then told apart by their payloads (events.malformed_id).
            record_id = message_id[0] if message_id else None
            yield data, datetime.fromtimestamp(publish_millis / 1000, tz=UTC), record_id

    def commit(self, end: dict) -> None:
        last = int(end["batch"])
        stored = [
            int(name.removesuffix(".json"))
            for name in objects.list_names(self._batches_uri())
            if name.endswith(".json")
        ]
        for number in sorted(n for n in stored if n <= last):
            ack_ids = self._leased.pop(number, None)
            if ack_ids is None:  # planned before a restart: the ids are in the stored batch
                document = json.loads(objects.read_bytes(self._batch_uri(number)))
                ack_ids = document["ack_ids"]
            self._acknowledge(ack_ids)
            objects.delete(self._batch_uri(number))

    def _acknowledge(self, ack_ids: list[str]) -> None:
        subscriber = self._subscriber()
        for start in range(0, len(ack_ids), _ACK_LIMIT):
            try:
                subscriber.acknowledge(
                    request={
                        "subscription": self._subscription,
                        "ack_ids": ack_ids[start : start + _ACK_LIMIT],
                    }
                )
            except Exception as error:
                # Expired ack ids (e.g. from before a restart) fail; those messages are
                # redelivered and dropped as duplicates, so this is not fatal.
                logger.warning("acknowledging %d messages failed: %s", len(ack_ids), error)

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
