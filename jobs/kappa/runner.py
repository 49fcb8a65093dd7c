"""Running the pipeline until told to stop: signals, a stop marker, or a failed query.

A graceful stop lets the batch in flight finish and then stops the query between batches,
so the process exits 0 with every started batch committed. Infra writes the stop marker to
stop a run before it starts the replacement.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from pyspark.sql import SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from . import objects, pipeline
from .sinks import ServingSink
from .spec import PipelineSpec

logger = logging.getLogger(__name__)

_POLL_SECONDS = 2
# How long a stop waits for the batch in flight before interrupting it anyway: a replay of
# an interrupted batch is harmless (every write is idempotent), an endless wait is not.
_DRAIN_TIMEOUT_SECONDS = 600.0


class StopRequest:
    """Set by a signal, by the stop marker appearing, or by the caller."""

    def __init__(self, marker_uri: str | None = None) -> None:
        self._event = threading.Event()
        self._marker_uri = marker_uri
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            self.set(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def poll(self) -> bool:
        if not self._event.is_set() and self._marker_uri:
            try:
                if objects.exists(self._marker_uri):
                    self.set(f"stop marker {self._marker_uri}")
            except objects.ObjectStoreError as error:
                # A store hiccup must not stop (or crash) a healthy pipeline.
                logger.warning("could not check the stop marker: %s", error)
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


@dataclass
class RunResult:
    batches: int
    stop_reason: str | None
    # batch id -> rows Spark dropped as older than its watermark: none unless something is
    # wrong (pipeline.rows_dropped_by_watermark).
    dropped_by_watermark: dict[int, int] = field(default_factory=dict)


def _stop_between_batches(query: StreamingQuery) -> None:
    deadline = time.monotonic() + _DRAIN_TIMEOUT_SECONDS
    while query.isActive and query.status["isTriggerActive"]:
        if time.monotonic() > deadline:
            logger.warning("the batch in flight did not finish in time; stopping anyway")
            break
        time.sleep(0.05)
    query.stop()


def supervise(
    query: StreamingQuery,
    stop: StopRequest,
    *,
    poll_seconds: int = _POLL_SECONDS,
    on_poll: Callable[[], None] | None = None,
) -> str | None:
    """Wait until the query fails (raises) or a stop is requested (returns its reason)."""
    while True:
        if query.awaitTermination(poll_seconds):
            # Terminated without our stop: awaitTermination raises if it failed.
            return None
        if on_poll is not None:
            on_poll()
        if stop.poll():
            logger.info("stopping after the batch in flight: %s", stop.reason)
            _stop_between_batches(query)
            query.awaitTermination()
            return stop.reason


def run(
    spark: SparkSession,
    spec: PipelineSpec,
    stop: StopRequest,
    *,
    sink: ServingSink | None = None,
    poll_seconds: int = _POLL_SECONDS,
) -> RunResult:
    query, writer = pipeline.start(spark, spec, sink=sink)
    dropped: dict[int, int] = {}

    def report_dropped() -> None:
        for batch_id, count in pipeline.rows_dropped_by_watermark(query).items():
            if batch_id not in dropped:
                dropped[batch_id] = count
                logger.error(
                    "batch %d: Spark dropped %d rows as older than the deduplication's "
                    "watermark; they are neither archived nor dead-lettered",
                    batch_id,
                    count,
                )

    reason = supervise(query, stop, poll_seconds=poll_seconds, on_poll=report_dropped)
    report_dropped()
    return RunResult(batches=len(writer.history), stop_reason=reason, dropped_by_watermark=dropped)
