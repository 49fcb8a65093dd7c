"""Pipeline rules: versions the job accepts, one of them live, a position the source can seek."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from kappa.spec import PIPELINE_VERSION_PATTERN

from infra.config.checks.rule import reads
from infra.config.clouds import ack_deadline_for
from infra.config.keys import PROJECT
from infra.config.messages import problem

if TYPE_CHECKING:
    from infra.config.stack import StackConfig


@reads("pipelineVersions")
def versions_are_the_specs(config: StackConfig) -> Iterator[str]:
    versions = config.pipeline.versions
    for version in versions:
        if not re.match(PIPELINE_VERSION_PATTERN, version):
            yield problem("pipelineVersions", version, f"expected {PIPELINE_VERSION_PATTERN}")
    if len(set(versions)) != len(versions):
        yield f"{PROJECT}:pipelineVersions: got {list(versions)}; repeated"


@reads("pipelineVersions", "pipelineLiveVersion")
def one_version_is_live(config: StackConfig) -> Iterator[str]:
    live, versions = config.pipeline.live_version, list(config.pipeline.versions)
    if live is not None and live not in versions:
        yield problem("pipelineLiveVersion", live, f"must be one of {versions}")
    if live is None and len(versions) > 1:
        yield (
            f"{PROJECT}:pipelineLiveVersion is required when several versions run "
            f"({versions}): name the one readers use"
        )


@reads("pipelineStartingPosition")
def starting_position_is_an_end_or_a_time(config: StackConfig) -> Iterator[str]:
    position = config.pipeline.starting_position
    if position not in ("earliest", "latest") and not _zoned_time(position):
        yield problem(
            "pipelineStartingPosition",
            position,
            "expected earliest, latest or an ISO-8601 time with a zone, like 2026-01-31T00:00:00Z",
        )


@reads(
    "cloud", "pipelineDeduplicationSeconds", "pipelineWatermarkSeconds", "pipelineTriggerSeconds"
)
def repeats_are_remembered_past_a_redelivery(config: StackConfig) -> Iterator[str]:
    """Pub/Sub redelivers what a crashed job had pulled once its ack deadline has passed: the
    job must still remember those ids then, or it counts them twice."""
    if config.cloud != "gcp":
        return
    pipeline = config.pipeline
    horizon = pipeline.deduplication_seconds or pipeline.watermark_seconds
    deadline = ack_deadline_for(pipeline.trigger_seconds)
    if horizon < deadline:
        key = "pipelineDeduplicationSeconds"
        yield problem(
            key,
            pipeline.deduplication_seconds,
            f"the deduplication horizon ({horizon} s; 0 takes pipelineWatermarkSeconds) must be "
            f"at least the subscription's ack deadline ({deadline} s for a "
            f"{pipeline.trigger_seconds} s trigger), after which Pub/Sub redelivers what a "
            "crashed job had pulled",
        )


def _zoned_time(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


@reads("eventIdField", "eventKeyField", "eventTimeField", "eventValueFields")
def event_fields_are_distinct(config: StackConfig) -> Iterator[str]:
    pipeline = config.pipeline
    fields = [
        pipeline.event_id_field,
        pipeline.event_key_field,
        pipeline.event_time_field,
        *pipeline.event_value_fields,
    ]
    repeated = sorted({f for f in fields if fields.count(f) > 1})
    if repeated:
        yield f"{PROJECT}:eventValueFields: event field names repeat: {repeated}"


RULES = (
    versions_are_the_specs,
    one_version_is_live,
    starting_position_is_an_end_or_a_time,
    event_fields_are_distinct,
    repeats_are_remembered_past_a_redelivery,
)
