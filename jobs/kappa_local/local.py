"""`run`: the whole pipeline on one machine, checked against the truth.

stand-ins up -> stream, storage and table created -> the job started (it polls the empty
stream first) -> synthetic events sent at the given rate while progress is shown (optionally
killing the job and starting it again, splitting a shard, or starting a second pipeline
version that replays the stream from its start beside the first) -> wait until every output
equals what was sent -> the jobs stopped through their stop markers -> final check and
summary -> everything shut down, also on Ctrl-C or a failure.

With `backlog`, every event is sent before the job starts, and the job (killed while it
catches up, if asked) reads them as a backlog in batches of `batch_limit`.
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
from .synthetic import JITTER_MS, Message, Mix, Truth, generate, truth_of

DEFAULT_WORKDIR = REPO / ".local" / "run"
# The first run of the aws flavour fetches the S3A connector (about 20 MB) before the query
# starts; later starts take 10-20 s.
_QUERY_START_TIMEOUT = 600.0
_PROGRESS_EVERY = 2.0
# Lateness is judged by arrival: an on-time synthetic event reaches the broker up to its
# jitter (2 s) after its event time, plus what the producer falls behind its schedule (a
# fraction of a second). A shorter watermark would make on-time events late.
_MIN_WATERMARK_SECONDS = 5
# A kill while events are sent pauses the producer until a batch is in flight and the job is
# killed (seconds; up to a minute when batches are slow): the rest of the stream then reaches
# the broker that much after its event times. The job also forgets an event id about two
# watermarks (of its own time) after reading it, and a restart takes 20-40 s: a repeat read
# across a restart is only dropped with a watermark well beyond that.
_MIN_WATERMARK_WITH_KILLS_WHILE_SENDING = 60
# Outputs that differ from the truth the same way for this long after Spark reported every
# event read are the job's answer. (A message a killed job pulled comes back after Pub/Sub's
# 60 s ack deadline, but is not counted read until then, unless others were read twice.)
_SETTLED_SECONDS = 20.0
# The version that replays the stream beside the first (replay_at).
REPLAY_VERSION = "v2"


@dataclass(frozen=True)
class RunOptions:
    flavour: str = "aws"
    mix: Mix = field(
        default_factory=lambda: Mix(events=3000, malformed=0.02, duplicates=0.05, late=0.01)
    )
    window_seconds: int = 60
    watermark_seconds: int = 600
    # How long the job remembers an event id (its spec's deduplication_seconds); None: the
    # watermark.
    deduplication_seconds: int | None = None
    trigger_seconds: int = 2
    workdir: Path = DEFAULT_WORKDIR
    ports: Ports = field(default_factory=Ports)
    master: str = "local[2]"
    # Fault injection: SIGKILL the job (and start it again) after these shares of the events
    # were sent; with `backlog`, after the job has read these shares of the backlog.
    kill_at: tuple[float, ...] = ()
    # Split a Kinesis shard after this share of the events (aws and postgres flavours).
    split_at: float | None = None
    # Extra seconds the job polls the empty stream before the first event is sent.
    idle_seconds: float = 0.0
    # How long the job may take, after the last event, to account for every event.
    catch_up_timeout: float = 300.0
    # Send every event (at the mix's rate) before the job starts: it catches up on a backlog.
    backlog: bool = False
    # At most this many records per micro-batch: per shard (Kinesis), per batch (Pub/Sub).
    batch_limit: int | None = None
    # Kinesis: this share of the partition keys on the first of the two shards, the rest on
    # the second (aws and postgres flavours).
    skew: float | None = None
    # Start pipeline version v2 after this share of the events was sent: its own checkpoint,
    # outputs and serving table, reading the stream from its start while v1 goes on.
    replay_at: float | None = None


@dataclass
class VersionReport:
    """What one pipeline version wrote, read back, and how its job went."""

    version: str
    serving: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    # Every archived row: event_id (None for a malformed record), late, error, payload,
    # record_id (Flavour.archived).
    archive: list[dict[str, Any]]
    metrics: JobMetrics
    committed_batches: int
    job_exit_code: int | None
    problems: list[str] = field(default_factory=list)

    @property
    def archived_ids(self) -> list[str]:
        """The ids of the archived valid events (on time and late)."""
        return [str(row["event_id"]) for row in self.archive if row["event_id"] is not None]

    @property
    def archived_malformed(self) -> list[dict[str, Any]]:
        return [row for row in self.archive if row["event_id"] is None]


@dataclass(kw_only=True)
class RunReport(VersionReport):
    flavour: str
    truth: Truth
    # The messages in the order they were sent.
    sent: list[Message] = field(default_factory=list)
    job_starts: int = 0
    job_kills: int = 0
    kills_mid_batch: int = 0
    # The batches the kills hit (their input rows are in metrics, from their replay).
    killed_batches: list[int] = field(default_factory=list)
    # Events the job had read (Spark's reports) when each kill came.
    read_at_kills: list[int] = field(default_factory=list)
    split_shards: list[str] = field(default_factory=list)
    seconds: float = 0.0
    locations: list[tuple[str, str]] = field(default_factory=list)
    # When the job's query started and when the first event was sent (monotonic seconds).
    query_started_at: float = 0.0
    first_event_at: float = 0.0
    # When the last event was sent and when the job was first started (monotonic seconds).
    last_event_at: float = 0.0
    job_started_at: float = 0.0
    # The ports the stand-ins listened on (free again once run() returns).
    ports_used: tuple[int, ...] = ()
    # The source's end offset in Spark's last logged batch.
    source_offset: Any = None
    # Kinesis: records per shard, as the stream holds them at the end.
    shard_records: dict[str, int] = field(default_factory=dict)
    # The replaying version (replay_at), and how many events had been sent when it started.
    replay: VersionReport | None = None
    replay_started_after: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and (self.replay is None or not self.replay.problems)


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
    archive: list[dict[str, Any]],
    *,
    dropped_by_watermark: int = 0,
) -> list[str]:
    """Everything in which the outputs differ from the truth; empty when they are exact.

    Per record: the serving store holds the unique on-time events; the dead letters every
    malformed record and every late event once; the archive every unique valid event (on time
    and late) and every malformed record once; Spark dropped nothing as older than its
    watermark.
    """
    problems = _serving_problems(truth, serving)
    problems += _dead_letter_problems(truth, dead_letters)
    problems += _archive_problems(truth, archive)
    if dropped_by_watermark:
        problems.append(
            f"Spark dropped {dropped_by_watermark} rows as older than the deduplication's "
            "watermark: they are in neither the archive nor the dead letters"
        )
    return problems


def _serving_problems(truth: Truth, serving: list[dict[str, Any]]) -> list[str]:
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
    return problems


def _multiset_problems(
    where: str, what: str, sent: Counter[str], found: Counter[str], extra_hint: str = ""
) -> list[str]:
    problems = []
    if missing := sent - found:
        problems.append(f"{where}: {sum(missing.values())} {what} missing: {_examples(missing)}")
    if extra := found - sent:
        problems.append(
            f"{where}: {sum(extra.values())} more than were sent {what.split()[0]}: "
            f"{_examples(extra)}{extra_hint}"
        )
    return problems


def _dead_letter_problems(truth: Truth, dead_letters: list[dict[str, Any]]) -> list[str]:
    """Per record: every malformed record sent is one dead letter, also when several carry the
    same bytes, and every late event is one with reason "late" (and nothing else is). The
    records are told apart by their identity in the broker (record_id), which the truth cannot
    know, so the payloads of the dead-lettered records are compared with the payloads sent,
    as multisets."""
    from kappa.events import LATE_REASON

    problems = []
    records = Counter(str(d.get("record_id") or "") for d in dead_letters)
    if anonymous := records.pop("", 0):
        problems.append(f"dead letters: {anonymous} without the record's identity (record_id)")
    if twice := {r: n for r, n in records.items() if n > 1}:
        problems.append(
            f"dead letters: {len(twice)} record(s) dead-lettered more than once: {_examples(twice)}"
        )
    late = [d for d in dead_letters if d.get("reason") == LATE_REASON]
    bad = [d for d in dead_letters if d.get("reason") != LATE_REASON]
    problems += _multiset_problems(
        "dead letters",
        "malformed records",
        Counter(m.payload for m in truth.malformed),
        Counter(str(d.get("payload")) for d in bad),
    )
    problems += _multiset_problems(
        "dead letters",
        "late events",
        Counter(m.payload for m in truth.late_events),
        Counter(str(d.get("payload")) for d in late),
        " (dead-lettered as late: on-time events that reached the broker more than the "
        "watermark after their event time, or a late event read twice?)",
    )
    if unexplained := [d for d in bad if not d.get("reason")]:
        problems.append(f"dead letters: {len(unexplained)} without a reason")
    return problems


def _archive_problems(truth: Truth, archive: list[dict[str, Any]]) -> list[str]:
    """Every unique valid event once (late ones marked late), every malformed record once."""
    problems = []
    valid = [row for row in archive if row["event_id"] is not None]
    archived = Counter(str(row["event_id"]) for row in valid)
    if doubled := [i for i, n in archived.items() if n > 1]:
        problems.append(
            f"archive: {len(doubled)} events archived more than once: {_examples(doubled)}"
        )
    if missing_ids := truth.archived_ids - archived.keys():
        problems.append(f"archive: {len(missing_ids)} events missing: {_examples(missing_ids)}")
    if extra_ids := archived.keys() - truth.archived_ids:
        problems.append(f"archive: {len(extra_ids)} unexpected events: {_examples(extra_ids)}")
    marked_late = {str(row["event_id"]) for row in valid if row["late"]}
    if wrongly := marked_late - truth.late_ids:
        problems.append(
            f"archive: {len(wrongly)} events marked late that were sent on time: "
            f"{_examples(wrongly)}"
        )
    if unmarked := (truth.late_ids & archived.keys()) - marked_late:
        problems.append(
            f"archive: {len(unmarked)} late events not marked late: {_examples(unmarked)}"
        )
    malformed = [row for row in archive if row["event_id"] is None]
    problems += _multiset_problems(
        "archive",
        "malformed records",
        Counter(m.payload for m in truth.malformed),
        Counter(str(row["payload"]) for row in malformed),
    )
    records = Counter(str(row["record_id"] or "") for row in malformed)
    if twice := {r: n for r, n in records.items() if n > 1 and r}:
        problems.append(
            f"archive: {len(twice)} malformed record(s) archived more than once: {_examples(twice)}"
        )
    if unexplained := [row for row in malformed if not row["error"]]:
        problems.append(f"archive: {len(unexplained)} malformed records without their error")
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
    """The kills, the split and the replay the options ask for: while events are sent (the
    after_slice hook), or, for a backlog, while the job catches up (catching_up)."""

    def __init__(
        self,
        options: RunOptions,
        total: int,
        job: JobProcess,
        flavour: Flavour,
        progress: _Progress,
        replay_job: JobProcess | None,
    ) -> None:
        self._backlog = options.backlog
        self._kills = sorted(options.kill_at)
        self._split = options.split_at
        self._replay_at = options.replay_at
        self._total = total
        self._job = job
        self._replay_job = replay_job
        self._flavour = flavour
        self._progress = progress
        self._last_planned = -1
        # Events sent (read, for a backlog) when the job was last (re)started: the next kill
        # waits for a batch of the new incarnation's own, which only events sent after that
        # start can make.
        self._count_at_start = 0
        self._quiet_before_a_late_kill = max(10.0, 3 * options.trigger_seconds)
        self.split_shards: list[str] = []
        # Kills that hit a batch before its commit (the rest landed just after one).
        self.kills_mid_batch = 0
        self.killed_batches: list[int] = []
        self.read_at_kills: list[int] = []
        self.replay_started_after = 0

    def __call__(self, sent: list[Message]) -> None:
        self._progress.update(len(sent))
        if not self._backlog:
            self._maybe_kill(len(sent), f"after {len(sent)} events sent")
        if self._split is not None and len(sent) >= self._split * self._total:
            self._split = None
            self._split_a_shard(sent)
        if self._replay_at is not None and len(sent) >= self._replay_at * self._total:
            self._replay_at = None
            self._start_replay(len(sent))

    def catching_up(self) -> None:
        """A backlog's kills, by the share of it the job has read."""
        if self._backlog and self._kills:
            read = self._job.refresh().input_rows
            self._maybe_kill(read, f"after it read {read} of {self._total} events")

    @property
    def kills_pending(self) -> bool:
        return self._backlog and bool(self._kills)

    def _maybe_kill(self, count: int, when: str) -> None:
        due = self._kills and count >= self._kills[0] * self._total
        if due and count > self._count_at_start:
            self._kills.pop(0)
            self._kill_and_restart(count, when)

    def _kill_and_restart(self, count: int, when: str) -> None:
        # Kill in the middle of a batch this incarnation planned itself (offsets logged, not yet
        # committed) that reads events, so that every incarnation first replays the batch the
        # previous one was killed in: the crash that leaves half-written outputs and forces a
        # replay.
        in_flight: list[int] = []
        # (batch, when first seen done) of this incarnation's last batch with events.
        done: list[tuple[int, float]] = []
        flavour = self._flavour

        def batch_started_here() -> bool:
            last = flavour.last_planned_batch()
            if last is None or last <= self._last_planned:
                return False
            # Not a batch without events: the first batches of a query may read none, and one
            # that only evicts deduplication state may follow a batch.
            batch = next(
                (b for b in range(last, self._last_planned, -1) if flavour.carries_events(b)),
                None,
            )
            if batch is None:
                return False
            if batch == last and batch not in flavour.committed_batches():
                in_flight[:] = [batch]
                return True
            # One that ran between two looks: the stream is paused, so there may be no later
            # batch to wait for. Take it once no other has started for a few triggers.
            if not done or done[0][0] != batch:
                done[:] = [(batch, time.monotonic())]
            if time.monotonic() - done[0][1] >= self._quiet_before_a_late_kill:
                in_flight[:] = [batch]
                return True
            return False

        wait_until(batch_started_here, 300, "a batch in flight to kill", self._job, interval=0.5)
        self._job.kill()
        batch = in_flight[0]
        self.killed_batches.append(batch)
        self.read_at_kills.append(self._job.refresh().input_rows)
        mid_batch = batch not in flavour.committed_batches()
        self.kills_mid_batch += mid_batch
        last = flavour.last_planned_batch()
        self._last_planned = -1 if last is None else last
        moment = "before its commit" if mid_batch else "just after its commit"
        self._progress.note(
            f"  killed the job (SIGKILL) in batch {batch} ({moment}), {when}; starting it again"
        )
        self._job.start()
        self._count_at_start = count

    def _split_a_shard(self, sent: list[Message]) -> None:
        shard = self._flavour.split_shard()
        self.split_shards.append(shard)
        self._progress.note(f"  split Kinesis shard {shard} after {len(sent)} events")

    def _start_replay(self, sent: int) -> None:
        assert self._replay_job is not None
        self._replay_job.start()
        self.replay_started_after = sent
        self._progress.note(
            f"  started pipeline version {REPLAY_VERSION} after {sent} events: it replays the "
            f"stream from its start beside v1 (log: {self._replay_job.log})"
        )


class _Interrupted(Exception):
    pass


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def check_options(options: RunOptions) -> None:
    """Refuse what a run cannot check exactly, before anything is started."""
    if options.flavour not in FLAVOURS:
        raise SetupError(f"unknown flavour {options.flavour!r}: one of {', '.join(FLAVOURS)}")
    if options.watermark_seconds < _MIN_WATERMARK_SECONDS:
        raise SetupError(
            f"a watermark of {options.watermark_seconds}s is shorter than an on-time synthetic "
            f"event may take to reach the broker after its event time (up to "
            f"{JITTER_MS // 1000}s of jitter, plus the producer's own delays): use "
            f"{_MIN_WATERMARK_SECONDS}s or more, or on-time events could be dead-lettered as "
            "late and exact totals cannot be promised"
        )
    kills_while_sending = options.kill_at and not options.backlog
    if kills_while_sending and options.watermark_seconds < _MIN_WATERMARK_WITH_KILLS_WHILE_SENDING:
        raise SetupError(
            f"--kill-job-at while events are sent pauses the producer until a batch is in "
            "flight (up to a minute), which puts the rest of the stream behind its event "
            "times, and the job forgets event ids about two watermarks after reading them, "
            "while a restart takes 20-40 s: use a watermark of "
            f"{_MIN_WATERMARK_WITH_KILLS_WHILE_SENDING}s or more, or --backlog (every event "
            "sent before the job starts; it is killed while it catches up)"
        )
    no_shards = options.flavour == "gcp"
    if options.split_at is not None and no_shards:
        raise SetupError(
            "Pub/Sub has no shards: --split-shard-at needs the aws or postgres flavour"
        )
    if options.skew is not None and no_shards:
        raise SetupError("Pub/Sub has no shards: --skew needs the aws or postgres flavour")
    if options.skew is not None and not 0.0 < options.skew < 1.0:
        raise SetupError(f"--skew is a share of the keys: 0 < skew < 1 (got {options.skew})")
    if options.batch_limit is not None and options.batch_limit < 1:
        raise SetupError(f"--batch-limit must be at least 1 (got {options.batch_limit})")
    for name in ("split_at", "replay_at"):
        share = getattr(options, name)
        if share is not None and not 0.0 <= share < 1.0:
            raise SetupError(f"{name} is a share of the events: 0 <= {name} < 1 (got {share})")
    if options.replay_at is not None and options.backlog:
        raise SetupError(
            "--replay-at starts a second version while events are sent: not with --backlog"
        )
    if options.split_at is not None and options.backlog:
        raise SetupError(
            "--split-shard-at splits a shard while events are sent: not with --backlog"
        )


def run(options: RunOptions, out: TextIO = sys.stdout) -> RunReport:
    """Run the local pipeline; raises SetupError when something it needs is missing."""
    began = time.monotonic()
    require_java()
    check_options(options)
    _fresh_workdir(options.workdir)
    windowing = Windowing(
        window_seconds=options.window_seconds,
        watermark_seconds=options.watermark_seconds,
        deduplication_seconds=options.deduplication_seconds,
        trigger_seconds=options.trigger_seconds,
    )
    settings = Settings(
        options.workdir,
        windowing,
        options.ports,
        batch_limit=options.batch_limit,
        hot_share=options.skew,
    )
    flavour = FLAVOURS[options.flavour](settings)
    value_fields = tuple(flavour.settings.event.value_fields)

    def truth_of_sent(sent: list[Message]) -> Truth:
        return truth_of(sent, window_seconds=options.window_seconds, value_fields=value_fields)

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
            job = _job(flavour, options.master)
            stack.callback(job.terminate)
            replay: Flavour | None = None
            replay_job: JobProcess | None = None
            if options.replay_at is not None:
                # Before any event is sent: on Pub/Sub its subscription must hold the whole log.
                replay = flavour.sibling(REPLAY_VERSION)
                replay.provision_version()
                replay_job = _job(replay, options.master)
                stack.callback(replay_job.terminate)

            query_started_at = first_event_at = last_event_at = job_started_at = 0.0
            if not options.backlog:
                job_started_at = _start_job(job, out)
                wait_until(
                    flavour.query_started, _QUERY_START_TIMEOUT, "the job's query to start", job
                )
                query_started_at = time.monotonic()
                # The job polls the empty stream for a couple of triggers before data arrives.
                idle = max(options.idle_seconds, 2.0 * options.trigger_seconds)
                wait_until(
                    lambda: time.monotonic() - query_started_at >= idle,
                    idle + 60,
                    "the job to poll the empty stream",
                    job,
                )

            channel = flavour.channel()
            stack.callback(channel.close)
            messages = generate(
                options.mix,
                datetime.now(UTC),
                event_format=flavour.settings.event,
                watermark_seconds=options.watermark_seconds,
            )
            progress = _Progress(out, len(messages), job, flavour)
            faults = _Faults(options, len(messages), job, flavour, progress, replay_job)
            print(
                f"sending {len(messages)} events to {channel.description} at "
                f"{options.mix.rate or 'unlimited'}/s"
                + (", all before the job starts (a backlog)" if options.backlog else ""),
                file=out,
                flush=True,
            )
            first_event_at = time.monotonic()
            sent = send_paced(messages, channel, rate=options.mix.rate, after_slice=faults)
            last_event_at = time.monotonic()
            truth = truth_of_sent(sent)

            if options.backlog:
                progress.update(len(sent), force=True)
                progress.note(f"  sent the backlog in {last_event_at - first_event_at:.1f}s")
                job_started_at = _start_job(job, out)
                wait_until(
                    flavour.query_started, _QUERY_START_TIMEOUT, "the job's query to start", job
                )
                query_started_at = time.monotonic()

            def during_wait() -> None:
                progress.update(len(sent))
                faults.catching_up()

            _wait_caught_up(job, flavour, truth, len(sent), options, progress, during_wait, faults)
            if replay is not None and replay_job is not None:
                progress.note(f"  waiting for {REPLAY_VERSION} to account for every event")
                _wait_caught_up(replay_job, replay, truth, len(sent), options, progress)
            progress.update(len(sent), force=True)
            progress.end()
            print("stopping the job through its stop marker", file=out, flush=True)
            flavour.request_stop()
            if replay is not None:
                replay.request_stop()
            exit_code = job.wait_stopped(timeout=300)
            outputs = _read_back(flavour, job, exit_code, truth)
            report = RunReport(
                **vars(outputs),
                flavour=flavour.name,
                truth=truth,
                sent=sent,
                job_starts=job.starts,
                job_kills=job.kills,
                kills_mid_batch=faults.kills_mid_batch,
                killed_batches=faults.killed_batches,
                read_at_kills=faults.read_at_kills,
                split_shards=faults.split_shards,
                locations=flavour.locations(),
                query_started_at=query_started_at,
                first_event_at=first_event_at,
                last_event_at=last_event_at,
                job_started_at=job_started_at,
                ports_used=flavour.ports_used(),
                source_offset=flavour.last_source_offset(),
                shard_records=flavour.shard_records() if options.skew is not None else {},
                replay_started_after=faults.replay_started_after,
            )
            if replay is not None and replay_job is not None:
                replay_exit = replay_job.wait_stopped(timeout=300)
                report.replay = _read_back(replay, replay_job, replay_exit, truth)
                if serving_view(report.replay.serving, value_fields) != serving_view(
                    report.serving, value_fields
                ):
                    report.replay.problems.append(
                        f"serving: {REPLAY_VERSION}'s table differs from v1's"
                    )
            print("shutting down the stand-ins", file=out, flush=True)
    except _Interrupted as stop:
        raise SetupError(f"interrupted ({stop}); everything started was shut down") from None
    finally:
        if _in_main_thread():
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    report.seconds = time.monotonic() - began
    return report


def _job(flavour: Flavour, master: str) -> JobProcess:
    return JobProcess(
        flavour.publish_spec(),
        flavour.stop_marker_uri,
        flavour.job_env(),
        flavour.spark_defaults(),
        flavour.logs,
        master,
    )


def _start_job(job: JobProcess, out: TextIO) -> float:
    print(
        f"starting the job: python -m kappa --spec {job.spec_uri} (log: {job.log})",
        file=out,
        flush=True,
    )
    job.start()
    return time.monotonic()


def _wait_caught_up(
    job: JobProcess,
    flavour: Flavour,
    truth: Truth,
    sent: int,
    options: RunOptions,
    progress: _Progress,
    during_wait: Callable[[], None] | None = None,
    faults: _Faults | None = None,
) -> None:
    """Until the job's outputs equal the truth (or the timeout, which the check then reports).

    Duplicates change no output, so matching outputs alone may come before the job has read
    them: wait until Spark reports every event read, or (its reports are lost when a job is
    killed) a few quiet triggers. Outputs that still differ once Spark reports every event
    read, the same way for _SETTLED_SECONDS, are the job's answer: the check reports them.
    """
    matched_since: list[float] = []
    settled: list[tuple[list[str], float]] = []
    checked_at = [0.0]

    def caught_up() -> bool:
        if during_wait is not None:
            during_wait()
        behind = job.refresh().input_rows < sent
        if faults is not None and faults.kills_pending:
            return False  # a backlog's kill is still to come
        if behind and time.monotonic() - checked_at[0] < 10:
            return False  # reading every output costs; Spark says it is not there yet
        checked_at[0] = time.monotonic()
        differences = compare(
            truth, flavour.serving_rows(), flavour.dead_letters(), flavour.archived()
        )
        if differences:
            matched_since.clear()
            if behind or not settled or settled[0][0] != differences:
                settled[:] = [(differences, time.monotonic())] if not behind else []
                return False
            return time.monotonic() - settled[0][1] >= _SETTLED_SECONDS
        matched_since[:] = matched_since or [time.monotonic()]
        return not behind or time.monotonic() - matched_since[0] >= 5 * options.trigger_seconds

    try:
        wait_until(
            caught_up,
            options.catch_up_timeout,
            f"the job ({flavour.settings.version}) to account for every event",
            job,
            interval=2.0,
        )
    except SetupError as error:
        if not job.running:
            raise
        progress.note(f"  {error}")


def _read_back(
    flavour: Flavour, job: JobProcess, exit_code: int | None, truth: Truth
) -> VersionReport:
    metrics = job.refresh()
    outputs = VersionReport(
        version=flavour.settings.version,
        serving=flavour.serving_rows(),
        dead_letters=flavour.dead_letters(),
        archive=flavour.archived(),
        metrics=metrics,
        committed_batches=len(flavour.committed_batches()),
        job_exit_code=exit_code,
    )
    outputs.problems = compare(
        truth,
        outputs.serving,
        outputs.dead_letters,
        outputs.archive,
        dropped_by_watermark=metrics.dropped_by_watermark,
    )
    if exit_code != 0:
        outputs.problems.append(f"the job exited with code {exit_code}; see {job.log}")
    return outputs


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


def summary(report: RunReport) -> str:
    from kappa.events import LATE_REASON

    truth = report.truth
    reasons = Counter(str(d.get("reason")) for d in report.dead_letters)
    metrics = report.metrics
    spark_says = bool(metrics.batches)
    archived_late = sum(1 for row in report.archive if row["event_id"] is not None and row["late"])
    archived_valid = len(report.archived_ids)
    lines = [
        f"== summary ({report.flavour} flavour, {report.seconds:.0f}s)",
        f"events sent         {truth.sent:>7}   ({truth.valid} unique on time, "
        f"{truth.duplicates} duplicates, {len(truth.malformed)} malformed, {truth.late} late)",
        f"archived            {len(report.archive):>7}   records (every record read, each once): "
        f"{archived_valid - archived_late} on time, {archived_late} late, "
        f"{len(report.archived_malformed)} malformed",
        f"dead-lettered       {len(report.dead_letters):>7}   records "
        f"({len({str(d.get('payload')) for d in report.dead_letters})} distinct payloads)"
        + (": " + "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items())) if reasons else ""),
        f"deduplicated        {metrics.duplicates_dropped if spark_says else 'n/a':>7}   "
        f"repeats dropped by the job (Spark's metrics)",
        f"late, kept          {reasons.get(LATE_REASON, 0):>7}   "
        f"dead-lettered with reason {LATE_REASON} and archived, not aggregated",
        f"dropped by Spark    {metrics.dropped_by_watermark if spark_says else 'n/a':>7}   "
        f"rows older than the deduplication's watermark (must be 0)",
        f"aggregates written  {len(report.serving):>7}   rows (key, window) in the serving store",
        f"job                 {report.committed_batches:>7}   batches committed; started "
        f"{report.job_starts}x, killed {report.job_kills}x"
        + (f" ({report.kills_mid_batch} mid-batch)" if report.job_kills else "")
        + f", exit code {report.job_exit_code}"
        + (f"; split shard {', '.join(report.split_shards)}" if report.split_shards else ""),
    ]
    if report.shard_records and len(report.shard_records) > 1:
        lines.append(
            "shards              "
            + ", ".join(f"{s}: {n}" for s, n in sorted(report.shard_records.items()))
            + " records"
        )
    replay = report.replay
    if replay is not None:
        lines.append(
            f"replay {replay.version:<12} {replay.committed_batches:>7}   batches committed; "
            f"started after {report.replay_started_after} events, from the stream's start; "
            f"{len(replay.serving)} aggregates, {len(replay.dead_letters)} dead letters, "
            f"{len(replay.archive)} archived; exit code {replay.job_exit_code}"
        )
    totals = [
        f"{name} count {sum(s[name].count for s in truth.aggregates.values())}, "
        f"sum {sum(s[name].total for s in truth.aggregates.values()):.0f}"
        for name in truth.value_fields
    ]
    if report.ok:
        lines.append(
            f"check               OK: the serving store equals the truth "
            f"({len(truth.aggregates)} key-windows; {'; '.join(totals)}); every "
            f"malformed record dead-lettered once ({len(truth.malformed)}); every late event "
            f"kept ({truth.late}: dead-lettered as {LATE_REASON}, archived, not aggregated); "
            "every record read archived once; none dropped by Spark"
            + (
                f"; {replay.version} replayed into the same table as v1"
                if replay is not None
                else ""
            )
        )
    else:
        lines.append("check               FAILED:")
        lines += [f"  - {p}" for p in report.problems]
        if replay is not None:
            lines += [f"  - {replay.version}: {p}" for p in replay.problems]
    lines += [f"{name:<20}{where}" for name, where in report.locations]
    return "\n".join(lines)
