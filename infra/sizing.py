"""Capacity arithmetic shared by the stacks; pure functions, no cloud calls.

Kinesis shards (provisioned mode), with f = 1 + headroom_percent / 100:

    shards  = max(1, ceil(writes), ceil(records), ceil(reads))
    writes  = ingest KiB/s  * f / 1024 KiB/s    (each shard takes 1 MiB/s in)
    records = ingest rec/s  * f / 1000 rec/s    (and 1,000 records/s in)
    reads   = ingest KiB/s * readers * f / 2048 KiB/s
                                                (2 MiB/s out, shared by every GetRecords reader)
    readers = passes per record of the job's reader * pipeline versions that run
              + outside consumers (brokerReadConsumers, none by default)

Every configured pipeline version runs its own query over the whole log (the Kappa replay
runs beside the live one), so each reads every record. The job's reader reads each record
from Kinesis once (KINESIS_READ_PASSES; its test counts the records GetRecords returns);
a batch replayed after a restart is read again, once per restart, which the headroom covers.
Outside consumers are other applications reading with GetRecords; enhanced fan-out
consumers (SubscribeToShard) get 2 MiB/s per shard of their own and do not count. A new
version catching up on the log reads faster than the ingest, as fast as the shards' spare
read capacity lets it: the headroom decides how fast it catches up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

# Kinesis per-shard limits (Kinesis Data Streams quotas): 1 MiB/s or 1,000 records/s in,
# 2 MiB/s out shared by every GetRecords consumer.
KINESIS_SHARD_IN_KIB_PER_SECOND = 1024
KINESIS_SHARD_IN_RECORDS_PER_SECOND = 1000
KINESIS_SHARD_OUT_KIB_PER_SECOND = 2048

KinesisReader = Literal["python", "emr-connector"]

# GetRecords passes over each record per pipeline version, by the job's Kinesis reader:
# "python" (jobs/kappa/sources/kinesis.py) hands the records its planning read ahead to the
# executors; EMR's connector reads on the executors only.
KINESIS_READ_PASSES: Mapping[KinesisReader, int] = {"python": 1, "emr-connector": 1}


def kinesis_readers(
    *, reader: KinesisReader = "python", pipeline_versions: int = 1, outside_consumers: int = 0
) -> int:
    """How many times each record is read with GetRecords: the job's passes per record for
    each pipeline version that runs, plus the consumers outside the pipeline."""
    if pipeline_versions < 1 or outside_consumers < 0:
        raise ValueError(
            f"pipeline_versions must be at least 1 and outside_consumers at least 0 "
            f"(got {pipeline_versions}, {outside_consumers})"
        )
    return KINESIS_READ_PASSES[reader] * pipeline_versions + outside_consumers


def kinesis_shard_count(
    *,
    ingest_kib_per_second: int,
    ingest_records_per_second: int,
    readers: int,
    headroom_percent: int,
) -> int:
    """Shards for the write rate, the record rate and the shared read rate, whichever needs most.

    `readers` is kinesis_readers(). Headroom is applied before rounding up, so 25% on an exact
    one-shard load gives two shards.
    """
    factor = 1 + headroom_percent / 100
    needs = (
        ingest_kib_per_second * factor / KINESIS_SHARD_IN_KIB_PER_SECOND,
        ingest_records_per_second * factor / KINESIS_SHARD_IN_RECORDS_PER_SECOND,
        ingest_kib_per_second * readers * factor / KINESIS_SHARD_OUT_KIB_PER_SECOND,
    )
    # Round away float noise (1.0000000001 shards is one shard) before taking the ceiling.
    return max(1, *(math.ceil(round(need, 9)) for need in needs))
