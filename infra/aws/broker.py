"""The log: a KMS-encrypted Kinesis data stream, sized from the expected ingest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from infra.options import child_options
from infra.sizing import KinesisReader, kinesis_readers, kinesis_shard_count


@dataclass(frozen=True)
class BrokerArgs:
    """Provisioned shards are sized by infra/sizing.py from the ingest and the readers: the
    job's reader over every pipeline version that runs, plus `read_consumers` outside the
    pipeline (GetRecords consumers sharing the shards' reads)."""

    kms_key_id: pulumi.Input[str]
    mode: Literal["provisioned", "on_demand"] = "provisioned"
    ingest_kib_per_second: int = 1024
    ingest_records_per_second: int = 1000
    read_consumers: int = 0
    pipeline_versions: int = 1
    reader: KinesisReader = "python"
    headroom_percent: int = 25
    # An explicit count wins over the computed one (e.g. to pre-split for a known peak).
    shards: int | None = None
    # Seven days by default: the log must outlive a long weekend of a stopped job.
    retention_hours: int = 168
    # Pulumi refuses to delete the stream: the log is the system of record. On unless a
    # caller turns it off (a dev stack), as on GCP.
    protect: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def shard_count(self) -> int | None:
        if self.mode == "on_demand":
            return None
        if self.shards is not None:
            return self.shards
        return kinesis_shard_count(
            ingest_kib_per_second=self.ingest_kib_per_second,
            ingest_records_per_second=self.ingest_records_per_second,
            readers=kinesis_readers(
                reader=self.reader,
                pipeline_versions=self.pipeline_versions,
                outside_consumers=self.read_consumers,
            ),
            headroom_percent=self.headroom_percent,
        )


class Broker(pulumi.ComponentResource):
    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: BrokerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kappa:aws:Broker", name, None, opts)
        stream = aws.kinesis.Stream(
            f"{name}-stream",
            name=f"{name}-events",
            shard_count=args.shard_count,
            stream_mode_details={
                "stream_mode": "ON_DEMAND" if args.mode == "on_demand" else "PROVISIONED"
            },
            retention_period=args.retention_hours,
            encryption_type="KMS",
            kms_key_id=args.kms_key_id,
            shard_level_metrics=["IncomingBytes", "IncomingRecords", "IteratorAgeMilliseconds"],
            tags=dict(args.tags),
            opts=child_options(self, opts, protect=args.protect),
        )
        self.name = stream.name
        self.arn = stream.arn
        self.register_outputs({"name": stream.name, "arn": stream.arn})
