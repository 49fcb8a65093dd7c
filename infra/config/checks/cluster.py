"""Cluster rules: the cloud's limits, Spark 4, and machines a fleet can run the job on."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from infra.config.checks.rule import reads
from infra.config.clouds import (
    IDLE_TIMEOUT_MINUTES,
    INSTANCE_TYPE_PATTERN,
    SPARK4_RELEASE_PREFIX,
    Cloud,
    machine_architecture,
)
from infra.config.messages import problem

if TYPE_CHECKING:
    from infra.config.stack import StackConfig


@reads("cloud", "clusterIdleTimeoutMinutes")
def idle_timeout_within_the_clouds_bounds(config: StackConfig) -> Iterator[str]:
    low, high = IDLE_TIMEOUT_MINUTES[config.cloud]
    minutes = config.cluster.idle_timeout_minutes
    if not low <= minutes <= high:
        yield problem("clusterIdleTimeoutMinutes", minutes, f"{config.cloud} allows {low}-{high}")


@reads("cloud", "clusterRelease")
def release_runs_spark_4(config: StackConfig) -> Iterator[str]:
    prefix = SPARK4_RELEASE_PREFIX[config.cloud]
    if not config.release.startswith(prefix):
        yield problem(
            "clusterRelease",
            config.release,
            f"the job needs Spark 4: use a release starting with {prefix!r}",
        )


def _machines_of(cloud: Cloud, key: str, machines: Iterable[str]) -> Iterator[str]:
    for machine in machines:
        if not re.match(INSTANCE_TYPE_PATTERN[cloud], machine):
            yield problem(key, machine, f"not a {cloud} machine type")


@reads("cloud", "clusterMasterType")
def master_type_is_the_clouds(config: StackConfig) -> Iterator[str]:
    yield from _machines_of(config.cloud, "clusterMasterType", (config.master_type,))


@reads("cloud", "clusterCoreType")
def core_type_is_the_clouds(config: StackConfig) -> Iterator[str]:
    yield from _machines_of(config.cloud, "clusterCoreType", (config.core_type,))


@reads("cloud", "clusterTaskTypes")
def task_types_are_the_clouds(config: StackConfig) -> Iterator[str]:
    yield from _machines_of(config.cloud, "clusterTaskTypes", config.task_types)


@reads("cloud", "clusterMasterType", "clusterCoreType", "clusterTaskTypes")
def machines_share_one_architecture(config: StackConfig) -> Iterator[str]:
    machines = {config.master_type, config.core_type, *config.task_types}
    if len({machine_architecture(config.cloud, m) for m in machines}) > 1:
        yield problem(
            "clusterTaskTypes",
            sorted(machines),
            "master, core and task machines must share one CPU architecture (x86_64 or Arm): "
            "the job's dependencies are built for one",
        )


@reads("cloud", "clusterTaskTypes")
def task_types_listed_once(config: StackConfig) -> Iterator[str]:
    if len(set(config.task_types)) != len(config.task_types):
        yield problem("clusterTaskTypes", list(config.task_types), "list each type once")


@reads("cloud", "clusterTaskCapacity", "clusterTaskTypes")
def spot_fleet_has_types_to_choose_from(config: StackConfig) -> Iterator[str]:
    spot = config.cluster.task_capacity == "spot"
    if config.cloud == "aws" and spot and not 3 <= len(config.task_types) <= 30:
        yield problem(
            "clusterTaskTypes",
            list(config.task_types),
            "a spot task fleet needs 3 to 30 instance types to find capacity",
        )


@reads("cloud", "clusterTaskTypes")
def fleet_types_share_one_size(config: StackConfig) -> Iterator[str]:
    sizes = {machine.partition(".")[2] for machine in config.task_types}
    if config.cloud == "aws" and len(sizes) > 1:
        yield problem(
            "clusterTaskTypes",
            list(config.task_types),
            "use one size (e.g. all xlarge): fleet capacity counts instances",
        )


@reads("cloud", "clusterTaskTypes")
def secondary_workers_have_one_type(config: StackConfig) -> Iterator[str]:
    if config.cloud == "gcp" and len(config.task_types) != 1:
        yield problem(
            "clusterTaskTypes", list(config.task_types), "Dataproc secondary workers take one type"
        )


@reads("cloud", "clusterTaskCapacity")
def task_capacity_is_the_clouds(config: StackConfig) -> Iterator[str]:
    if config.cloud == "aws" and config.cluster.task_capacity == "preemptible":
        yield problem(
            "clusterTaskCapacity", config.cluster.task_capacity, "aws allows spot or on_demand"
        )


@reads("clusterTaskMin", "clusterTaskMax")
def task_min_within_max(config: StackConfig) -> Iterator[str]:
    cluster = config.cluster
    if cluster.task_min > cluster.task_max:
        yield problem(
            "clusterTaskMin",
            cluster.task_min,
            f"must not exceed clusterTaskMax ({cluster.task_max})",
        )


@reads("cloud", "clusterCoreCount")
def dataproc_has_two_workers(config: StackConfig) -> Iterator[str]:
    count = config.cluster.core_count
    if config.cloud == "gcp" and count < 2:
        yield problem("clusterCoreCount", count, "a standard Dataproc cluster needs 2 or more")


RULES = (
    idle_timeout_within_the_clouds_bounds,
    release_runs_spark_4,
    master_type_is_the_clouds,
    core_type_is_the_clouds,
    task_types_are_the_clouds,
    machines_share_one_architecture,
    task_types_listed_once,
    spot_fleet_has_types_to_choose_from,
    fleet_types_share_one_size,
    secondary_workers_have_one_type,
    task_capacity_is_the_clouds,
    task_min_within_max,
    dataproc_has_two_workers,
)
