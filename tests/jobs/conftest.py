"""Fixtures for the job's tests: one local SparkSession per run, and real local servers."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jobs import servers

JOBS = Path(__file__).resolve().parents[2] / "jobs"

# What the job's code needs while these tests run: credentials for moto, where Google's fakes
# listen, the package itself. The fakes' ports are reserved now and served later. Set for the
# tests of this package only (job_environment), never for the whole run: the other tiers must
# see the environment they see alone. Spark's JVM, and so its Python workers, is started with
# it (spark).
_PUBSUB_PORT = servers.free_port()
_BIGTABLE_PORT = servers.free_port()
JOB_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{_PUBSUB_PORT}",
    "BIGTABLE_EMULATOR_HOST": f"127.0.0.1:{_BIGTABLE_PORT}",
    "PYTHONPATH": os.pathsep.join(p for p in (str(JOBS), os.environ.get("PYTHONPATH", "")) if p),
}


@pytest.fixture(scope="module", autouse=True)
def job_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in JOB_ENVIRONMENT.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .appName("kappa-job-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.streaming.minBatchesToRetain", "10")
        .config("spark.driver.memory", "2g")
    )
    with pytest.MonkeyPatch.context() as patch:
        # The JVM starts now and keeps this environment for every Python worker it starts
        # (the job's environment, and this interpreter, the test virtualenv, rather than
        # whatever `python3` is first on PATH); this process gets its own back.
        for name, value in {**JOB_ENVIRONMENT, "PYSPARK_PYTHON": sys.executable}.items():
            patch.setenv(name, value)
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto_server, in-process, on a free port: Kinesis, S3 and DynamoDB."""
    from moto.server import ThreadedMotoServer

    port = servers.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[servers.Postgres]:
    """A throwaway PostgreSQL cluster; a machine without PostgreSQL fails these tests."""
    with servers.throwaway_postgres(servers.require_postgres_bin()) as server:
        yield server


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """Google's Pub/Sub fake (pstest), built from jobs/emulators/pubsub with Go."""
    with servers.go_emulator("pubsub", _PUBSUB_PORT) as address:
        yield address


@pytest.fixture(scope="session")
def bigtable_emulator() -> Iterator[str]:
    """Google's Bigtable fake (bttest), built from jobs/emulators/bigtable with Go."""
    with servers.go_emulator("bigtable", _BIGTABLE_PORT) as address:
        yield address
