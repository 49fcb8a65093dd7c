"""The three local flavours: which stand-ins run, what is created, and the spec the job gets.

Each flavour builds its pipeline spec with the job's own model (kappa.spec.PipelineSpec),
pointing at the stand-ins, so the local run and a cluster run the very same job with the
very same kind of document; and each reads back what the job wrote (serving rows, dead
letters, the archive, Spark's commit log) to check it.

- aws (the default): moto's server for Kinesis, S3 and DynamoDB. The archive, dead letters and
  checkpoints are s3:// URIs in moto's S3, written by Spark through Hadoop's S3A connector
  (fetched by Spark from Maven Central on the first run, then cached under .local/ivy).
- gcp: Google's Pub/Sub fake and Bigtable emulator; storage is the local filesystem. Google
  publishes no GCS emulator. fake-gcs-server (jobs/emulators/gcs) serves the JSON API that
  google-cloud-storage speaks, and tests/jobs/test_objects_gcs.py runs the job's own gs://
  objects against it; but Spark would reach it only through the GCS Hadoop connector, which
  pyspark lacks (Maven Central has it unshaded: gcsio, Guava and Google's Java clients would
  have to fit beside Spark's own), and writes through that connector to the fake are a
  reported, open problem (fsouza/fake-gcs-server#1882). Spark writes through Hadoop's FileSystem
  interface either way, so the lake stays on local files; see the README.
- postgres: the aws flavour with Debian's PostgreSQL as the serving store.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from kappa.spec import (
    SERVING_KEY_ATTRIBUTE,
    SERVING_WINDOW_ATTRIBUTE,
    BigtableSink,
    DynamoDbSink,
    EventFormat,
    KinesisSource,
    PipelineSpec,
    PostgresSink,
    PubSubSource,
    Storage,
    Windowing,
)

from .producer import EMULATOR_CREDENTIALS, Channel, KinesisChannel, PubSubChannel
from .stand_ins import (
    LOOPBACK,
    REPO,
    PostgresServer,
    SetupError,
    debian_postgres,
    go_emulator,
    moto_server,
)

NAME = "kappa-local"
REGION = "us-east-1"
PROJECT = "kappa-local"
POSTGRES_DATABASE = "kappa"
POSTGRES_USER = "kappa"
# moto accepts any key pair; set explicitly so that no real credentials are ever picked up.
FAKE_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": EMULATOR_CREDENTIALS["aws_access_key_id"],
    "AWS_SECRET_ACCESS_KEY": EMULATOR_CREDENTIALS["aws_secret_access_key"],
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
# hadoop-aws must match the Hadoop that pyspark bundles. It was built against the AWS SDK v2
# "bundle" jar (over 500 MB); the few modules S3A uses (s3, s3-transfer-manager and their
# dependencies, about 20 MB) are enough. 2.24.8 is the nearest release to hadoop-aws 3.4.1's
# 2.24.6 for which s3-transfer-manager is published.
_AWS_SDK_FOR_HADOOP = {"3.4.1": "2.24.8"}
S3A_PACKAGE = "org.apache.hadoop.fs.s3a"


@dataclass(frozen=True)
class Ports:
    moto: int = 5000
    pubsub: int = 8085
    bigtable: int = 8086
    postgres: int = 5432


@dataclass(frozen=True)
class Settings:
    workdir: Path
    windowing: Windowing
    ports: Ports = field(default_factory=Ports)
    version: str = "v1"
    shards: int = 2
    event: EventFormat = field(default_factory=EventFormat)


def _visible(relative: str) -> bool:
    """Hadoop's rule: files and directories starting with _ or . are not data
    (_SUCCESS, _temporary, .spark-staging-*, checksums)."""
    return not any(part.startswith(("_", ".")) for part in relative.split("/"))


def _number(value: Any) -> int | float:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class _Files:
    """What the job wrote, read back: s3:// in moto or local paths."""

    def __init__(self, s3: Any = None) -> None:
        self._s3 = s3
        self._parquet_ids: dict[str, list[str]] = {}

    def list(self, prefix: str) -> list[str]:
        """Every visible data file under a prefix, as full URIs (recursive)."""
        if prefix.startswith("s3://"):
            bucket, _, key = prefix.removeprefix("s3://").partition("/")
            base = key.rstrip("/") + "/"
            found = []
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=base
            ):
                for item in page.get("Contents", []):
                    relative = item["Key"][len(base) :]
                    if _visible(relative):
                        found.append(f"s3://{bucket}/{item['Key']}")
            return sorted(found)
        root = Path(prefix)
        if not root.is_dir():
            return []
        return sorted(
            str(p) for p in root.rglob("*") if p.is_file() and _visible(str(p.relative_to(root)))
        )

    def read(self, uri: str) -> bytes:
        if uri.startswith("s3://"):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return Path(uri).read_bytes()

    def write(self, uri: str, data: bytes) -> None:
        if uri.startswith("s3://"):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            self._s3.put_object(Bucket=bucket, Key=key, Body=data)
            return
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        Path(uri).write_bytes(data)

    def exists(self, uri: str) -> bool:
        if uri.startswith("s3://"):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            return bool(self._s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))
        return Path(uri).exists()

    def json_lines(self, prefix: str) -> list[dict[str, Any]]:
        rows = []
        for uri in self.list(prefix):
            if uri.endswith(".json"):
                text = self.read(uri).decode("utf-8")
                rows += [json.loads(line) for line in text.splitlines() if line.strip()]
        return rows

    def parquet_column(self, prefix: str, column: str) -> list[str]:
        import pyarrow.parquet as pq

        values: list[str] = []
        current = [u for u in self.list(prefix) if u.endswith(".parquet")]
        # A file never changes once written (a replayed batch writes new names), so each is
        # read once; files of overwritten partitions drop out of the listing.
        for uri in current:
            if uri not in self._parquet_ids:
                table = pq.read_table(io.BytesIO(self.read(uri)), columns=[column])
                self._parquet_ids[uri] = [str(v) for v in table.column(column).to_pylist()]
            values += self._parquet_ids[uri]
        return values


class Flavour:
    name: ClassVar[str]
    stand_ins: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.logs = settings.workdir / "logs"
        self.files = _Files()
        self._spec: PipelineSpec | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, stack: ExitStack) -> None:
        raise NotImplementedError

    def provision(self) -> None:
        raise NotImplementedError

    # -- the job ------------------------------------------------------------------------------
    def spec(self) -> PipelineSpec:
        if self._spec is None:
            self._spec = PipelineSpec(
                pipeline_version=self.settings.version,
                source=self._source(),
                starting_position="earliest",
                event=self.settings.event,
                windowing=self.settings.windowing,
                storage=self._storage(),
                sink=self._sink(),
            )
        return self._spec

    def _source(self) -> Any:
        raise NotImplementedError

    def _sink(self) -> Any:
        raise NotImplementedError

    def _storage(self) -> Storage:
        raise NotImplementedError

    @property
    def spec_uri(self) -> str:
        raise NotImplementedError

    @property
    def stop_marker_uri(self) -> str:
        return f"{self.spec().storage.checkpoint_uri}/_control/stop-{self.settings.version}"

    def publish_spec(self) -> str:
        self.files.write(self.spec_uri, self.spec().to_json().encode("utf-8"))
        return self.spec_uri

    def request_stop(self) -> None:
        self.files.write(self.stop_marker_uri, b"stop\n")

    def job_env(self) -> dict[str, str]:
        return {}

    def spark_defaults(self) -> dict[str, str]:
        return {
            # Two cores: Spark's UI and its 200 default shuffle partitions are only overhead.
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.driver.memory": "1g",
            "spark.jars.ivy": str(REPO / ".local" / "ivy"),
        }

    def channel(self) -> Channel:
        raise NotImplementedError

    # -- reading back what the job wrote ------------------------------------------------------
    def serving_rows(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.files.json_lines(self.spec().dead_letter_location)

    def archived_ids(self) -> list[str]:
        return self.files.parquet_column(self.spec().archive_location, self.settings.event.id_field)

    def _logged(self, log: str) -> dict[int, str]:
        """Batch id -> file of one of Spark's checkpoint logs ("offsets" or "commits")."""
        files = self.files.list(f"{self.spec().checkpoint_location}/{log}")
        return {int(name): u for u in files if (name := u.rsplit("/", 1)[-1]).isdigit()}

    def committed_batches(self) -> set[int]:
        """Batch ids in Spark's commit log: the batches that are done for good."""
        return set(self._logged("commits"))

    def batch_in_flight(self) -> int | None:
        """The batch Spark has logged the offsets of (its write-ahead log) but not committed:
        the one being read and written right now, or None."""
        latest = self.last_planned_batch()
        return None if latest is None or latest in self.committed_batches() else latest

    def last_planned_batch(self) -> int | None:
        return max(self._logged("offsets"), default=None)

    def watermark_moved(self) -> bool:
        """Whether Spark has logged a batch with a watermark above zero (its offset log:
        a "v1" line, then the batch metadata, then the sources' offsets).

        Deduplication drops an event as late against the watermark of the batch *before*
        its own, so an event is only certain to count as late when it is sent after such a
        batch was logged: it then lands in a later batch, whose previous watermark is set.
        """
        lines = self._last_offsets_entry()
        return len(lines) > 1 and int(json.loads(lines[1]).get("batchWatermarkMs", 0)) > 0

    def last_source_offset(self) -> Any:
        """The source's end offset of the last batch Spark logged (e.g. Kinesis positions)."""
        lines = self._last_offsets_entry()
        return json.loads(lines[2]) if len(lines) > 2 else None

    def _last_offsets_entry(self) -> list[str]:
        logged = self._logged("offsets")
        if not logged:
            return []
        return self.files.read(logged[max(logged)]).decode("utf-8").splitlines()

    def query_started(self) -> bool:
        """Spark writes the checkpoint's metadata file when the query starts."""
        return self.files.exists(f"{self.spec().checkpoint_location}/metadata")

    def ports_used(self) -> tuple[int, ...]:
        raise NotImplementedError

    def split_shard(self) -> str:
        raise SetupError(f"the {self.name} flavour's broker has no shards to split")

    def locations(self) -> list[tuple[str, str]]:
        spec = self.spec()
        return [
            ("archive", spec.archive_location),
            ("dead letters", spec.dead_letter_location),
            ("checkpoint", spec.checkpoint_location),
            ("serving table", spec.serving_table),
        ]


class AwsFlavour(Flavour):
    name = "aws"
    stand_ins = "moto's server: Kinesis, S3, DynamoDB"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.endpoint = f"http://127.0.0.1:{settings.ports.moto}"
        self.stream = f"{NAME}-events"
        self.buckets = {
            role: f"{NAME}-{role}"
            for role in ("archive", "dead-letters", "checkpoints", "artifacts")
        }

    def _client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            **EMULATOR_CREDENTIALS,
        )

    def start(self, stack: ExitStack) -> None:
        stack.enter_context(moto_server(self.settings.ports.moto, self.logs))
        self.files = _Files(self._client("s3"))

    def provision(self) -> None:
        kinesis = self._client("kinesis")
        kinesis.create_stream(StreamName=self.stream, ShardCount=self.settings.shards)
        kinesis.get_waiter("stream_exists").wait(StreamName=self.stream)
        s3 = self._client("s3")
        for bucket in self.buckets.values():
            s3.create_bucket(Bucket=bucket)
        self._create_table()

    def _create_table(self) -> None:
        # As infra/aws/serving.py declares it: (key, window_start) strings, on demand.
        self._client("dynamodb").create_table(
            TableName=self.spec().serving_table,
            KeySchema=[
                {"AttributeName": SERVING_KEY_ATTRIBUTE, "KeyType": "HASH"},
                {"AttributeName": SERVING_WINDOW_ATTRIBUTE, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": SERVING_KEY_ATTRIBUTE, "AttributeType": "S"},
                {"AttributeName": SERVING_WINDOW_ATTRIBUTE, "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )

    def _source(self) -> KinesisSource:
        return KinesisSource(stream_name=self.stream, region=REGION, endpoint_url=self.endpoint)

    def _sink(self) -> Any:
        return DynamoDbSink(table=f"{NAME}-aggregates", region=REGION, endpoint_url=self.endpoint)

    def _storage(self) -> Storage:
        return Storage(
            archive_uri=f"s3://{self.buckets['archive']}",
            dead_letter_uri=f"s3://{self.buckets['dead-letters']}",
            checkpoint_uri=f"s3://{self.buckets['checkpoints']}",
        )

    @property
    def spec_uri(self) -> str:
        return f"s3://{self.buckets['artifacts']}/specs/{self.settings.version}/spec.json"

    def job_env(self) -> dict[str, str]:
        # boto3 honours AWS_ENDPOINT_URL: the job's own S3 reads (spec, stop marker, the
        # Kinesis reader's planned offsets) reach moto without any change to the job.
        return {**FAKE_AWS_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def spark_defaults(self) -> dict[str, str]:
        hadoop = _bundled_hadoop_version()
        sdk = _AWS_SDK_FOR_HADOOP.get(hadoop)
        if sdk is None:
            raise SetupError(
                f"pyspark bundles Hadoop {hadoop}, for which no AWS SDK version is known: add it "
                "to _AWS_SDK_FOR_HADOOP in jobs/kappa_local/flavours.py"
            )
        packages = [
            f"org.apache.hadoop:hadoop-aws:{hadoop}",
            f"software.amazon.awssdk:s3:{sdk}",
            f"software.amazon.awssdk:s3-transfer-manager:{sdk}",
        ]
        s3a = "spark.hadoop.fs.s3a."
        return {
            **super().spark_defaults(),
            "spark.jars.packages": ",".join(packages),
            "spark.jars.excludes": "software.amazon.awssdk:bundle",
            # s3:// as on EMR (where it is EMRFS); locally Hadoop's S3A serves it.
            "spark.hadoop.fs.s3.impl": f"{S3A_PACKAGE}.S3AFileSystem",
            f"{s3a}endpoint": self.endpoint,
            f"{s3a}endpoint.region": REGION,
            f"{s3a}path.style.access": "true",
            f"{s3a}connection.ssl.enabled": "false",
            f"{s3a}aws.credentials.provider": f"{S3A_PACKAGE}.SimpleAWSCredentialsProvider",
            f"{s3a}access.key": FAKE_AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            f"{s3a}secret.key": FAKE_AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        }

    def ports_used(self) -> tuple[int, ...]:
        return (self.settings.ports.moto,)

    def channel(self) -> Channel:
        return KinesisChannel(self.stream, REGION, self.endpoint, EMULATOR_CREDENTIALS)

    def serving_rows(self) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        client = self._client("dynamodb")
        deserialize = TypeDeserializer().deserialize
        rows = []
        pages = client.get_paginator("scan").paginate(
            TableName=self.spec().serving_table, ConsistentRead=True
        )
        for page in pages:
            for item in page["Items"]:
                rows.append({k: _number(deserialize(v)) for k, v in item.items()})
        return rows

    def open_shards(self) -> list[dict[str, Any]]:
        shards = self._client("kinesis").list_shards(StreamName=self.stream)["Shards"]
        return [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]

    def split_shard(self) -> str:
        shard = self.open_shards()[0]
        low = int(shard["HashKeyRange"]["StartingHashKey"])
        high = int(shard["HashKeyRange"]["EndingHashKey"])
        self._client("kinesis").split_shard(
            StreamName=self.stream,
            ShardToSplit=shard["ShardId"],
            NewStartingHashKey=str((low + high + 1) // 2),
        )
        return shard["ShardId"]


class PostgresFlavour(AwsFlavour):
    name = "postgres"
    stand_ins = "moto's server: Kinesis, S3; Debian's PostgreSQL"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.server: PostgresServer | None = None

    def start(self, stack: ExitStack) -> None:
        super().start(stack)
        self.server = stack.enter_context(
            debian_postgres(self.settings.ports.postgres, POSTGRES_DATABASE, POSTGRES_USER)
        )

    def _connect(self) -> Any:
        import psycopg

        assert self.server is not None, "start() first"
        return psycopg.connect(
            host=self.server.host,
            port=self.server.port,
            dbname=self.server.database,
            user=self.server.user,
            password=self.server.password,
            sslmode="disable",
            autocommit=True,
        )

    def _create_table(self) -> None:
        # The job creates its table; a run starts from an empty one.
        from psycopg import sql

        with self._connect() as connection:
            connection.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self.spec().serving_table))
            )

    def _sink(self) -> PostgresSink:
        return PostgresSink(
            host=LOOPBACK,
            port=self.settings.ports.postgres,
            database=POSTGRES_DATABASE,
            user=POSTGRES_USER,
            table="aggregates",
            # Loopback only, so no TLS (Debian's cluster offers only a snakeoil certificate).
            sslmode="disable",
        )

    def job_env(self) -> dict[str, str]:
        assert self.server is not None, "start() first"
        sink = self._sink()
        return {**super().job_env(), sink.password_env: self.server.password}

    def serving_rows(self) -> list[dict[str, Any]]:
        from psycopg import sql
        from psycopg.rows import dict_row

        with self._connect() as connection, connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(
                sql.SQL("SELECT * FROM {}").format(sql.Identifier(self.spec().serving_table))
            )
            return [dict(row) for row in cursor.fetchall()]

    def ports_used(self) -> tuple[int, ...]:
        # The cluster counts when this run started it: it is stopped again at the end. One
        # that was already running is left running.
        started = self.server is not None and self.server.started
        return (*super().ports_used(), *((self.settings.ports.postgres,) if started else ()))

    def locations(self) -> list[tuple[str, str]]:
        sink = self._sink()
        where = f"postgresql://{sink.user}@{sink.host}:{sink.port}/{sink.database}"
        return [
            *super().locations()[:-1],
            ("serving table", f"{self.spec().serving_table} in {where}"),
        ]


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

    def provision(self) -> None:
        from google.cloud import bigtable, pubsub_v1
        from google.cloud.bigtable import column_family

        publisher = pubsub_v1.PublisherClient()
        publisher.create_topic(name=self.topic)
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
        for role in ("archive", "dead-letters", "checkpoints", "artifacts"):
            (self.lake / role).mkdir(parents=True, exist_ok=True)

    def _source(self) -> PubSubSource:
        # Leases are renewed every trigger; 60 s (not the cluster's longer deadline) means that
        # messages pulled by a killed job come back within a minute, not ten. No replay window:
        # the subscription is made just before the job starts, so there is nothing older to
        # replay, and Google's fake cannot seek back over messages it already holds.
        return PubSubSource(
            subscription=self.subscription, ack_deadline_seconds=60, replay_window_seconds=0
        )

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


FLAVOURS: dict[str, type[Flavour]] = {f.name: f for f in (AwsFlavour, GcpFlavour, PostgresFlavour)}


def _bundled_hadoop_version() -> str:
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    for jar in jars.glob("hadoop-client-api-*.jar"):
        return jar.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    raise SetupError(f"no hadoop-client-api jar in {jars}: is pyspark installed properly?")


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
