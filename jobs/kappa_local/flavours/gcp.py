"""gcp: Google's Pub/Sub fake and Bigtable emulator; storage is the local filesystem.

Google publishes no GCS emulator. fake-gcs-server (jobs/emulators/gcs) serves the JSON API that
google-cloud-storage speaks, and tests/jobs/test_objects_gcs.py runs the job's own gs://
objects against it; but Spark would reach it only through the GCS Hadoop connector, which
pyspark lacks (Maven Central has it unshaded: gcsio, Guava and Google's Java clients would
have to fit beside Spark's own), and writes through that connector to the fake are a
reported, open problem (fsouza/fake-gcs-server#1882). Spark writes through Hadoop's FileSystem
interface either way, so the lake stays on local files; see docs/local.md, "GCS stand-in".
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from kappa.spec import (
    SERVING_KEY_ATTRIBUTE,
    SERVING_WINDOW_ATTRIBUTE,
    BigtableSink,
    PubSubSource,
    Storage,
)

from ..producer import Channel, PubSubChannel
from ..stand_ins import go_emulator
from .base import NAME, Flavour, Settings

PROJECT = "kappa-local"


class GcpFlavour(Flavour):
    name = "gcp"
    stand_ins = "Google's Pub/Sub fake (pstest) and Bigtable emulator; local files for GCS"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.topic = f"projects/{PROJECT}/topics/{NAME}-events"
        self.subscription = f"projects/{PROJECT}/subscriptions/{NAME}-{settings.version}"
        self.lake = settings.workdir / "lake"
        self.pubsub_host = f"127.0.0.1:{settings.ports.pubsub}"
        self.bigtable_host = f"127.0.0.1:{settings.ports.bigtable}"

    def start(self, stack: ExitStack) -> None:
        # The client says so on every connection; that is the point here.
        warnings.filterwarnings("ignore", "Connecting to Bigtable emulator", RuntimeWarning)
        ports = self.settings.ports
        stack.enter_context(go_emulator("pubsub", ports.pubsub, "--pubsub-port", self.logs))
        stack.enter_context(go_emulator("bigtable", ports.bigtable, "--bigtable-port", self.logs))
        # The Google client libraries find emulators through these variables only.
        stack.enter_context(_environment(self._emulator_env()))

    def _emulator_env(self) -> dict[str, str]:
        return {
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "BIGTABLE_EMULATOR_HOST": self.bigtable_host,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
        }

    def provision_shared(self) -> None:
        from google.cloud import pubsub_v1

        pubsub_v1.PublisherClient().create_topic(name=self.topic)
        for role in ("archive", "dead-letters", "checkpoints", "artifacts"):
            (self.lake / role).mkdir(parents=True, exist_ok=True)

    def provision_version(self) -> None:
        """The version's subscription and table. A replay's subscription (sibling) is made
        beside the first version's before any event is published, and so holds the whole log:
        in the cloud, a new version's subscription is made when it is deployed and seeks back
        over the topic's retention (PubSubSource.replay_window_seconds), but Google's fake
        cannot seek back: pstest's Seek puts the messages back without their data (fake.go,
        "This was not preserved!"), and the fake then dies of a nil pointer dereference in
        its delivery loop."""
        from google.cloud import bigtable, pubsub_v1
        from google.cloud.bigtable import column_family

        subscriber = pubsub_v1.SubscriberClient()
        with subscriber:
            subscriber.create_subscription(
                name=self.subscription,
                topic=self.topic,
                ack_deadline_seconds=self._source().ack_deadline_seconds,
            )
        sink = self._sink()
        table = (
            bigtable.Client(project=PROJECT, admin=True)
            .instance(sink.instance)
            .table(self.spec().serving_table)
        )
        # As infra/gcp/serving.py declares it: one family, only the latest cell kept.
        table.create(column_families={sink.column_family: column_family.MaxVersionsGCRule(1)})

    def _source(self) -> PubSubSource:
        # Leases are renewed every trigger; 60 s (not the cluster's longer deadline) means that
        # messages pulled by a killed job come back within a minute, not ten. No replay window:
        # the subscription is made before the first event is published, so it holds the whole
        # log, and Google's fake cannot seek back over messages (provision_version).
        source = PubSubSource(
            subscription=self.subscription, ack_deadline_seconds=60, replay_window_seconds=0
        )
        limit = self.settings.batch_limit
        if limit is None:
            return source
        return PubSubSource.model_validate({**source.model_dump(), "max_messages_per_batch": limit})

    def _sink(self) -> BigtableSink:
        return BigtableSink(project=PROJECT, instance=NAME, table="aggregates")

    def _storage(self) -> Storage:
        return Storage(
            archive_uri=str(self.lake / "archive"),
            dead_letter_uri=str(self.lake / "dead-letters"),
            checkpoint_uri=str(self.lake / "checkpoints"),
        )

    @property
    def spec_uri(self) -> str:
        return str(self.lake / "artifacts" / "specs" / self.settings.version / "spec.json")

    def job_env(self) -> dict[str, str]:
        return self._emulator_env()

    def ports_used(self) -> tuple[int, ...]:
        return (self.settings.ports.pubsub, self.settings.ports.bigtable)

    def channel(self) -> Channel:
        return PubSubChannel(self.topic, self.pubsub_host)

    def serving_rows(self) -> list[dict[str, Any]]:
        from google.cloud import bigtable

        sink = self._sink()
        table = (
            bigtable.Client(project=PROJECT, admin=True)
            .instance(sink.instance)
            .table(self.spec().serving_table)
        )
        rows = []
        for row in table.read_rows():
            values: dict[str, Any] = {}
            for column, cells in row.cells.get(sink.column_family, {}).items():
                name, text = column.decode("utf-8"), cells[0].value.decode("utf-8")
                if name in (SERVING_KEY_ATTRIBUTE, SERVING_WINDOW_ATTRIBUTE):
                    values[name] = text
                else:
                    number = float(text)
                    values[name] = int(number) if number.is_integer() else number
            rows.append(values)
        return rows


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
