"""Events per second through the job's pipeline, against Spark's own ceiling, in one run.

Every run reads the same JSON-lines files with the same files source, in the same number of
micro-batches (Trigger.AvailableNow, maxFilesPerTrigger), on the same local Spark session:
  ceiling:      source -> batch time -> parse (the job's own stamp_batch_time and
                parse_events) -> Spark's no-op sink;
  deduplicated: source -> parse -> watermark -> deduplication -> the no-op sink, i.e. the
                part of the job before its writes (shows what the state store costs);
  job:          the whole pipeline: source -> parse -> watermark -> deduplication ->
                dead letters + Parquet archive + aggregation merged into the serving store.
The serving store is a throwaway local PostgreSQL when its binaries are present, else
DynamoDB on an in-process moto server. The three run in turn for several rounds, each on
fresh checkpoints and outputs. Warm-up rounds on the same full-size input come first: the JVM
keeps compiling the hot code of both paths for the first few runs at full size, and a
smaller warm-up input left the measured rounds still compiling (docs/benchmarks.md). The
rates are the medians of the measured rounds. The job/deduplicated ratio is the median of
each round's own ratio: the two run back to back, so a round that the shared machine slows
down for both counts as one round, not as an outlier in either median.

    .venv/bin/python benchmarks/job_throughput.py [--events 400000] [--files 8]
        [--files-per-batch 2] [--rounds 5] [--warmup-rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# _setup first: it puts jobs/ on the path and sets the environment Spark's workers inherit.
from _setup import spark_session
from kappa import events, pipeline
from kappa.sources import read_stream
from kappa.spec import (
    DynamoDbSink,
    EventFormat,
    FilesSource,
    PipelineSpec,
    PostgresSink,
    Sink,
    Storage,
    Windowing,
)

from tests.jobs import servers

VALUE_FIELDS = ("value", "weight")


def write_input(directory: Path, count: int, files: int, seed: int = 42) -> int:
    """JSON lines over 50 keys and an hour of event time; 1% repeats, 0.1% malformed. Each
    file arrives (its modification time) when its last event happened, so every event is on
    time by the job's rule (the files cover less than the watermark each)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    directory.mkdir(parents=True)
    per_file = count // files
    written = 0
    for index in range(files):
        lines = []
        for n in range(per_file):
            number = index * per_file + n
            if rng.random() < 0.001:
                lines.append('{"event_id": "broken", ')
            else:
                if rng.random() < 0.01 and number > 0:
                    number = rng.randrange(max(0, number - 500), number)  # a recent repeat
                moment = start + timedelta(seconds=number * 3600 / count)
                lines.append(
                    f'{{"event_id": "e{number}", "key": "k{number % 50}", '
                    f'"event_time": "{moment:%Y-%m-%dT%H:%M:%S.%f}Z", '
                    f'"value": {rng.uniform(-100, 100):.3f}, "weight": {rng.randint(0, 9)}}}'
                )
        path = directory / f"part-{index:04d}.json"
        path.write_text("\n".join(lines) + "\n")
        arrival = (start + timedelta(seconds=(index + 1) * per_file * 3600 / count)).timestamp()
        os.utime(path, (arrival, arrival))
        written += len(lines)
    return written


@contextmanager
def serving_sink(versions: list[str]) -> Iterator[tuple[str, Sink]]:
    """The serving store, with a table for each pipeline version (DynamoDB needs them first)."""
    bin_dir = servers.postgres_bin()
    if bin_dir is not None:
        with servers.throwaway_postgres(bin_dir) as pg:
            yield (
                "postgres",
                PostgresSink(
                    host=pg.host,
                    port=pg.port,
                    database=pg.database,
                    user=pg.user,
                    table="bench",
                    sslmode="disable",
                ),
            )
        return
    import boto3
    from moto.server import ThreadedMotoServer

    port = servers.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)
        for version in versions:
            dynamodb.create_table(
                TableName=f"bench_{version}",  # <table>_<pipeline version>
                KeySchema=[
                    {"AttributeName": "key", "KeyType": "HASH"},
                    {"AttributeName": "window_start", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "key", "AttributeType": "S"},
                    {"AttributeName": "window_start", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        yield (
            "dynamodb (moto)",
            DynamoDbSink(table="bench", region="us-east-1", endpoint_url=endpoint),
        )
    finally:
        server.stop()


def timed(query: Any) -> float:
    started = time.perf_counter()
    query.awaitTermination()
    return time.perf_counter() - started


def ceiling_run(spark: Any, spec: PipelineSpec, checkpoint: Path) -> float:
    query = (
        # Stamped as the job stamps its rows: the stamp is a new constant in the generated
        # code of every batch, which the job compiles again each time too.
        events.parse_events(events.stamp_batch_time(read_stream(spark, spec)), spec.event)
        .writeStream.format("noop")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    return timed(query)


def deduplicated_run(spark: Any, spec: PipelineSpec) -> float:
    query = (
        pipeline.build_stream(spark, spec)
        .writeStream.format("noop")
        .option("checkpointLocation", spec.checkpoint_location)
        .trigger(availableNow=True)
        .start()
    )
    return timed(query)


def job_run(spark: Any, spec: PipelineSpec) -> tuple[float, pipeline.BatchCounts]:
    query, writer = pipeline.start(spark, spec, available_now=True)
    seconds = timed(query)
    counts = writer.history.values()
    on_time, late = sum(c.on_time for c in counts), sum(c.late for c in counts)
    return seconds, pipeline.BatchCounts(on_time, late, sum(c.malformed for c in counts))


def main() -> int:
    parser = argparse.ArgumentParser(description="Job throughput against Spark's ceiling")
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--files-per-batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup-rounds", type=int, default=3)
    args = parser.parse_args()

    spark = spark_session("kappa-benchmark", driver_memory="4g")
    rounds = [f"warmup{n}" for n in range(1, args.warmup_rounds + 1)] + [
        f"round{n}" for n in range(1, args.rounds + 1)
    ]
    seconds: dict[str, list[float]] = {"ceiling": [], "deduplicated": [], "job": []}
    with tempfile.TemporaryDirectory(prefix="kappa-bench-") as temporary:
        work = Path(temporary)
        count = write_input(work / "input", args.events, args.files)
        with serving_sink(rounds) as (store, sink):
            for version in rounds:
                warmup = version.startswith("warmup")
                spec = PipelineSpec(
                    pipeline_version=version,
                    source=FilesSource(
                        path=str(work / "input"), max_files_per_trigger=args.files_per_batch
                    ),
                    event=EventFormat(value_fields=VALUE_FIELDS),
                    windowing=Windowing(window_seconds=60, watermark_seconds=600),
                    storage=Storage(
                        archive_uri=str(work / version / "archive"),
                        dead_letter_uri=str(work / version / "dead-letters"),
                        checkpoint_uri=str(work / version / "checkpoints"),
                    ),
                    sink=sink,
                )
                ceiling = ceiling_run(spark, spec, work / version / "ceiling-checkpoint")
                deduplicated = deduplicated_run(
                    spark, spec.model_copy(update={"pipeline_version": f"{version}-dedup"})
                )
                job, delivered = job_run(spark, spec)
                if warmup:
                    continue
                for path, took in (("ceiling", ceiling), ("deduplicated", deduplicated)):
                    seconds[path].append(took)
                seconds["job"].append(job)
                print(
                    f"{version}: ceiling {ceiling:.2f} s, deduplicated {deduplicated:.2f} s, "
                    f"job {job:.2f} s ({delivered.on_time} on time, {delivered.late} late, "
                    f"{delivered.malformed} malformed past deduplication; "
                    f"job/deduplicated {deduplicated / job:.2f})",
                    flush=True,
                )
    spark.stop()

    rate = {path: count / statistics.median(taken) for path, taken in seconds.items()}
    per_round = [d / j for d, j in zip(seconds["deduplicated"], seconds["job"], strict=True)]
    batches = -(-args.files // args.files_per_batch)
    print(
        f"input: {count} events in {args.files} files, {batches} micro-batches, local[2]; "
        f"serving store: {store}; medians of {args.rounds} rounds "
        f"after {args.warmup_rounds} warm-up rounds"
    )
    for path, label in (
        ("ceiling", "ceiling (read + parse -> noop sink)"),
        ("deduplicated", "deduplicated (+ dedup -> noop sink)"),
        ("job", "job (whole pipeline)"),
    ):
        print(
            f"{label:<37}{rate[path]:12,.0f} events/s "
            f"({statistics.median(seconds[path]):.2f} s, ratio {rate[path] / rate['ceiling']:.2f})"
        )
    print(f"ratio job/ceiling: {rate['job'] / rate['ceiling']:.2f} (target >= 0.80)")
    print(
        f"ratio job/deduplicated: {statistics.median(per_round):.2f} "
        f"(median of the rounds' own ratios, {min(per_round):.2f}-{max(per_round):.2f}; "
        f"of the medians {rate['job'] / rate['deduplicated']:.2f}; target >= 0.70)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
