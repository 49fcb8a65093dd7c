"""Broker rules: the log's retention within the cloud's bounds, shards only when provisioned."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from infra.config.checks.rule import reads
from infra.config.clouds import BROKER_RETENTION_HOURS
from infra.config.messages import problem

if TYPE_CHECKING:
    from infra.config.stack import StackConfig


@reads("cloud", "brokerRetentionHours")
def retention_within_the_clouds_bounds(config: StackConfig) -> Iterator[str]:
    low, high = BROKER_RETENTION_HOURS[config.cloud]
    hours = config.broker.retention_hours
    if not low <= hours <= high:
        yield problem("brokerRetentionHours", hours, f"{config.cloud} allows {low} to {high}")


@reads("brokerShards", "brokerMode")
def shards_only_when_provisioned(config: StackConfig) -> Iterator[str]:
    if config.broker.shards is not None and config.broker.mode == "on_demand":
        yield problem(
            "brokerShards", config.broker.shards, "leave it unset when brokerMode is on_demand"
        )


RULES = (retention_within_the_clouds_bounds, shards_only_when_provisioned)
