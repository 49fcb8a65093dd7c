"""aws (the default): moto's server for Kinesis, S3 and DynamoDB.

The archive, dead letters and checkpoints are s3:// URIs in moto's S3, written by Spark
through Hadoop's S3A connector (fetched by Spark from Maven Central on the first run, then
cached under .local/ivy).
"""

from __future__ import annotations

from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

from kappa.spec import (
    SERVING_KEY_ATTRIBUTE,
    SERVING_WINDOW_ATTRIBUTE,
    DynamoDbSink,
    KinesisSource,
    Storage,
)

from ..producer import EMULATOR_CREDENTIALS, Channel, KinesisChannel
from ..stand_ins import SetupError, moto_server
from .base import NAME, Files, Flavour, Settings

REGION = "us-east-1"
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


def _number(value: Any) -> int | float:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


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
        self.files = Files(self._client("s3"))

    def provision_shared(self) -> None:
        kinesis = self._client("kinesis")
        # Shards split the hash key range evenly (the skewed routing relies on it).
        kinesis.create_stream(StreamName=self.stream, ShardCount=self.settings.shards)
        kinesis.get_waiter("stream_exists").wait(StreamName=self.stream)
        s3 = self._client("s3")
        for bucket in self.buckets.values():
            s3.create_bucket(Bucket=bucket)

    def provision_version(self) -> None:
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
        source = KinesisSource(stream_name=self.stream, region=REGION, endpoint_url=self.endpoint)
        limit = self.settings.batch_limit
        if limit is None:
            return source
        return KinesisSource.model_validate({**source.model_dump(), "max_records_per_shard": limit})

    def _first_offset_reads(self, offset: Any) -> bool:
        # The reader's first batch may only list the shards: every position still "start".
        positions = (offset or {}).get("shards", {})
        return any(position != "start" for position in positions.values())

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
                "to _AWS_SDK_FOR_HADOOP in jobs/kappa_local/flavours/aws.py"
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
        return KinesisChannel(
            self.stream,
            REGION,
            self.endpoint,
            EMULATOR_CREDENTIALS,
            hot_share=self.settings.hot_share,
        )

    def shard_records(self) -> dict[str, int]:
        """Records per shard, read from the start (for checking how a run spread them)."""
        kinesis = self._client("kinesis")
        counts = {}
        for shard in kinesis.list_shards(StreamName=self.stream)["Shards"]:
            iterator = kinesis.get_shard_iterator(
                StreamName=self.stream,
                ShardId=shard["ShardId"],
                ShardIteratorType="TRIM_HORIZON",
            )["ShardIterator"]
            count = 0
            while iterator:
                page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
                count += len(page["Records"])
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")
            counts[shard["ShardId"]] = count
        return counts

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


def _bundled_hadoop_version() -> str:
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    for jar in jars.glob("hadoop-client-api-*.jar"):
        return jar.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    raise SetupError(f"no hadoop-client-api jar in {jars}: is pyspark installed properly?")
