"""Builds the job's pipeline spec from the stack's configuration and its resources' outputs.

Cloud-neutral: each cloud passes in its own source, sink and storage URIs.
"""

from __future__ import annotations

from datetime import datetime

from kappa.spec import EventFormat, PipelineSpec, Sink, Source, Storage, Windowing

from infra.config import PipelineConfig


def build_spec(
    pipeline: PipelineConfig,
    version: str,
    *,
    source: Source,
    sink: Sink,
    storage: Storage,
) -> PipelineSpec:
    position = pipeline.starting_position
    return PipelineSpec(
        pipeline_version=version,
        source=source,
        starting_position=(
            position if position in ("earliest", "latest") else datetime.fromisoformat(position)
        ),
        event=EventFormat(
            id_field=pipeline.event_id_field,
            key_field=pipeline.event_key_field,
            time_field=pipeline.event_time_field,
            value_fields=pipeline.event_value_fields,
        ),
        windowing=Windowing(
            window_seconds=pipeline.window_seconds,
            watermark_seconds=pipeline.watermark_seconds,
            deduplication_seconds=pipeline.deduplication_seconds or None,
            trigger_seconds=pipeline.trigger_seconds,
        ),
        storage=storage,
        sink=sink,
    )
