"""`run`: the whole pipeline on one machine, checked against the truth.

stand-ins up -> stream, storage and table created -> the job started (it polls the empty
stream first) -> synthetic events sent at the given rate while progress is shown (optionally
killing the job and starting it again, or splitting a shard) -> wait until every output
equals what was sent -> the job stopped through its stop marker -> final check and summary ->
everything shut down, also on Ctrl-C or a failure.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from kappa.spec import SERVING_KEY_ATTRIBUTE, SERVING_WINDOW_ATTRIBUTE, Windowing

from .flavours import FLAVOURS, Flavour, Ports, Settings
from .job import JobMetrics, JobProcess, wait_until
from .producer import send_paced
from .stand_ins import REPO, SetupError, require_java
from .synthetic import Message, Mix, Truth, generate, truth_of

DEFAULT_WORKDIR = REPO / ".local" / "run"
# The first run of the aws flavour fetches the S3A connector (about 20 MB) before the query
# starts; later starts take 10-20 s.
_QUERY_START_TIMEOUT = 600.0
_PROGRESS_EVERY = 2.0
# On-time events come up to 2 s out of order, and shards read in one batch may differ by a
# batch's worth of events: a shorter watermark could drop on-time events as late.
_MIN_WATERMARK_SECONDS = 30


@dataclass(frozen=True)
class RunOptions:
    flavour: str = "aws"
    mix: Mix = field(
        default_factory=lambda: Mix(events=3000, malformed=0.02, duplicates=0.05, late=0.01)
    )
    window_seconds: int = 60
    watermark_seconds: int = 600
    trigger_seconds: int = 2
    workdir: Path = DEFAULT_WORKDIR
    ports: Ports = field(default_factory=Ports)
    master: str = "local[2]"
    # Fault injection: SIGKILL the job (and start it again) after these shares of the events.
    kill_at: tuple[float, ...] = ()
    # Split a Kinesis shard after this share of the events (aws and postgres flavours).
    split_at: float | None = None
    # Extra seconds the job polls the empty stream before the first event is sent.
    idle_seconds: float = 0.0
    # How long the job may take, after the last event, to account for every event.
    catch_up_timeout: float = 300.0


@dataclass
class RunReport:
    flavour: str
    truth: Truth
    serving: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    archived_ids: list[str]
    metrics: JobMetrics
    committed_batches: int
    job_starts: int
    job_kills: int
    kills_mid_batch: int
    # The batches the kills hit (their input rows are in metrics, from their replay).
    killed_batches: list[int]
    job_exit_code: int | None
    split_shards: list[str]
    seconds: float
    locations: list[tuple[str, str]]
    problems: list[str] = field(default_factory=list)
    # When the job's query started and when the first event was sent (monotonic seconds).
    query_started_at: float = 0.0
    first_event_at: float = 0.0
    # The ports the stand-ins listened on (free again once run() returns).
    ports_used: tuple[int, ...] = ()
    # The source's end offset in Spark's last logged batch.
    source_offset: Any = None

    @property
    def ok(self) -> bool:
        return not self.problems


def serving_view(
    rows: Iterable[Mapping[str, Any]], value_fields: tuple[str, ...]
) -> dict[tuple[str, str], dict[str, float]]:
    from kappa.events import stat_columns

    columns = [c for name in value_fields for c in stat_columns(name)]
    return {
        (str(row[SERVING_KEY_ATTRIBUTE]), str(row[SERVING_WINDOW_ATTRIBUTE])): {
            c: float(row[c]) for c in columns if c in row
        }
        for row in rows
    }


def expected_view(truth: Truth) -> dict[tuple[str, str], dict[str, float]]:
    from kappa.events import stat_columns

    view: dict[tuple[str, str], dict[str, float]] = {}
    for where, per_field in truth.aggregates.items():
        row = view.setdefault(where, {})
        for name, stats in per_field.items():
            count, total, low, high = stat_columns(name)
            row.update({count: stats.count, total: stats.total, low: stats.low, high: stats.high})
    return view


def _examples(items: Iterable[Any], limit: int = 3) -> str:
    listed = sorted(items, key=str)
    shown = ", ".join(str(i) for i in listed[:limit])
    return shown + (f" (+{len(listed) - limit} more)" if len(listed) > limit else "")


def compare(
    truth: Truth,
    serving: list[dict[str, Any]],
    dead_letters: list[dict[str, Any]],
    archived_ids: list[str],
) -> list[str]:
    """Everything in which the outputs differ from the truth; empty when they are exact."""
    problems = []
    expected = expected_view(truth)
    actual = serving_view(serving, truth.value_fields)
    if missing := expected.keys() - actual.keys():
        problems.append(f"serving: {len(missing)} (key, window) rows missing: {_examples(missing)}")
    if extra := actual.keys() - expected.keys():
        problems.append(f"serving: {len(extra)} rows the truth lacks: {_examples(extra)}")
    differing = [
        f"{where} {column}: store {actual[where].get(column)} != truth {value}"
        for where in expected.keys() & actual.keys()
        for column, value in expected[where].items()
        if actual[where].get(column) != value
    ]
    if differing:
        problems.append(f"serving: {len(differing)} values differ: {_examples(differing)}")

    problems += _dead_letter_problems(truth, dead_letters)

    archived = Counter(archived_ids)
    if doubled := [i for i, n in archived.items() if n > 1]:
        problems.append(
            f"archive: {len(doubled)} events archived more than once: {_examples(doubled)}"
        )
    if missing_ids := truth.archived_ids - archived.keys():
        problems.append(f"archive: {len(missing_ids)} events missing: {_examples(missing_ids)}")
    if extra_ids := archived.keys() - truth.archived_ids:
        problems.append(f"archive: {len(extra_ids)} unexpected events: {_examples(extra_ids)}")
    return problems


def _dead_letter_problems(truth: Truth, dead_letters: list[dict[str, Any]]) -> list[str]:
    """Per record: every malformed record sent is one dead letter, also when several carry the
    same bytes. The records are told apart by their identity in the broker (record_id), which
    the truth cannot know, so the payloads of the dead-lettered records are compared with the
    payloads sent, as multisets."""
    problems = []
    records = Counter(str(d.get("record_id") or "") for d in dead_letters)
    if anonymous := records.pop("", 0):
        problems.append(f"dead letters: {anonymous} without the record's identity (record_id)")
    if twice := {r: n for r, n in records.items() if n > 1}:
        problems.append(
            f"dead letters: {len(twice)} record(s) dead-lettered more than once: {_examples(twice)}"
        )
    sent_bad = Counter(m.payload for m in truth.malformed)
    lettered = Counter(str(d.get("payload")) for d in dead_letters)
    if missing_letters := sent_bad - lettered:
        problems.append(
            f"dead letters: {sum(missing_letters.values())} malformed records missing: "
            f"{_examples(missing_letters)}"
        )
    if extra_letters := lettered - sent_bad:
        problems.append(
            f"dead letters: {sum(extra_letters.values())} more than were sent malformed: "
            f"{_examples(extra_letters)}"
        )
    if unexplained := [d for d in dead_letters if not d.get("reason")]:
        problems.append(f"dead letters: {len(unexplained)} without a reason")
    return problems


class _Progress:
    """One progress line: rewritten in place on a terminal, a line every 10 s otherwise."""

    def __init__(self, out: TextIO, total: int, job: JobProcess, flavour: Flavour) -> None:
        self._out = out
        self._tty = out.isatty()
        self._total = total
        self._job = job
        self._flavour = flavour
        self._started = time.monotonic()
        self._last = 0.0
        self._last_printed = 0.0
        self.committed: set[int] = set()

    def update(self, sent: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < _PROGRESS_EVERY:
            return
        self._last = now
        metrics = self._job.refresh()
        # Progress is best effort (a listing may fail while moto is busy); the check is not.
        with contextlib.suppress(Exception):
            self.committed = self._flavour.committed_batches()
        lag = max(0, sent - metrics.input_rows) if metrics.batches else sent
        line = (
            f"[{now - self._started:6.1f}s] sent {sent}/{self._total}  "
            f"batches {len(self.committed)}  read {metrics.input_rows}  lag {lag} events"
        )
        if self._tty:
            self._out.write(f"\r{line:<100}")
            self._out.flush()
        elif force or now - self._last_printed >= 10:
            self._last_printed = now
            print(line, file=self._out, flush=True)

    def note(self, text: str) -> None:
        if self._tty:
            self._out.write("\n")
        print(text, file=self._out, flush=True)

    def end(self) -> None:
        if self._tty:
            self._out.write("\n")
            self._out.flush()


class _Faults:
    """after_slice hook: progress, and the kills and split the options ask for."""

    def __init__(
        self,
        options: RunOptions,
        total: int,
        job: JobProcess,
        flavour: Flavour,
        progress: _Progress,
    ) -> None:
        self._kills = sorted(options.kill_at)
        self._split = options.split_at
        self._total = total
        self._job = job
        self._flavour = flavour
        self._progress = progress
        self._last_planned = -1
        # Events sent when the job was last (re)started: the next kill waits for a batch of
        # the new incarnation's own, which only events sent after that start can make.
        self._sent_at_start = 0
        self._quiet_before_a_late_kill = max(10.0, 3 * options.trigger_seconds)
        self.split_shards: list[str] = []
        # Kills that hit a batch before its commit (the rest landed just after one).
        self.kills_mid_batch = 0
        self.killed_batches: list[int] = []

    def __call__(self, sent: list[Message]) -> None:
        self._progress.update(len(sent))
        due = self._kills and len(sent) >= self._kills[0] * self._total
        if due and len(sent) > self._sent_at_start:
            self._kills.pop(0)
            self._kill_and_restart(len(sent))
        if self._split is not None and len(sent) >= self._split * self._total:
            self._split = None
            self._split_a_shard(sent)

    def _kill_and_restart(self, sent: int) -> None:
        # Kill in the middle of a batch this incarnation planned itself (offsets logged, not yet
        # committed), so that every incarnation first replays the batch the previous one was
        # killed in: the crash that leaves half-written outputs and forces a replay.
        in_flight: list[int] = []
        # (batch, when first seen done) of the last batch of this incarnation's seen committed.
        done: list[tuple[int, float]] = []

        def batch_started_here() -> bool:
            # Not before events flow: the first batches of a query may carry none.
            if not self._flavour.watermark_moved():
                return False
            batch = self._flavour.batch_in_flight()
            if batch is not None and batch > self._last_planned:
                in_flight[:] = [batch]
                return True
            # One that ran between two looks: the stream is paused, so there may be no later
            # batch to wait for. Take it once no other has started for a few triggers.
            last = self._flavour.last_planned_batch()
            if last is None or last <= self._last_planned:
                return False
            if not done or done[0][0] != last:
                done[:] = [(last, time.monotonic())]
            if time.monotonic() - done[0][1] >= self._quiet_before_a_late_kill:
                in_flight[:] = [last]
                return True
            return False

        wait_until(batch_started_here, 300, "a batch in flight to kill", self._job, interval=0.5)
        self._job.kill()
        batch = in_flight[0]
        self.killed_batches.append(batch)
        mid_batch = batch not in self._flavour.committed_batches()
        self.kills_mid_batch += mid_batch
        last = self._flavour.last_planned_batch()
        self._last_planned = -1 if last is None else last
        when = "before its commit" if mid_batch else "just after its commit"
        self._progress.note(
            f"  killed the job (SIGKILL) in batch {batch} ({when}), after {sent} events; "
            "starting it again"
        )
        self._job.start()
        self._sent_at_start = sent

    def _split_a_shard(self, sent: list[Message]) -> None:
        shard = self._flavour.split_shard()
        self.split_shards.append(shard)
        self._progress.note(f"  split Kinesis shard {shard} after {len(sent)} events")


class _Interrupted(Exception):
    pass


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def run(options: RunOptions, out: TextIO = sys.stdout) -> RunReport:
    """Run the local pipeline; raises SetupError when something it needs is missing."""
    began = time.monotonic()
    require_java()
    flavour_type = FLAVOURS.get(options.flavour)
    if flavour_type is None:
        raise SetupError(f"unknown flavour {options.flavour!r}: one of {', '.join(FLAVOURS)}")
    if options.watermark_seconds < _MIN_WATERMARK_SECONDS:
        raise SetupError(
            f"a watermark of {options.watermark_seconds}s is shorter than how far out of order "
            f"the synthetic events and micro-batches may be; use {_MIN_WATERMARK_SECONDS}s or "
            "more, or exact totals cannot be promised"
        )
    if options.split_at is not None and options.flavour == "gcp":
        raise SetupError(
            "Pub/Sub has no shards: --split-shard-at needs the aws or postgres flavour"
        )
    _fresh_workdir(options.workdir)
    windowing = Windowing(
        window_seconds=options.window_seconds,
        watermark_seconds=options.watermark_seconds,
        trigger_seconds=options.trigger_seconds,
    )
    flavour = flavour_type(Settings(options.workdir, windowing, options.ports))
    value_fields = tuple(flavour.settings.event.value_fields)

    def outputs_differ(sent: list[Message]) -> list[str]:
        truth = truth_of(sent, window_seconds=options.window_seconds, value_fields=value_fields)
        return compare(
            truth, flavour.serving_rows(), flavour.dead_letters(), flavour.archived_ids()
        )

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM,)}
    if _in_main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        with ExitStack() as stack:
            print(
                f"== kappa local run: {flavour.name} flavour ({flavour.stand_ins})",
                file=out,
                flush=True,
            )
            flavour.start(stack)
            flavour.provision()
            spec_uri = flavour.publish_spec()
            job = JobProcess(
                spec_uri,
                flavour.stop_marker_uri,
                flavour.job_env(),
                flavour.spark_defaults(),
                flavour.logs,
                options.master,
            )
            stack.callback(job.terminate)
            print(
                f"starting the job: python -m kappa --spec {spec_uri} (log: {job.log})",
                file=out,
                flush=True,
            )
            job.start()
            wait_until(flavour.query_started, _QUERY_START_TIMEOUT, "the job's query to start", job)
            query_started_at = time.monotonic()
            # The job polls the empty stream for a couple of triggers before data arrives.
            idle = max(options.idle_seconds, 2.0 * options.trigger_seconds)
            wait_until(
                lambda: time.monotonic() - query_started_at >= idle,
                idle + 60,
                "the job to poll the empty stream",
                job,
            )

            messages = generate(
                options.mix,
                datetime.now(UTC),
                event_format=flavour.settings.event,
                watermark_seconds=options.watermark_seconds,
            )
            progress = _Progress(out, len(messages), job, flavour)
            faults = _Faults(options, len(messages), job, flavour, progress)
            channel = flavour.channel()
            stack.callback(channel.close)
            print(
                f"sending {len(messages)} events to {channel.description} at "
                f"{options.mix.rate or 'unlimited'}/s",
                file=out,
                flush=True,
            )
            first_event_at = time.monotonic()
            sent = send_paced(
                messages,
                channel,
                rate=options.mix.rate,
                late_allowed=_late_gate(flavour),
                after_slice=faults,
            )
            truth = truth_of(sent, window_seconds=options.window_seconds, value_fields=value_fields)

            matched_since: list[float] = []
            checked_at = [0.0]

            def caught_up() -> bool:
                # Duplicates and late events change no output, so matching outputs alone may
                # come before the job has read them: wait until Spark reports every event
                # read, or (its reports are lost when a job is killed) a few quiet triggers.
                progress.update(len(sent))
                behind = job.refresh().input_rows < len(sent)
                if behind and time.monotonic() - checked_at[0] < 10:
                    return False  # reading every output costs; Spark says it is not there yet
                checked_at[0] = time.monotonic()
                if outputs_differ(sent):
                    matched_since.clear()
                    return False
                matched_since[:] = matched_since or [time.monotonic()]
                return not behind or (
                    time.monotonic() - matched_since[0] >= 5 * options.trigger_seconds
                )

            try:
                wait_until(
                    caught_up,
                    options.catch_up_timeout,
                    "the job to account for every event",
                    job,
                    interval=2.0,
                )
            except SetupError as error:
                if not job.running:
                    raise
                progress.note(f"  {error}")
            progress.update(len(sent), force=True)
            progress.end()
            print("stopping the job through its stop marker", file=out, flush=True)
            flavour.request_stop()
            exit_code = job.wait_stopped(timeout=300)
            metrics = job.refresh()
            report = RunReport(
                flavour=flavour.name,
                truth=truth,
                serving=flavour.serving_rows(),
                dead_letters=flavour.dead_letters(),
                archived_ids=flavour.archived_ids(),
                metrics=metrics,
                committed_batches=len(flavour.committed_batches()),
                job_starts=job.starts,
                job_kills=job.kills,
                kills_mid_batch=faults.kills_mid_batch,
                killed_batches=faults.killed_batches,
                job_exit_code=exit_code,
                split_shards=faults.split_shards,
                seconds=0.0,
                locations=flavour.locations(),
                query_started_at=query_started_at,
                first_event_at=first_event_at,
                ports_used=flavour.ports_used(),
                source_offset=flavour.last_source_offset(),
            )
            report.problems = compare(
                truth, report.serving, report.dead_letters, report.archived_ids
            )
            if exit_code != 0:
                report.problems.append(f"the job exited with code {exit_code}; see {job.log}")
            print("shutting down the stand-ins", file=out, flush=True)
    except _Interrupted as stop:
        raise SetupError(f"interrupted ({stop}); everything started was shut down") from None
    finally:
        if _in_main_thread():
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    report.seconds = time.monotonic() - began
    return report


_WORKDIR_MARK = ".kappa-local-run"


def _fresh_workdir(workdir: Path) -> None:
    """Empty the work directory of the previous run; never a directory this did not make."""
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / _WORKDIR_MARK).exists():
            raise SetupError(
                f"{workdir} is not empty and not a directory of an earlier run: choose an empty "
                "or new directory with --workdir"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / _WORKDIR_MARK).write_text("emptied by every `python -m kappa_local run`\n")


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _late_gate(flavour: Flavour) -> Callable[[], bool]:
    """Open once the job's watermark has moved (see Flavour.watermark_moved); it never moves
    back, also not across restarts (it is in the checkpoint)."""
    state = {"open": False, "asked": 0.0}

    def gate() -> bool:
        if not state["open"] and time.monotonic() - state["asked"] >= 1.0:
            state["asked"] = time.monotonic()
            state["open"] = flavour.watermark_moved()
        return bool(state["open"])

    return gate


def summary(report: RunReport) -> str:
    truth = report.truth
    reasons = Counter(str(d.get("reason")) for d in report.dead_letters)
    metrics = report.metrics
    spark_says = bool(metrics.batches)
    lines = [
        f"== summary ({report.flavour} flavour, {report.seconds:.0f}s)",
        f"events sent         {truth.sent:>7}   ({truth.valid} unique on time, "
        f"{truth.duplicates} duplicates, {len(truth.malformed)} malformed, {truth.late} late)",
        f"archived            {len(report.archived_ids):>7}   events (valid, each once)",
        f"dead-lettered       {len(report.dead_letters):>7}   records "
        f"({len({str(d.get('payload')) for d in report.dead_letters})} distinct payloads)"
        + (": " + "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items())) if reasons else ""),
        f"deduplicated        {metrics.duplicates_dropped if spark_says else 'n/a':>7}   "
        f"repeats dropped by the job (Spark's metrics)",
        f"late, dropped       {metrics.late_dropped if spark_says else 'n/a':>7}   "
        f"older than the watermark (Spark's metrics)",
        f"aggregates written  {len(report.serving):>7}   rows (key, window) in the serving store",
        f"job                 {report.committed_batches:>7}   batches committed; started "
        f"{report.job_starts}x, killed {report.job_kills}x"
        + (f" ({report.kills_mid_batch} mid-batch)" if report.job_kills else "")
        + f", exit code {report.job_exit_code}"
        + (f"; split shard {', '.join(report.split_shards)}" if report.split_shards else ""),
    ]
    totals = [
        f"{name} count {sum(s[name].count for s in truth.aggregates.values())}, "
        f"sum {sum(s[name].total for s in truth.aggregates.values()):.0f}"
        for name in truth.value_fields
    ]
    if report.ok:
        lines.append(
            f"check               OK: the serving store equals the truth "
            f"({len(truth.aggregates)} key-windows; {'; '.join(totals)}); every "
            f"malformed record dead-lettered once ({len(truth.malformed)}), every valid one "
            "archived once"
        )
    else:
        lines.append("check               FAILED:")
        lines += [f"  - {p}" for p in report.problems]
    lines += [f"{name:<20}{where}" for name, where in report.locations]
    return "\n".join(lines)
