"""The producer: deterministic synthetic events, their truth, pacing, skewed Kinesis routing,
targets and the live version's event format from a stack's outputs, --duration and --keys,
and sending to the stand-ins (moto's Kinesis and S3, Google's Pub/Sub fake) through the
`produce` command."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kappa.spec import DynamoDbSink, EventFormat, KinesisSource, PipelineSpec, Storage, Windowing
from kappa_local import cli
from kappa_local.producer import (
    EMULATOR_CREDENTIALS,
    KinesisChannel,
    Target,
    live_spec_uri,
    read_stack_outputs,
    send_paced,
    skewed_hash_key,
    target_from_outputs,
)
from kappa_local.stand_ins import free_port, go_emulator, moto_server
from kappa_local.synthetic import (
    REPEATED_BODY,
    Kind,
    Message,
    Mix,
    generate,
    truth_of,
    window_start,
)

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
REGION = "eu-west-1"
# A target for options refused before anything is sent: no broker is ever reached.
UNREACHED_STREAM = ("produce", "--target", "kinesis", "--stream", "s", "--region", REGION)
MIX = Mix(events=1000, keys=5, malformed=0.1, duplicates=0.05, late=0.02, seed=3, rate=50)

# What `pulumi stack output --json` prints for each cloud (names as in infra/outputs.py).
AWS_OUTPUTS = {
    "cloud": "aws",
    "region": "eu-west-1",
    "broker_name": "kappa-dev-events-3f2a1b",
    "broker_id": "arn:aws:kinesis:eu-west-1:123456789012:stream/kappa-dev-events-3f2a1b",
    "serving_table": "kappa-dev-aggregates_v1",
}
GCP_OUTPUTS = {
    "cloud": "gcp",
    "region": "europe-west1",
    "broker_name": "kappa-dev-events",
    "broker_id": "projects/acme-data/topics/kappa-dev-events",
    "serving_table": "aggregates_v1",
}


def test_the_same_seed_gives_the_same_events() -> None:
    assert generate(MIX, START) == generate(MIX, START)
    other = generate(Mix(events=1000, keys=5, malformed=0.1, seed=4), START)
    assert [m.payload for m in other] != [m.payload for m in generate(MIX, START)]


def test_the_shares_are_exact_and_the_truth_aggregates_only_valid_unique_on_time_events() -> None:
    messages = generate(MIX, START)
    kinds = Counter(m.kind for m in messages)
    assert kinds == {Kind.VALID: 830, Kind.MALFORMED: 100, Kind.DUPLICATE: 50, Kind.LATE: 20}
    truth = truth_of(messages, window_seconds=60, value_fields=("value",))
    assert (truth.sent, truth.valid, truth.duplicates, truth.late) == (1000, 830, 50, 20)
    assert len(truth.malformed) == 100
    valid = [m for m in messages if m.kind is Kind.VALID]
    late = [m for m in messages if m.kind is Kind.LATE]
    assert sum(s["value"].count for s in truth.aggregates.values()) == 830
    assert sum(s["value"].total for s in truth.aggregates.values()) == sum(
        m.values[0] for m in valid
    )
    assert truth.on_time_ids == {m.event_id for m in valid}
    # Late events are kept: dead-lettered and archived, only not aggregated.
    assert truth.late_events == tuple(late)
    assert truth.archived_ids == {m.event_id for m in valid + late}


def test_duplicates_repeat_a_valid_event_sent_within_the_last_second() -> None:
    # A producer's retry: the job drops a repeat read within its watermark of the first copy.
    messages = generate(MIX, START)
    for position, message in enumerate(messages):
        if message.kind is Kind.DUPLICATE:
            first = next(i for i, m in enumerate(messages) if m.payload == message.payload)
            assert messages[first].kind is Kind.VALID
            assert 0 < position - first <= MIX.rate * 1.0 + 1


def test_late_events_lie_beyond_the_watermark_and_on_time_ones_follow_the_rate() -> None:
    """Sent from START at the mix's rate, an on-time event reaches the broker within its 2 s
    of jitter of its event time, and a late one more than the watermark after it: the job's
    arrival rule tells them apart whenever they are sent."""
    watermark = 5
    messages = generate(MIX, START, watermark_seconds=watermark)
    start_ms = START.timestamp() * 1000
    horizon = start_ms - watermark * 1000
    late = [m for m in messages if m.kind is Kind.LATE]
    assert late
    assert all(m.event_time_ms < horizon - 60_000 for m in late)
    for position, message in enumerate(messages):
        if message.kind is Kind.VALID:
            scheduled = start_ms + position * 1000 / MIX.rate  # when send_paced sends it
            assert 0 <= scheduled - message.event_time_ms < 2_000


def test_malformed_payloads_are_unique_but_the_repeated_body_and_never_valid_events() -> None:
    malformed = [m for m in generate(MIX, START) if m.kind is Kind.MALFORMED]
    repeated = [m for m in malformed if m.malformed_kind == "repeated_body"]
    unique = [m for m in malformed if m.malformed_kind != "repeated_body"]
    # One broken body sent many times: distinct records with the same bytes.
    assert len(repeated) > 1
    assert {m.payload for m in repeated} == {REPEATED_BODY}
    assert len({m.payload for m in unique}) == len(unique)
    for message in malformed:
        try:
            document = json.loads(message.payload)
        except json.JSONDecodeError:
            continue
        valid = (
            isinstance(document, dict)
            and isinstance(document.get("value"), int)
            and str(document.get("event_time", "")).endswith("Z")
        )
        assert not valid, message


def test_window_start_is_the_jobs_iso_utc_minute() -> None:
    moment = int(datetime(2026, 11, 25, 10, 5, 59, 999_000, tzinfo=UTC).timestamp() * 1000)
    assert window_start(moment, 60) == "2026-11-25T10:05:00Z"
    assert window_start(moment, 300) == "2026-11-25T10:05:00Z"


class _Recorder:
    description = "a list"

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, messages: Sequence[Message]) -> None:
        self.sent.extend(messages)

    def close(self) -> None:
        pass


def test_every_event_is_sent_in_its_turn_late_ones_too() -> None:
    # Nothing is held back for the job: a late event is late by its own times.
    messages = generate(Mix(events=200, late=0.1, seed=5, rate=0), START)
    channel = _Recorder()
    sent = send_paced(messages, channel, rate=0)
    assert sent == channel.sent == messages


@pytest.mark.parametrize("share", [0.9, 0.5, 0.1])
def test_skewed_routing_puts_that_share_of_the_keys_on_the_first_of_two_shards(
    share: float,
) -> None:
    half = 2**127
    keys = [f"key-{n}" for n in range(4000)]
    hashes = [int(skewed_hash_key(k, share)) for k in keys]
    assert all(0 <= h < 2 * half for h in hashes)
    on_first = sum(h < half for h in hashes) / len(keys)
    assert abs(on_first - share) < 0.03
    # A partition key always maps to the same hash key: its records stay on one shard.
    assert [skewed_hash_key(k, share) for k in keys[:50]] == [str(h) for h in hashes[:50]]


def test_a_skewed_channel_puts_most_records_on_one_shard(moto: str) -> None:
    stream = "kappa-skewed"
    kinesis = _client("kinesis", moto)
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream)
    messages = generate(Mix(events=400, keys=10, malformed=0.1, seed=42, rate=0), START)
    channel = KinesisChannel(stream, REGION, moto, EMULATOR_CREDENTIALS, hot_share=0.9)
    channel.send(messages)
    channel.close()
    counts = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        counts.append(len(kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]))
    assert sum(counts) == 400
    assert 0.85 <= counts[0] / 400 <= 0.95, counts


def test_sending_is_paced_at_the_rate() -> None:
    messages = generate(Mix(events=60, seed=5, rate=100), START)
    began = time.monotonic()
    send_paced(messages, _Recorder(), rate=100)
    assert 0.5 <= time.monotonic() - began < 2.0


def test_a_blocking_hook_pauses_the_stream_instead_of_bunching_it_up() -> None:
    # A fault injected mid-stream (a kill, then a restart) must still see the rest of the
    # stream arrive at the rate afterwards, not all of it at once.
    messages = generate(Mix(events=60, seed=5, rate=100), START)
    chunks: list[int] = []

    class _Chunks(_Recorder):
        def send(self, messages: Sequence[Message]) -> None:
            chunks.append(len(messages))
            super().send(messages)

    paused: list[bool] = []

    def hook(sent: list[Message]) -> None:
        if len(chunks) == 1 and not paused:  # one pause of a second, after the first chunk
            paused.append(True)
            time.sleep(1.0)

    began = time.monotonic()
    send_paced(messages, _Chunks(), rate=100, after_slice=hook)
    # 0.2 s slices at 100/s carry about 20 events; a catch-up burst would carry all the rest.
    assert max(chunks[1:]) <= 25, chunks
    assert time.monotonic() - began >= 1.5


def test_the_stack_outputs_name_the_broker_on_either_cloud() -> None:
    assert target_from_outputs(AWS_OUTPUTS) == Target(
        "kinesis", "kappa-dev-events-3f2a1b", "eu-west-1"
    )
    assert target_from_outputs(GCP_OUTPUTS) == Target(
        "pubsub", "projects/acme-data/topics/kappa-dev-events", "europe-west1"
    )


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({"cloud": "aws", "region": "eu-west-1"}, "lack broker_name"),
        ({**GCP_OUTPUTS, "broker_id": "kappa-dev-events"}, "not a topic path"),
        ({**AWS_OUTPUTS, "cloud": "azure"}, "pass --target"),
    ],
)
def test_incomplete_stack_outputs_are_refused(outputs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        target_from_outputs(outputs)


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `pulumi` on PATH that prints canned stack outputs and records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(
        f'#!/bin/sh\necho "$@" > {tmp_path}/pulumi-args\ncat {tmp_path}/outputs.json\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def test_stack_outputs_are_read_with_the_pulumi_cli(fake_pulumi: Path) -> None:
    (fake_pulumi / "outputs.json").write_text(json.dumps(GCP_OUTPUTS))
    assert read_stack_outputs("gcp-dev", str(fake_pulumi)) == GCP_OUTPUTS
    assert (fake_pulumi / "pulumi-args").read_text().split() == [
        "stack",
        "output",
        "--json",
        "--stack",
        "gcp-dev",
    ]


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server (Kinesis, S3), shared by the tests that send to a stream of their own."""
    with moto_server(free_port(), tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.fixture
def moto_env(moto: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3 (and so kappa.objects, which reads the spec) pointed at moto, as on a laptop."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", EMULATOR_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", EMULATOR_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return moto


def _client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION, endpoint_url=endpoint, **EMULATOR_CREDENTIALS)


def _new_stream(endpoint: str, name: str) -> str:
    kinesis = _client("kinesis", endpoint)
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name)
    return name


def _records(endpoint: str, stream: str) -> list[bytes]:
    kinesis = _client("kinesis", endpoint)
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return [r["Data"] for r in kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]]


def _produce(endpoint: str, stream: str, *options: str) -> int:
    return cli.main(
        [
            "produce",
            *("--target", "kinesis", "--stream", stream, "--region", REGION),
            *("--endpoint", endpoint),
            *options,
        ]
    )


def test_produce_sends_to_the_stacks_kinesis_stream(
    fake_pulumi: Path, moto: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fake_pulumi / "outputs.json").write_text(json.dumps(AWS_OUTPUTS))
    stream = _new_stream(moto, AWS_OUTPUTS["broker_name"])
    code = cli.main(
        [
            *("produce", "--stack", "aws-dev", "--endpoint", moto),
            *("--events", "120", "--rate", "0", "--seed", "9"),
            *("--truth", str(tmp_path / "truth.json")),
        ]
    )
    records = _records(moto, stream)
    assert code == 0
    # The same seed gives the same events (ids, keys, kinds); only their times follow the clock.
    expected = generate(
        Mix(events=120, seed=9, malformed=0.02, duplicates=0.05, late=0.01, rate=0), START
    )
    assert Counter(_event_id(r) for r in records) == Counter(
        _event_id(m.payload.encode()) for m in expected
    )
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert (truth["sent"], truth["valid"], truth["duplicates"], truth["late"]) == (120, 111, 6, 1)
    assert truth["malformed"] == 2
    assert sum(row["value_count"] for row in truth["aggregates"]) == 111
    assert "sent 120 events" in capsys.readouterr().out


# A stack that renamed every event field and widened the window (eventIdField etc. in its
# config): events in the job's default format would all be dead-lettered there.
CUSTOM = EventFormat(
    id_field="uuid", key_field="device", time_field="ts", value_fields=("temp", "hum")
)


CUSTOM_FIELDS = {CUSTOM.id_field, CUSTOM.key_field, CUSTOM.time_field, *CUSTOM.value_fields}


def _spec(version: str, event: EventFormat, window_seconds: int = 60) -> PipelineSpec:
    return PipelineSpec(
        pipeline_version=version,
        source=KinesisSource(stream_name="events", region=REGION),
        event=event,
        windowing=Windowing(window_seconds=window_seconds),
        storage=Storage(archive_uri="s3://a", dead_letter_uri="s3://d", checkpoint_uri="s3://c"),
        sink=DynamoDbSink(table="aggregates", region=REGION),
    )


def _documents(records: list[bytes]) -> list[dict[str, Any]]:
    """The well-formed JSON objects among the records (malformed ones are left out)."""
    parsed = []
    for data in records:
        with contextlib.suppress(json.JSONDecodeError):
            document = json.loads(data)
            if isinstance(document, dict):
                parsed.append(document)
    return parsed


def test_produce_sends_events_in_the_format_of_the_stacks_live_version(
    fake_pulumi: Path, moto_env: str, tmp_path: Path
) -> None:
    s3 = _client("s3", moto_env)
    s3.create_bucket(
        Bucket="kappa-dev-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    uris = {}
    for version, spec in (("v1", _spec("v1", EventFormat())), ("v2", _spec("v2", CUSTOM, 300))):
        key = f"specs/{version}/spec.json"
        s3.put_object(Bucket="kappa-dev-artifacts", Key=key, Body=spec.to_json().encode())
        uris[version] = f"s3://kappa-dev-artifacts/{key}"
    stream = _new_stream(moto_env, "kappa-dev-events-live")
    outputs = {
        **AWS_OUTPUTS,
        "broker_name": stream,
        "job_specs": uris,
        "serving_tables": {"v1": "aggregates_v1", "v2": "aggregates_v2"},
        "serving_table": "aggregates_v2",
    }
    (fake_pulumi / "outputs.json").write_text(json.dumps(outputs))
    code = cli.main(
        [
            *("produce", "--stack", "aws-dev", "--endpoint", moto_env),
            *("--events", "100", "--rate", "0", "--malformed", "0.1", "--late", "0"),
            *("--truth", str(tmp_path / "truth.json")),
        ]
    )
    assert code == 0
    documents = _documents(_records(moto_env, stream))
    # Every JSON object sent is in the live version's format; the well-formed ones (valid and
    # duplicates: 90 of 100) are events its job accepts.
    assert all(set(d) <= CUSTOM_FIELDS for d in documents)
    accepted = [
        d
        for d in documents
        if set(d) == CUSTOM_FIELDS
        and d["ts"].endswith("Z")
        and all(isinstance(d[f], int) for f in CUSTOM.value_fields)
    ]
    assert len(accepted) == 90
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert sum(row["temp_count"] for row in truth["aggregates"]) == truth["valid"]
    assert sum(row["hum_count"] for row in truth["aggregates"]) == truth["valid"]
    # The live version's 5-minute windows, not the default minute.
    assert {row["window_start"][14:16] for row in truth["aggregates"]} <= {
        f"{m:02d}" for m in range(0, 60, 5)
    }


def test_field_flags_override_the_specs_format(moto: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(_spec("v2", CUSTOM, 300).to_json())
    stream = _new_stream(moto, "kappa-override")
    code = _produce(
        moto,
        stream,
        *("--spec", str(spec), "--value-fields", "speed", "--window", "60"),
        *("--events", "50", "--rate", "0", "--malformed", "0"),
        *("--truth", str(tmp_path / "truth.json")),
    )
    assert code == 0
    documents = _documents(_records(moto, stream))
    assert len(documents) == 50
    assert all(set(d) == {"uuid", "device", "ts", "speed"} for d in documents)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert {row["window_start"][17:] for row in truth["aggregates"]} == {"00Z"}
    assert "speed_sum" in truth["aggregates"][0]


def test_an_unreadable_spec_is_named_with_the_way_round_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-spec.json"
    code = cli.main([*UNREACHED_STREAM, "--spec", str(missing)])
    assert code == 2
    error = capsys.readouterr().err
    assert str(missing) in error
    assert "--no-spec" in error


SPECS = {"v1": "s3://artifacts/specs/v1/spec.json", "v2": "s3://artifacts/specs/v2/spec.json"}
TABLES = {"v1": "aggregates_v1", "v2": "aggregates_v2"}


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        (AWS_OUTPUTS, None),
        ({**AWS_OUTPUTS, "job_specs": {"v1": SPECS["v1"]}}, SPECS["v1"]),
        (
            {
                **AWS_OUTPUTS,
                "job_specs": SPECS,
                "serving_tables": TABLES,
                "serving_table": TABLES["v2"],
            },
            SPECS["v2"],
        ),
        (
            {
                **AWS_OUTPUTS,
                "job_specs": SPECS,
                "serving_tables": TABLES,
                "serving_table": TABLES["v1"],
            },
            SPECS["v1"],
        ),
    ],
    ids=["no-specs", "one-version", "v2-live", "v1-live"],
)
def test_the_live_versions_spec_is_the_one_readers_are_switched_to(
    outputs: dict[str, Any], expected: str | None
) -> None:
    assert live_spec_uri(outputs) == expected


def test_a_live_version_that_cannot_be_told_is_refused() -> None:
    outputs = {**AWS_OUTPUTS, "job_specs": SPECS, "serving_tables": TABLES, "serving_table": "x"}
    with pytest.raises(ValueError, match="pass --spec"):
        live_spec_uri(outputs)


def test_duration_sends_rate_times_seconds_of_events_over_that_time(
    moto: str, tmp_path: Path
) -> None:
    stream = _new_stream(moto, "kappa-duration")
    began = time.monotonic()
    code = _produce(
        moto,
        stream,
        *("--duration", "1.5", "--rate", "40", "--truth", str(tmp_path / "truth.json")),
    )
    elapsed = time.monotonic() - began
    assert code == 0
    assert len(_records(moto, stream)) == 60
    assert json.loads((tmp_path / "truth.json").read_text())["sent"] == 60
    assert 1.2 <= elapsed < 6.0, elapsed


def test_duration_needs_a_rate(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main([*UNREACHED_STREAM, "--duration", "2", "--rate", "0"])
    assert code == 2
    assert "--duration needs a --rate above 0" in capsys.readouterr().err


def test_keys_spreads_the_events_over_that_many_keys(moto: str, tmp_path: Path) -> None:
    stream = _new_stream(moto, "kappa-keys")
    code = _produce(
        moto,
        stream,
        *("--keys", "3", "--events", "300", "--rate", "0"),
        *("--truth", str(tmp_path / "truth.json")),
    )
    assert code == 0
    keys = {d.get("key") for d in _documents(_records(moto, stream))}
    assert keys - {None} == {"k000", "k001", "k002"}
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert {row["key"] for row in truth["aggregates"]} == {"k000", "k001", "k002"}


def test_fewer_than_one_key_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main([*UNREACHED_STREAM, "--keys", "0"])
    assert code == 2
    assert "keys must be at least 1" in capsys.readouterr().err


def _event_id(data: bytes) -> str | None:
    try:
        document = json.loads(data)
    except json.JSONDecodeError:
        return None
    return document.get("event_id") if isinstance(document, dict) else "(not an object)"


def test_produce_publishes_to_a_pubsub_topic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.cloud import pubsub_v1

    before = os.environ.get("PUBSUB_EMULATOR_HOST")
    with go_emulator("pubsub", free_port(), "--pubsub-port", tmp_path / "logs") as host:
        with monkeypatch.context() as patched:
            patched.setenv("PUBSUB_EMULATOR_HOST", host)
            publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        topic = "projects/kappa-test/topics/events"
        subscription = "projects/kappa-test/subscriptions/all"
        publisher.create_topic(name=topic)
        subscriber.create_subscription(name=subscription, topic=topic)
        code = cli.main(
            [
                "produce",
                "--target",
                "pubsub",
                "--topic",
                "events",
                "--project",
                "kappa-test",
                "--endpoint",
                host,
                "--events",
                "80",
                "--rate",
                "0",
                "--malformed",
                "0.1",
            ]
        )
        received: list[bytes] = []
        while len(received) < 80:
            response = subscriber.pull(
                request={"subscription": subscription, "max_messages": 100}, timeout=10
            )
            if not response.received_messages:
                break
            received += [m.message.data for m in response.received_messages]
            subscriber.acknowledge(
                request={
                    "subscription": subscription,
                    "ack_ids": [m.ack_id for m in response.received_messages],
                }
            )
        subscriber.close()
    assert code == 0
    assert os.environ.get("PUBSUB_EMULATOR_HOST") == before, "produce must not change it"
    assert len(received) == 80
    assert sum(1 for data in received if not _is_event(data)) == 8


def _is_event(data: bytes) -> bool:
    try:
        document = json.loads(data)
    except json.JSONDecodeError:
        return False
    return (
        isinstance(document, dict)
        and {"event_id", "key", "event_time", "value"} <= set(document)
        and isinstance(document["value"], int)
        and document["event_time"] != "not-a-time"
    )
