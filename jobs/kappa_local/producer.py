"""Sending synthetic events to Kinesis or Pub/Sub, paced, local or in a real cloud.

A target is either named explicitly (stream and region / topic and project, optionally an
endpoint: moto's URL or the Pub/Sub fake's host:port) or read from a Pulumi stack's outputs
(`broker_name`, `broker_id`, `region`, `cloud`: the same names on both clouds, see
infra/outputs.py). Real clouds use the SDKs' usual credentials (boto3's chain, Google's
application default credentials).

The events follow the format of the pipeline spec the job reads: a stack's live version's
(`job_specs`, picked by `serving_table`), or one named by URI. A stack may rename the id,
key, time and value fields; events in another format would all be dead-lettered.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from kappa.spec import PipelineSpec

from .synthetic import Message

# PutRecords takes at most 500 records (and 5 MiB) per call.
_KINESIS_BATCH = 500
_MAX_ATTEMPTS = 8
EMULATOR_CREDENTIALS = {"aws_access_key_id": "kappa-local", "aws_secret_access_key": "kappa-local"}
# The pacer sends a slice of the stream this often.
_SLICE_SECONDS = 0.2
# Kinesis hash keys are 128-bit: MD5 of the partition key, or an explicit hash key.
_HASH_KEYS = 2**128


class ProduceError(RuntimeError):
    """Events could not be sent; the message says where and why."""


class Channel(Protocol):
    description: str

    def send(self, messages: Sequence[Message]) -> None: ...

    def close(self) -> None: ...


def skewed_hash_key(partition_key: str, hot_share: float) -> str:
    """An explicit hash key that sends `hot_share` of the partition keys to the lower half of
    the hash key range (the first of two evenly split shards) and the rest to the upper half.

    The partition key's MD5 (Kinesis' own mapping) as a point u in [0, 1), stretched: [0,
    hot_share) onto the lower half, [hot_share, 1) onto the upper one. A partition key always
    maps to the same hash key, so its records (a retry's too) stay on one shard, in order.
    """
    digest = hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False)
    point = int(digest.hexdigest(), 16)
    half = _HASH_KEYS // 2
    border = round(hot_share * _HASH_KEYS)
    if point < border:
        return str(point * half // border)
    return str(half + (point - border) * half // (_HASH_KEYS - border))


class KinesisChannel:
    def __init__(
        self,
        stream: str,
        region: str,
        endpoint_url: str | None = None,
        credentials: Mapping[str, str] | None = None,
        hot_share: float | None = None,
    ) -> None:
        """`hot_share`: route that share of the partition keys to the first of two evenly
        split shards (skewed_hash_key); None leaves the routing to Kinesis (MD5)."""
        import boto3
        from botocore.config import Config

        self.stream = stream
        self._hot_share = hot_share
        where = f" at {endpoint_url}" if endpoint_url else ""
        skew = f", {hot_share:.0%} of the keys on one shard" if hot_share is not None else ""
        self.description = f"Kinesis stream {stream} ({region}{where}{skew})"
        self._client = boto3.client(
            "kinesis",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": _MAX_ATTEMPTS}),
            # None: boto3's usual chain (a real cloud); an emulator takes any key pair.
            **dict(credentials or {}),
        )

    def send(self, messages: Sequence[Message]) -> None:
        for start in range(0, len(messages), _KINESIS_BATCH):
            self._put(messages[start : start + _KINESIS_BATCH])

    def _put(self, messages: Sequence[Message]) -> None:
        pending = list(messages)
        for attempt in range(_MAX_ATTEMPTS):
            response = self._client.put_records(
                StreamName=self.stream, Records=[self._record(m) for m in pending]
            )
            if not response.get("FailedRecordCount"):
                return
            # Only the failed records are sent again (throttled shards): a blanket retry would
            # duplicate the ones that went through.
            pending = [
                m
                for m, result in zip(pending, response["Records"], strict=True)
                if result.get("ErrorCode")
            ]
            time.sleep(min(5.0, 0.1 * 2**attempt))
        raise ProduceError(
            f"{self.description}: {len(pending)} records still failing after {_MAX_ATTEMPTS} "
            "attempts (throttled? raise the shard count or lower --rate)"
        )

    def _record(self, message: Message) -> dict[str, Any]:
        record: dict[str, Any] = {
            "Data": message.payload.encode("utf-8"),
            "PartitionKey": message.partition_key,
        }
        if self._hot_share is not None:
            record["ExplicitHashKey"] = skewed_hash_key(message.partition_key, self._hot_share)
        return record

    def close(self) -> None:
        self._client.close()


class PubSubChannel:
    def __init__(self, topic: str, emulator_host: str | None = None) -> None:
        from google.cloud import pubsub_v1

        self.topic = topic
        where = f" at {emulator_host}" if emulator_host else ""
        self.description = f"Pub/Sub topic {topic}{where}"
        # The client library finds an emulator only through this variable, read once when the
        # client is made; it is set just for that, so nothing else in the process follows it.
        with _variable("PUBSUB_EMULATOR_HOST", emulator_host):
            self._client = pubsub_v1.PublisherClient()

    def send(self, messages: Sequence[Message]) -> None:
        futures = [self._client.publish(self.topic, m.payload.encode("utf-8")) for m in messages]
        for future in futures:
            future.result(timeout=60)

    def close(self) -> None:
        self._client.stop()


@contextmanager
def _variable(name: str, value: str | None) -> Iterator[None]:
    if value is None:
        yield
        return
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


@dataclass(frozen=True)
class Target:
    kind: Literal["kinesis", "pubsub"]
    name: str  # stream name, or topic path projects/<project>/topics/<topic>
    region: str = ""
    endpoint: str | None = None

    def open(self) -> Channel:
        if self.kind == "kinesis":
            # An emulator takes any key pair; a real cloud uses boto3's usual chain.
            credentials = EMULATOR_CREDENTIALS if self.endpoint else None
            return KinesisChannel(self.name, self.region, self.endpoint, credentials)
        return PubSubChannel(self.name, self.endpoint)


def topic_path(topic: str, project: str | None) -> str:
    if topic.startswith("projects/"):
        return topic
    if not project:
        raise ValueError(f"topic {topic!r} needs --project (or give projects/<p>/topics/<t>)")
    return f"projects/{project}/topics/{topic}"


def target_from_outputs(outputs: Mapping[str, Any], kind: str | None = None) -> Target:
    """The broker a stack exported: a Kinesis stream on AWS, a Pub/Sub topic on GCP."""
    missing = [k for k in ("broker_name", "region") if not outputs.get(k)]
    if missing:
        raise ValueError(f"the stack outputs lack {', '.join(missing)}: was `pulumi up` run?")
    cloud = outputs.get("cloud")
    if kind is None:
        if cloud not in ("aws", "gcp"):
            raise ValueError(f"the stack's cloud output is {cloud!r}; pass --target")
        kind = "kinesis" if cloud == "aws" else "pubsub"
    if kind == "kinesis":
        return Target("kinesis", str(outputs["broker_name"]), str(outputs["region"]))
    if kind != "pubsub":
        raise ValueError(f"unknown target {kind!r}: kinesis or pubsub")
    # broker_id is the topic's full path on GCP; broker_name alone lacks the project.
    broker_id = str(outputs.get("broker_id") or "")
    if not broker_id.startswith("projects/"):
        raise ValueError(f"broker_id {broker_id!r} is not a topic path projects/<p>/topics/<t>")
    return Target("pubsub", broker_id, str(outputs["region"]))


def live_spec_uri(outputs: Mapping[str, Any]) -> str | None:
    """The spec URI of the version readers are switched to, or None if the stack exports no
    `job_specs` (version -> URI). The live version is the one whose table is `serving_table`
    in `serving_tables` (version -> table)."""
    specs = outputs.get("job_specs") or {}
    if not specs:
        return None
    if len(specs) == 1:
        return str(next(iter(specs.values())))
    live = outputs.get("serving_table")
    tables = outputs.get("serving_tables") or {}
    versions = [v for v in specs if live is not None and tables.get(v) == live]
    if len(versions) != 1:
        raise ValueError(
            f"cannot tell which of the versions {sorted(specs)} is live (serving_table "
            f"{live!r} is not the table of exactly one of them): pass --spec"
        )
    return str(specs[versions[0]])


def read_spec(uri: str) -> PipelineSpec:
    """The pipeline spec at an s3://, gs:// or local URI, as the job itself reads it."""
    from kappa.cli import load_spec
    from kappa.objects import ObjectStoreError
    from kappa.spec import SpecError

    try:
        return load_spec(uri)
    except (ObjectStoreError, SpecError) as error:
        raise ProduceError(
            f"cannot take the event format from the pipeline spec {uri}: {error}\n"
            "(check credentials for the bucket, or pass --no-spec and name the fields with "
            "--id-field, --key-field, --time-field and --value-fields)"
        ) from None


def read_stack_outputs(stack: str, cwd: str | None = None) -> dict[str, Any]:
    """`pulumi stack output --json` of a stack (run where Pulumi.yaml is)."""
    command = ["pulumi", "stack", "output", "--json", "--stack", stack]
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ProduceError("the pulumi CLI is not on PATH; install it or name the target") from None
    if done.returncode != 0:
        raise ProduceError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def send_paced(
    messages: Sequence[Message],
    channel: Channel,
    *,
    rate: float,
    after_slice: Callable[[list[Message]], None] | None = None,
) -> list[Message]:
    """Send at `rate` messages per second (0: as fast as the channel takes them), in order.

    Every message is sent when its turn comes, late events too: they are late by their own
    times (synthetic.generate), whenever the job reads them. `after_slice(sent)` runs after
    every slice (progress, fault injection); it may block, which pauses the stream: the
    schedule resumes where it stopped rather than catching up in one burst, so a fault
    injected at a point of the stream still has the rest of the stream arriving after it at
    the rate. (A pause puts the rest of the stream behind its event times by as much: longer
    than the watermark, and on-time events would reach the broker late.) Returns the messages
    in the order they were sent.
    """
    sent: list[Message] = []
    started = time.monotonic()
    position = 0
    while position < len(messages):
        slice_started = time.monotonic()
        due = int((slice_started - started) * rate) + 1 if rate > 0 else position + _KINESIS_BATCH
        upto = min(len(messages), max(due, position))
        chunk, position = list(messages[position:upto]), upto
        if chunk:
            channel.send(chunk)
            sent.extend(chunk)
        if after_slice is not None:
            hook_started = time.monotonic()
            after_slice(sent)
            started += time.monotonic() - hook_started
        if rate > 0 and position < len(messages):
            time.sleep(max(0.0, _SLICE_SECONDS - (time.monotonic() - slice_started)))
    return sent
