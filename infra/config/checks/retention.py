"""Retention rules: the archive's tiers follow each other in an order object storage accepts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from infra.config.checks.rule import reads
from infra.config.clouds import MIN_DAYS_IN_COLD_TIER
from infra.config.messages import problem

if TYPE_CHECKING:
    from infra.config.stack import StackConfig


@reads("archiveColdAfterDays", "archiveArchiveAfterDays")
def archive_tier_after_the_cold_tiers_minimum(config: StackConfig) -> Iterator[str]:
    # S3 moves an object out of Standard-IA only after 30 days in it, and refuses a lifecycle
    # rule that asks sooner; GCS has no such rule, but the same keys mean the same there.
    retention = config.retention
    earliest = retention.archive_cold_after_days + MIN_DAYS_IN_COLD_TIER
    if retention.archive_archive_after_days < earliest:
        yield problem(
            "archiveArchiveAfterDays",
            retention.archive_archive_after_days,
            f"must be at least archiveColdAfterDays + {MIN_DAYS_IN_COLD_TIER} "
            f"({earliest}): objects stay {MIN_DAYS_IN_COLD_TIER} days in the cold tier "
            "before the archive tier",
        )


@reads("archiveExpireAfterDays", "archiveArchiveAfterDays")
def expiry_after_the_archive_tier(config: StackConfig) -> Iterator[str]:
    expire = config.retention.archive_expire_after_days
    if expire and expire <= config.retention.archive_archive_after_days:
        yield problem(
            "archiveExpireAfterDays", expire, "0 (keep) or later than archiveArchiveAfterDays"
        )


RULES = (archive_tier_after_the_cold_tiers_minimum, expiry_after_the_archive_tier)
