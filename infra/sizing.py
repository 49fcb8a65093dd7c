"""Capacity arithmetic shared by the stacks; pure functions, no cloud calls."""

from __future__ import annotations

import math

# Kinesis per-shard limits (Kinesis Data Streams quotas): 1 MiB/s or 1,000 records/s in,
# 2 MiB/s out shared by every GetRecords consumer.
KINESIS_SHARD_IN_KIB_PER_SECOND = 1024
KINESIS_SHARD_IN_RECORDS_PER_SECOND = 1000
KINESIS_SHARD_OUT_KIB_PER_SECOND = 2048


def kinesis_shard_count(
    *,
    ingest_kib_per_second: int,
    ingest_records_per_second: int,
    read_consumers: int,
    headroom_percent: int,
) -> int:
    """Shards for the write rate, the record rate and the shared read rate, whichever needs most.

    Headroom is applied before rounding up, so 25% on an exact one-shard load gives two shards.
    """
    factor = 1 + headroom_percent / 100
    needs = (
        ingest_kib_per_second * factor / KINESIS_SHARD_IN_KIB_PER_SECOND,
        ingest_records_per_second * factor / KINESIS_SHARD_IN_RECORDS_PER_SECOND,
        ingest_kib_per_second * read_consumers * factor / KINESIS_SHARD_OUT_KIB_PER_SECOND,
    )
    # Round away float noise (1.0000000001 shards is one shard) before taking the ceiling.
    return max(1, *(math.ceil(round(need, 9)) for need in needs))
