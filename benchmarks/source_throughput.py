"""Events per second through the job's readers, against a plain client loop over the same
broker, in one run: Kinesis on moto's server, Pub/Sub on Google's fake (pstest).

kinesis: one stream of --shards shards, filled once with --events records (JSON events of
         about 130 bytes), read from its start in every round:
           raw     a boto3 GetRecords loop, shard after shard, 10,000 records a call, until a
                   call returns nothing and is not behind;
           reader  the job's reader (format kappa-kinesis, starting position earliest) into
                   Spark's no-op sink, at most --max-records-per-shard records a shard a
                   micro-batch, on a fresh checkpoint.
pubsub:  --pubsub-events messages in a topic and subscription of their own for each run,
         published just before it (pstest slows down with every message it holds):
           raw     a pull loop (1,000 messages a Pull, as the reader) that acknowledges what it
                   pulled, until it has every message;
           reader  the job's reader (format kappa-pubsub) into the no-op sink, at most
                   --max-messages-per-batch messages a micro-batch, on a fresh checkpoint.
A reader's time runs to the end of the last micro-batch that read records (a query then
polls on for more, which a loop that stops at the last record does not), and is given twice:
from the query's start (Spark's planning, the reader's Python process: about a second and a
half, once per query) and from the start of its first micro-batch (the reader's throughput).
Raw and reader take turns for several rounds after a warm-up; the figures are medians.

moto's Kinesis is quadratic in a shard's length on writes (each put lists the shard's
sequence numbers), which would make filling a large stream take minutes; the benchmark's
server takes the last sequence number in constant time instead. Reads are moto's own.

    .venv/bin/python benchmarks/source_throughput.py [--sources kinesis,pubsub]
        [--events 100000] [--shards 4] [--max-records-per-shard 10000]
        [--pubsub-events 50000] [--max-messages-per-batch 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# _setup first: it puts jobs/ on the path and sets the environment Spark's workers inherit.
from _setup import spark_session
from kappa_local.stand_ins import free_port, go_emulator, wait_for_port

REGION = "us-east-1"
STREAM = "bench-events"
PROJECT = "bench"
_GET_RECORDS_LIMIT = 10_000
_PULL_LIMIT = 1_000

# moto's server (as `python -m moto.server`) with Shard.put_record's "list every sequence
# number to find the last" replaced by a look at the last key: same records, same reads.
_MOTO = """
import sys
from moto.kinesis.models import Shard
from moto.server import main

Shard.get_max_sequence_number = lambda self: next(reversed(self.records), 0)
main(sys.argv[1:])
"""


def payload(number: int) -> bytes:
    document = {
        "event_id": f"e{number}",
        "key": f"k{number % 50}",
        "event_time": "2026-11-25T10:00:00.000Z",
        "value": round(number * 0.37 % 100, 3),
        "weight": number % 10,
    }
    return json.dumps(document).encode()


@dataclass
class Figures:
    raw: list[float]
    reader: list[float]  # from the query's start
    steady: list[float]  # from its first micro-batch
    # The raw loop's own CPU seconds (the client library's work, which the readers do too,
    # in the driver's one Python process): what bounds a reader once the broker does not.
    client_cpu: list[float]


@contextmanager
def moto(logs: Path) -> Iterator[str]:
    port = free_port()
    with (logs / "moto.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", _MOTO, "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, "moto's server", timeout=60)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)


def kinesis_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("kinesis", region_name=REGION, endpoint_url=endpoint)


def fill_stream(client: Any, shards: int, events: int) -> None:
    client.create_stream(StreamName=STREAM, ShardCount=shards)
    for start in range(0, events, 500):
        numbers = range(start, min(events, start + 500))
        client.put_records(
            StreamName=STREAM,
            Records=[{"Data": payload(n), "PartitionKey": f"p{n}"} for n in numbers],
        )


def raw_kinesis(client: Any) -> tuple[int, float, float]:
    """Records read, seconds and CPU seconds: GetRecords over every shard, one after the
    other."""
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    for shard in client.list_shards(StreamName=STREAM)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=_GET_RECORDS_LIMIT)
            count += len(page["Records"])
            iterator = page.get("NextShardIterator")
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
    return count, time.perf_counter() - started, time.process_time() - cpu


def through_reader(
    spark: Any, name: str, options: dict[str, str], checkpoint: Path
) -> tuple[int, float, float]:
    """Records a reader delivered into the no-op sink, and the seconds to the end of its last
    micro-batch with records: from the query's start, and from its first micro-batch."""
    started = time.time()
    query = (
        spark.readStream.format(name)
        .options(**options)
        .load()
        .writeStream.format("noop")
        .option("checkpointLocation", str(checkpoint))
        .trigger(processingTime="0 seconds")
        .start()
    )
    return run_until_read(query, started)


def run_until_read(query: Any, started: float) -> tuple[int, float, float]:
    """Runs the query until it has read what its source holds, then stops it: the records
    read, and the seconds to the end of its last micro-batch with records, from `started`
    (epoch seconds, before the query started) and from its first micro-batch."""
    try:
        query.processAllAvailable()
    finally:
        query.stop()
    progress = query.recentProgress
    with_records = [p for p in progress if p.numInputRows]
    if not with_records:
        return 0, 0.0, 0.0
    last = with_records[-1]
    ended = _epoch(last.timestamp) + last.durationMs["triggerExecution"] / 1000
    first = _epoch(progress[0].timestamp)
    return sum(p.numInputRows for p in with_records), ended - started, ended - first


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def kinesis_rounds(spark: Any, args: argparse.Namespace, work: Path, endpoint: str) -> Figures:
    from kappa.sources.kinesis import NAME, KinesisDataSource

    spark.dataSource.register(KinesisDataSource)
    figures = Figures([], [], [], [])
    client = kinesis_client(endpoint)
    began = time.perf_counter()
    fill_stream(client, args.shards, args.events)
    print(
        f"kinesis: {args.events} records in {args.shards} shards on moto "
        f"(filled in {time.perf_counter() - began:.0f} s)",
        flush=True,
    )

    def reader(label: str) -> tuple[int, float, float]:
        options = {
            "stream_name": STREAM,
            "region": REGION,
            "endpoint_url": endpoint,
            "starting_position": "earliest",
            "max_records_per_shard": str(args.max_records_per_shard),
            "state_uri": str(work / "kinesis" / label / "source-state"),
        }
        return through_reader(spark, NAME, options, work / "kinesis" / label / "checkpoint")

    _rounds(args.rounds, args.events, lambda: raw_kinesis(client), reader, figures)
    seconds = driver_cpu_of_the_kinesis_reader(endpoint, args, work)
    print(
        f"kinesis: the reader's own CPU on the driver (planning and hand-over, run without "
        f"Spark): {seconds / args.events * 1e6:.0f} us a record, so one driver reads at most "
        f"{args.events / seconds:,.0f} records/s however fast the broker",
        flush=True,
    )
    return figures


def driver_cpu_of_the_kinesis_reader(endpoint: str, args: argparse.Namespace, work: Path) -> float:
    """CPU seconds the reader spends on the driver for the whole stream: every latestOffset()
    (GetRecords, Arrow encoding, the background read-ahead) and partitions(), as Spark calls
    them, in this process; the executors' part (opening the Arrow stream) is left out."""
    from kappa.sources.kinesis import KinesisStreamReader

    reader = KinesisStreamReader(
        {
            "stream_name": STREAM,
            "region": REGION,
            "endpoint_url": endpoint,
            "starting_position": "earliest",
            "max_records_per_shard": str(args.max_records_per_shard),
            "state_uri": str(work / "kinesis" / "driver-cpu"),
        }
    )
    cpu = time.process_time()
    start = reader.initialOffset()
    while (end := reader.latestOffset()) != start:
        reader.partitions(start, end)
        start = end
    reader.stop()
    return time.process_time() - cpu


def _rounds(
    rounds: int,
    expected: int,
    raw: Callable[[], tuple[int, float, float]],
    reader: Callable[[str], tuple[int, float, float]],
    figures: Figures,
) -> None:
    for label in ["warmup", *(f"round{n}" for n in range(1, rounds + 1))]:
        raw_count, raw_seconds, raw_cpu = raw()
        reader_count, whole, steady = reader(label)
        for what, count in (("raw", raw_count), ("reader", reader_count)):
            if count != expected:
                raise SystemExit(f"{label}: {what} read {count} records, not {expected}")
        print(
            f"  {label}: raw {raw_seconds:.2f} s, reader {whole:.2f} s from the query's start "
            f"(ratio {raw_seconds / whole:.2f}), {steady:.2f} s from its first batch "
            f"(ratio {raw_seconds / steady:.2f})",
            flush=True,
        )
        if label != "warmup":
            figures.client_cpu.append(raw_cpu)
            figures.raw.append(raw_seconds)
            figures.reader.append(whole)
            figures.steady.append(steady)


@contextmanager
def pubsub(work: Path) -> Iterator[str]:
    """Google's Pub/Sub fake; the clients here and in Spark's Python workers (which take the
    environment Spark starts with: start it inside) find it through PUBSUB_EMULATOR_HOST."""
    with go_emulator("pubsub", free_port(), "--pubsub-port", work) as address:
        os.environ["PUBSUB_EMULATOR_HOST"] = address
        try:
            yield address
        finally:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)


def raw_pubsub(subscriber: Any, subscription: str, expected: int) -> tuple[int, float, float]:
    """Messages pulled and acknowledged, seconds and CPU seconds: Pull, then Acknowledge what
    it gave."""
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    while count < expected:
        response = subscriber.pull(
            request={"subscription": subscription, "max_messages": _PULL_LIMIT}, timeout=10
        )
        ack_ids = [m.ack_id for m in response.received_messages]
        if not ack_ids:
            break
        subscriber.acknowledge(request={"subscription": subscription, "ack_ids": ack_ids})
        count += len(ack_ids)
    return count, time.perf_counter() - started, time.process_time() - cpu


def pubsub_rounds(spark: Any, args: argparse.Namespace, work: Path) -> Figures:
    from google.cloud import pubsub_v1
    from kappa.sources.pubsub import NAME, PubSubDataSource

    spark.dataSource.register(PubSubDataSource)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    events = args.pubsub_events
    runs = iter(range(1_000_000))
    figures = Figures([], [], [], [])

    def filled() -> str:
        """A new topic and subscription holding `events` messages: pstest keeps every
        subscription's messages and slows down with all it holds, so each run gets its own,
        filled just before, and the previous one is deleted."""
        number = next(runs)
        topic = f"projects/{PROJECT}/topics/{STREAM}-{number}"
        subscription = f"projects/{PROJECT}/subscriptions/{STREAM}-{number}"
        publisher.create_topic(name=topic)
        subscriber.create_subscription(name=subscription, topic=topic, ack_deadline_seconds=600)
        for start in range(0, events, 1000):
            numbers = range(start, min(events, start + 1000))
            for future in [publisher.publish(topic, payload(n)) for n in numbers]:
                future.result()
        return subscription

    def drop(subscription: str) -> None:
        subscriber.delete_subscription(subscription=subscription)
        publisher.delete_topic(topic=subscription.replace("/subscriptions/", "/topics/"))

    def raw() -> tuple[int, float, float]:
        subscription = filled()
        try:
            return raw_pubsub(subscriber, subscription, events)
        finally:
            drop(subscription)

    def reader(label: str) -> tuple[int, float, float]:
        subscription = filled()
        options = {
            "subscription": subscription,
            "starting_position": "earliest",
            "replay_window_seconds": "0",
            "max_messages_per_batch": str(args.max_messages_per_batch),
            "state_uri": str(work / "pubsub" / label / "source-state"),
        }
        try:
            return through_reader(spark, NAME, options, work / "pubsub" / label / "checkpoint")
        finally:
            drop(subscription)

    print(f"pubsub: {events} messages on pstest, in a topic of their own for each run", flush=True)
    _rounds(args.rounds, events, raw, reader, figures)
    return figures


def report(source: str, events: int, figures: Figures) -> None:
    raw = events / statistics.median(figures.raw)
    print(f"{source}: raw client loop            {raw:10,.0f} events/s")
    for label, seconds in (
        ("reader, from its first batch", figures.steady),
        ("reader, from the query's start", figures.reader),
    ):
        rate = events / statistics.median(seconds)
        print(f"{source}: {label:<31}{rate:10,.0f} events/s, ratio {rate / raw:.2f}")
    print(f"{source}: target ratio >= 0.80")
    cpu = statistics.median(figures.client_cpu) / events
    print(
        f"{source}: the client library's own CPU: {cpu * 1e6:.0f} us a record, so one Python "
        f"process reads at most {1 / cpu:,.0f} records/s however fast the broker"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="The job's readers against a plain client loop")
    parser.add_argument("--sources", default="kinesis,pubsub")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--max-records-per-shard", type=int, default=10_000)
    parser.add_argument("--pubsub-events", type=int, default=50_000)
    parser.add_argument("--max-messages-per-batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sources = [s for s in args.sources.split(",") if s]
    results: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="kappa-source-bench-") as temporary:
        work = Path(temporary)
        with moto(work) as endpoint, pubsub(work):
            spark = spark_session("kappa-source-benchmark")
            try:
                if "kinesis" in sources:
                    results["kinesis"] = kinesis_rounds(spark, args, work, endpoint)
                if "pubsub" in sources:
                    results["pubsub"] = pubsub_rounds(spark, args, work)
            finally:
                spark.stop()
    print(f"local[2]; medians of {args.rounds} rounds")
    for source, figures in results.items():
        report(source, args.pubsub_events if source == "pubsub" else args.events, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
