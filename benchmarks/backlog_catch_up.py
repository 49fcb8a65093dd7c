"""Events per second while the whole job catches up on a Kinesis backlog with one hot shard.

A 2-shard stream on moto's server is filled before the job starts with --events events whose
event times span the past hour (in order, about 130 bytes each), 90% of them on one shard
(a hot partition key range) and the rest on the other, as after an outage. The job then
reads it from `earliest` with its own Kinesis reader (--max-records-per-shard a shard a
micro-batch, so the sparse shard runs far ahead in event time of the hot one) and writes
everything: dead letters, the Parquet archive, aggregates merged into the serving store
(a throwaway PostgreSQL when its binaries are present, else DynamoDB on moto). The
watermark is two hours, so every event is on time by the job's rule (it reached the broker
within the watermark of its event time).

Printed: events/s from the query's start and from its first micro-batch to the end of the
last one with records, and what the job accounted for: on time, late, malformed, rows
Spark dropped by its watermark (must be 0), and the serving store's total count against
the events sent.

    .venv/bin/python benchmarks/backlog_catch_up.py [--events 100000]
        [--max-records-per-shard 5000] [--hot-share 0.9]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# _setup first: it puts jobs/ on the path and sets the environment Spark's workers inherit.
import _setup
import job_throughput
import source_throughput
from kappa import pipeline
from kappa.spec import (
    EventFormat,
    KinesisSource,
    PipelineSpec,
    PostgresSink,
    Storage,
    Windowing,
)

STREAM = "bench-backlog"
# Kinesis splits the 128-bit hash key space evenly: shard 0 takes the lower half.
_HALF = 2**127


def fill_skewed(client: Any, events: int, hot_share: float) -> datetime:
    """The backlog: event n at now - 1 h + n/events h, on the hot shard unless its number
    falls in the sparse share. Returns the first event's time."""
    client.create_stream(StreamName=STREAM, ShardCount=2)
    client.get_waiter("stream_exists").wait(StreamName=STREAM)
    start = datetime.now(UTC) - timedelta(hours=1)
    sparse_every = max(2, round(1 / (1 - hot_share)))
    for first in range(0, events, 500):
        records = []
        for number in range(first, min(events, first + 500)):
            moment = start + timedelta(seconds=3600 * number / events)
            document = source_throughput.payload(number).replace(
                b"2026-11-25T10:00:00.000Z", moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
            )
            hash_key = _HALF + number if number % sparse_every == 0 else number
            records.append(
                {"Data": document, "PartitionKey": "p", "ExplicitHashKey": str(hash_key)}
            )
        client.put_records(StreamName=STREAM, Records=records)
    return start


def per_shard(client: Any) -> list[int]:
    counts = []
    for shard in client.list_shards(StreamName=STREAM)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        count = 0
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            count += len(page["Records"])
            iterator = page.get("NextShardIterator")
            if not page["Records"]:
                break
        counts.append(count)
    return counts


def serving_total(sink: Any, table: str) -> int | None:
    if not isinstance(sink, PostgresSink):
        return None
    import psycopg
    from psycopg import sql

    query = sql.SQL("SELECT COALESCE(SUM(value_count), 0) FROM {}").format(sql.Identifier(table))
    with psycopg.connect(
        host=sink.host, port=sink.port, dbname=sink.database, user=sink.user
    ) as connection:
        row = connection.execute(query).fetchone()
    return int(row[0]) if row else 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Whole-job catch-up on a skewed backlog")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--max-records-per-shard", type=int, default=5_000)
    parser.add_argument("--hot-share", type=float, default=0.9)
    parser.add_argument("--durations", action="store_true", help="print each batch's phases")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kappa-backlog-") as temporary:
        work = Path(temporary)
        with (
            source_throughput.moto(work) as endpoint,
            job_throughput.serving_sink(["backlog"]) as (store, sink),
        ):
            client = source_throughput.kinesis_client(endpoint)
            fill_skewed(client, args.events, args.hot_share)
            shards = per_shard(client)
            spark = _setup.spark_session("kappa-backlog-benchmark")
            spec = PipelineSpec(
                pipeline_version="backlog",
                source=KinesisSource(
                    stream_name=STREAM,
                    region=source_throughput.REGION,
                    endpoint_url=endpoint,
                    max_records_per_shard=args.max_records_per_shard,
                ),
                event=EventFormat(value_fields=job_throughput.VALUE_FIELDS),
                windowing=Windowing(window_seconds=60, watermark_seconds=7200),
                storage=Storage(
                    archive_uri=str(work / "archive"),
                    dead_letter_uri=str(work / "dead-letters"),
                    checkpoint_uri=str(work / "checkpoints"),
                ),
                sink=sink,
            )
            started = time.time()
            query, writer = pipeline.start(spark, spec, trigger_seconds=0.0)
            read, from_start, from_first = source_throughput.run_until_read(query, started)
            batches = [p for p in query.recentProgress if p.numInputRows]
            counts = writer.history.values()
            dropped = sum(pipeline.rows_dropped_by_watermark(query).values())
            total = serving_total(sink, spec.serving_table)
            spark.stop()
            if "--durations" in sys.argv:
                for p in batches:
                    print(p.batchId, p.numInputRows, p.durationMs)

    print(
        f"backlog: {args.events} events over the past hour in 2 Kinesis shards "
        f"({shards[0]} and {shards[1]} records), read from earliest at "
        f"{args.max_records_per_shard} records a shard a micro-batch, {len(batches)} "
        f"micro-batches; serving store: {store}; local[2]"
    )
    print(
        f"catch-up (whole job)   {read / from_start:10,.0f} events/s from the query's "
        f"start ({from_start:.1f} s), {read / from_first:,.0f} from its first batch"
    )
    print(
        f"accounted for: {sum(c.on_time for c in counts)} on time, "
        f"{sum(c.late for c in counts)} late, {sum(c.malformed for c in counts)} malformed; "
        f"dropped by Spark's watermark: {dropped}; serving store count "
        f"{'n/a' if total is None else total} of {args.events} sent"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
