"""The streaming job as a child process: `python -m kappa --spec URI --stop-marker URI`.

A child process (in its own process group) so that it can be killed outright, as a crashed
driver would be, and started again from its checkpoint. Spark is configured the way a
cluster's spark-defaults.conf would: a generated SPARK_CONF_DIR, so the job itself is run
unchanged. Its own log goes to logs/job.log (with a line per batch: events on time, late
and malformed); Spark's progress reports (input rows, duplicates dropped, rows dropped by the
deduplication's watermark, per batch) go to logs/spark-progress.log, where the runner reads
them for the progress line, the summary and the check.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .stand_ins import LOOPBACK, REPO, SetupError

JOBS = REPO / "jobs"

_PROGRESS_START = re.compile(r"Streaming query made progress: (\{)\s*$")
# kappa.pipeline.BatchWriter's line per batch.
_BATCH_LINE = re.compile(r"batch (\d+): (\d+) on time, (\d+) late, (\d+) malformed events")

# Spark's own log: warnings to the console (the job's log file), and the progress reports
# (logged at INFO by ProgressReporter) to a file of their own, one JSON document each.
_LOG4J = """\
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{HH:mm:ss}} %p %c{{1}}: %m%n%ex
appender.progress.type = File
appender.progress.name = progress
appender.progress.fileName = {progress}
appender.progress.layout.type = PatternLayout
appender.progress.layout.pattern = %m%n
logger.progress.name = org.apache.spark.sql.execution.streaming.ProgressReporter
logger.progress.level = info
logger.progress.additivity = false
logger.progress.appenderRef.progress.ref = progress
"""


def write_spark_conf(directory: Path, defaults: Mapping[str, str], progress_log: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"{name} {value}" for name, value in sorted(defaults.items())]
    (directory / "spark-defaults.conf").write_text("\n".join(lines) + "\n")
    (directory / "log4j2.properties").write_text(_LOG4J.format(progress=progress_log))
    return directory


@dataclass
class BatchProgress:
    input_rows: int = 0
    duplicates_dropped: int = 0
    # Rows Spark's deduplication dropped as older than its watermark: none, since the
    # watermark follows the batches' own time (kappa.events.deduplicate); any would be in
    # neither the archive nor the dead letters.
    dropped_by_watermark: int = 0


@dataclass(frozen=True)
class BatchCounts:
    """What the job logged of a batch (kappa.pipeline.BatchCounts)."""

    on_time: int
    late: int
    malformed: int


@dataclass
class JobMetrics:
    """What the job and Spark reported, per batch id (a replayed batch replaces its entry)."""

    batches: dict[int, BatchProgress] = field(default_factory=dict)
    written: dict[int, BatchCounts] = field(default_factory=dict)

    @property
    def input_rows(self) -> int:
        return sum(b.input_rows for b in self.batches.values())

    @property
    def duplicates_dropped(self) -> int:
        return sum(b.duplicates_dropped for b in self.batches.values())

    @property
    def dropped_by_watermark(self) -> int:
        return sum(b.dropped_by_watermark for b in self.batches.values())

    @property
    def late_written(self) -> int:
        """Late events the job logged as dead-lettered and archived."""
        return sum(c.late for c in self.written.values())


class _Follower:
    """Reads what was appended to a file since the last call, whole lines only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = ""

    def new_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("r", errors="replace") as handle:
            handle.seek(self._offset)
            text = handle.read()
            self._offset = handle.tell()
        text = self._partial + text
        lines = text.split("\n")
        self._partial = lines.pop()
        return lines


class JobProcess:
    def __init__(
        self,
        spec_uri: str,
        stop_marker_uri: str,
        env: Mapping[str, str],
        spark_defaults: Mapping[str, str],
        logs: Path,
        master: str = "local[2]",
    ) -> None:
        self.spec_uri = spec_uri
        self.stop_marker_uri = stop_marker_uri
        self.logs = logs
        self.log = logs / "job.log"
        self.progress_log = logs / "spark-progress.log"
        conf = write_spark_conf(logs.parent / "spark-conf", spark_defaults, self.progress_log)
        self._env = {
            **_clean_environment(),
            **env,
            "SPARK_CONF_DIR": str(conf),
            # Spark binds its driver to loopback (and stops warning about the host name).
            "SPARK_LOCAL_IP": LOOPBACK,
            "PYSPARK_PYTHON": sys.executable,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(JOBS), os.environ.get("PYTHONPATH", "")) if p
            ),
            "PYTHONUNBUFFERED": "1",
        }
        self._master = master
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.metrics = JobMetrics()
        self._job_lines = _Follower(self.log)
        self._progress_lines = _Follower(self.progress_log)
        self._progress_block: list[str] | None = None

    def start(self) -> None:
        if self.running:
            raise RuntimeError("the job is already running")
        self.logs.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        command = [
            sys.executable,
            "-m",
            "kappa",
            "--spec",
            self.spec_uri,
            "--stop-marker",
            self.stop_marker_uri,
            "--master",
            self._master,
        ]
        with self.log.open("ab") as sink:
            sink.write(f"\n==== start {self.starts}: {' '.join(command)}\n".encode())
            sink.flush()
            self._process = subprocess.Popen(
                command,
                cwd=JOBS,
                env=self._env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: a kill takes the driver, its JVM and Python workers.
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def kill(self) -> None:
        """SIGKILL to the whole process group: no chance to finish anything."""
        if self._process is None:
            return
        _signal_group(self._process, signal.SIGKILL)
        self._process.wait(timeout=30)
        self.kills += 1

    def wait_stopped(self, timeout: float) -> int:
        """After the stop marker: wait for the batch in flight to finish and the job to exit."""
        assert self._process is not None
        try:
            return self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self._process, signal.SIGTERM)
            try:
                return self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
                raise SetupError(
                    f"the job did not stop within {timeout:.0f}s of its stop marker and was "
                    f"killed; see {self.log}"
                ) from None

    def terminate(self) -> None:
        """Cleanup on the way out (Ctrl-C, a failure): SIGTERM asks for a graceful stop."""
        if self._process is None or self._process.poll() is not None:
            return
        _signal_group(self._process, signal.SIGTERM)
        try:
            self._process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.kill()

    def refresh(self) -> JobMetrics:
        for line in self._job_lines.new_lines():
            found = _BATCH_LINE.search(line)
            if found:
                batch, on_time, late, malformed = (int(g) for g in found.groups())
                self.metrics.written[batch] = BatchCounts(on_time, late, malformed)
        for line in self._progress_lines.new_lines():
            self._read_progress(line)
        return self.metrics

    def _read_progress(self, line: str) -> None:
        if self._progress_block is None:
            if _PROGRESS_START.search(line):
                self._progress_block = ["{"]
            return
        self._progress_block.append(line)
        if line != "}":
            return
        text, self._progress_block = "\n".join(self._progress_block), None
        try:
            report = json.loads(text)
        except json.JSONDecodeError:
            return  # a report cut short by a kill
        operators = report.get("stateOperators") or []
        self.metrics.batches[int(report["batchId"])] = BatchProgress(
            input_rows=int(report.get("numInputRows") or 0),
            duplicates_dropped=sum(
                int((op.get("customMetrics") or {}).get("numDroppedDuplicateRows", 0))
                for op in operators
            ),
            dropped_by_watermark=sum(
                int(op.get("numRowsDroppedByWatermark", 0)) for op in operators
            ),
        )

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no job log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, signum)


def _clean_environment() -> dict[str, str]:
    """The caller's environment without anything that could point the job at a real cloud."""
    dropped = ("AWS_", "GOOGLE_", "CLOUDSDK_", "PUBSUB_", "BIGTABLE_", "SPARK_", "PYSPARK_")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, job: JobProcess, interval: float = 0.5
) -> None:
    """Poll `condition()` until true; fail early (with the job's log) if the job died."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if not job.running:
            raise SetupError(
                f"the job exited (code {job.returncode}) while waiting for {what}; the end of "
                f"{job.log}:\n{job.tail()}"
            )
        if time.monotonic() > deadline:
            raise SetupError(f"timed out after {timeout:.0f}s waiting for {what}; see {job.log}")
        time.sleep(interval)
