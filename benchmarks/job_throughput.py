"""Events per second through the job's pipeline, against Spark's own ceiling, in one run.

Both runs read the same JSON-lines files with the same files source, in the same number of
micro-batches (Trigger.AvailableNow, maxFilesPerTrigger), on the same local Spark session:
  ceiling: source -> parse (the job's own parse_events) -> Spark's no-op sink;
  job:     the whole pipeline: source -> parse -> watermark -> deduplication ->
           dead letters + Parquet archive + aggregation merged into the serving store.
The serving store is a throwaway local PostgreSQL when its binaries are present, else
DynamoDB on an in-process moto server. Prints both rates and their ratio.

    .venv/bin/python benchmarks/job_throughput.py [--events 400000] [--files 8]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "jobs")]
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO / "jobs"), os.environ.get("PYTHONPATH", "")) if p
)
# Spark's Python workers run `python3` from PATH unless told otherwise, which lacks the
# job's packages when the virtualenv is used without being activated.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from kappa import events, pipeline  # noqa: E402
from kappa.spec import (  # noqa: E402
    DynamoDbSink,
    EventFormat,
    FilesSource,
    PipelineSpec,
    PostgresSink,
    Sink,
    Storage,
    Windowing,
)

from tests.jobs import servers  # noqa: E402

VALUE_FIELDS = ("value", "weight")


def write_input(directory: Path, count: int, files: int, seed: int = 42) -> int:
    """JSON lines over 50 keys and an hour of event time; 1% repeats, 0.1% malformed."""
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
        (directory / f"part-{index:04d}.json").write_text("\n".join(lines) + "\n")
        written += len(lines)
    return written


@contextmanager
def serving_sink() -> Iterator[tuple[str, Sink]]:
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

    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench")):
        os.environ.setdefault(name, value)
    port = servers.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)
        for table in ("bench_warmup", "bench_bench"):  # <table>_<pipeline version>
            dynamodb.create_table(
                TableName=table,
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


def ceiling_run(spark: Any, spec: PipelineSpec, files_per_batch: int, work: Path) -> float:
    raw = (
        spark.readStream.format("text")
        .option("maxFilesPerTrigger", files_per_batch)
        .load(spec.source.path)  # type: ignore[union-attr]
        .selectExpr(
            f"value AS {events.PAYLOAD}",
            f"_metadata.file_modification_time AS {events.ARRIVAL_TIME}",
        )
    )
    query = (
        events.parse_events(raw, spec.event)
        .writeStream.format("noop")
        .option("checkpointLocation", str(work / "ceiling-checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    return timed(query)


def job_run(spark: Any, spec: PipelineSpec) -> tuple[float, int]:
    query, writer = pipeline.start(spark, spec, available_now=True)
    seconds = timed(query)
    return seconds, sum(c.valid + c.malformed for c in writer.history.values())


def main() -> int:
    parser = argparse.ArgumentParser(description="Job throughput against Spark's ceiling")
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--files-per-batch", type=int, default=2)
    args = parser.parse_args()

    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("kappa-benchmark")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    with tempfile.TemporaryDirectory(prefix="kappa-bench-") as temporary:
        work = Path(temporary)
        count = write_input(work / "input", args.events, args.files)
        with serving_sink() as (store, sink):
            spec = PipelineSpec(
                pipeline_version="bench",
                source=FilesSource(
                    path=str(work / "input"), max_files_per_trigger=args.files_per_batch
                ),
                event=EventFormat(value_fields=VALUE_FIELDS),
                windowing=Windowing(window_seconds=60, watermark_seconds=600),
                storage=Storage(
                    archive_uri=str(work / "archive"),
                    dead_letter_uri=str(work / "dead-letters"),
                    checkpoint_uri=str(work / "checkpoints"),
                ),
                sink=sink,
            )
            # Warm both paths up first (JIT, code generation, Python workers, the store's
            # first connection), on a small input of their own, so neither run pays for it.
            write_input(work / "warmup-input", 20_000, 2, seed=7)
            warmup = spec.model_copy(
                update={
                    "pipeline_version": "warmup",
                    "source": FilesSource(path=str(work / "warmup-input")),
                }
            )
            ceiling_run(spark, warmup, 1, work / "warmup")
            job_run(spark, warmup)
            ceiling_seconds = ceiling_run(spark, spec, args.files_per_batch, work)
            job_seconds, delivered = job_run(spark, spec)
    spark.stop()

    ceiling_rate = count / ceiling_seconds
    job_rate = count / job_seconds
    batches = -(-args.files // args.files_per_batch)
    print(f"input: {count} events in {args.files} files, {batches} micro-batches, local[2]")
    print(f"serving store: {store}; events past deduplication: {delivered}")
    print(
        f"ceiling (read + parse -> noop sink): {ceiling_rate:12,.0f} events/s "
        f"({ceiling_seconds:.1f} s)"
    )
    print(f"job (whole pipeline):                {job_rate:12,.0f} events/s ({job_seconds:.1f} s)")
    print(f"ratio job/ceiling: {job_rate / ceiling_rate:.2f} (target >= 0.80)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
