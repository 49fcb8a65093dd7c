"""Command line: `python -m kappa_local run ...` and `python -m kappa_local produce ...`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kappa.spec import EventFormat, PipelineSpec, Windowing
from pydantic import ValidationError

from .flavours import FLAVOURS, Ports
from .producer import (
    ProduceError,
    Target,
    live_spec_uri,
    read_spec,
    read_stack_outputs,
    send_paced,
    target_from_outputs,
    topic_path,
)
from .stand_ins import REPO, SetupError
from .synthetic import Message, Mix, generate, truth_of


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"a share between 0 and 1, e.g. 0.1 (got {text})")
    return value


def _shares(text: str) -> tuple[float, ...]:
    return tuple(_share(part) for part in text.split(",") if part)


def _add_event_options(
    parser: argparse.ArgumentParser, events: int, rate: float, *, spec_decides: bool = False
) -> None:
    """`spec_decides`: the window and watermark default to the pipeline spec's (produce)."""
    defaults = Windowing()
    window = None if spec_decides else defaults.window_seconds
    watermark = None if spec_decides else defaults.watermark_seconds
    given_by = "the spec's, else " if spec_decides else ""
    group = parser.add_argument_group("the synthetic events")
    size = group.add_mutually_exclusive_group()
    size.add_argument("--events", type=int, help=f"events to send in all (default {events})")
    size.add_argument("--duration", type=float, help="seconds to send for, at --rate")
    group.add_argument(
        "--rate",
        type=float,
        default=rate,
        help=f"events per second, 0 for as fast as possible (default {rate:g})",
    )
    group.add_argument("--keys", type=int, default=10, help="distinct keys (default 10)")
    group.add_argument(
        "--malformed",
        type=_share,
        default=0.02,
        help="share of malformed events, dead-lettered by the job (default 0.02)",
    )
    group.add_argument(
        "--duplicates", type=_share, default=0.05, help="share of events sent twice (default 0.05)"
    )
    group.add_argument(
        "--late",
        type=_share,
        default=0.01,
        help="share of late events, sent more than the watermark after their event time: "
        "dead-lettered (reason late) and archived by the job, not aggregated (default 0.01)",
    )
    group.add_argument("--seed", type=int, default=42, help="same seed, same events (default 42)")
    group.add_argument(
        "--window",
        type=int,
        default=window,
        help="tumbling event-time window in seconds, the job's and the truth's "
        f"(default {given_by}{defaults.window_seconds})",
    )
    group.add_argument(
        "--watermark",
        type=int,
        default=watermark,
        help="the job's watermark in seconds: an event reaching the broker more than this "
        "after its event time is late, and a repeat read within it of the first copy is "
        f"dropped (default {given_by}{defaults.watermark_seconds})",
    )


def _mix(args: argparse.Namespace, default_events: int) -> Mix:
    if args.duration is not None:
        if args.rate <= 0:
            raise SetupError("--duration needs a --rate above 0")
        events = max(1, round(args.duration * args.rate))
    else:
        events = args.events if args.events is not None else default_events
    try:
        return Mix(
            events=events,
            keys=args.keys,
            malformed=args.malformed,
            duplicates=args.duplicates,
            late=args.late,
            seed=args.seed,
            rate=args.rate,
        )
    except ValueError as error:
        raise SetupError(str(error)) from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kappa_local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="the whole pipeline locally: stand-ins, the job, events, the check",
        description="Start local stand-ins for the cloud, create the stream, storage and "
        "table, run the job from jobs/kappa in local Spark, send synthetic events, show "
        "progress, and check the serving store against the truth. Exit code 0: exact.",
    )
    run.add_argument(
        "--flavour",
        choices=sorted(FLAVOURS),
        default="aws",
        help="aws (moto), gcp (Google's fakes) or postgres (moto + PostgreSQL)",
    )
    _add_event_options(run, events=3000, rate=100.0)
    run.add_argument("--trigger", type=int, default=2, help="micro-batch interval (default 2 s)")
    run.add_argument(
        "--workdir",
        type=Path,
        default=REPO / ".local" / "run",
        help="logs, Spark's configuration and (gcp) the lake; emptied first",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds the job may take after the last event (default 300)",
    )
    ports = run.add_argument_group("ports on 127.0.0.1")
    ports.add_argument("--moto-port", type=int, default=Ports.moto, help="default %(default)s")
    ports.add_argument("--pubsub-port", type=int, default=Ports.pubsub, help="default %(default)s")
    ports.add_argument(
        "--bigtable-port", type=int, default=Ports.bigtable, help="default %(default)s"
    )
    ports.add_argument(
        "--postgres-port",
        type=int,
        default=Ports.postgres,
        help="Debian's cluster on this port; default %(default)s",
    )
    faults = run.add_argument_group("fault injection")
    faults.add_argument(
        "--kill-job-at",
        type=_shares,
        default=(),
        help="SIGKILL the job after these shares of the events and start it "
        "again, e.g. 0.25,0.5,0.75 (with --backlog: once it has read these shares)",
    )
    faults.add_argument(
        "--split-shard-at",
        type=_share,
        help="split a Kinesis shard after this share of the events (aws, postgres)",
    )
    faults.add_argument(
        "--idle",
        type=float,
        default=0.0,
        help="seconds the job polls the empty stream before the first event",
    )
    backlog = run.add_argument_group("backlogs and replays")
    backlog.add_argument(
        "--backlog",
        action="store_true",
        help="send every event (at --rate) before the job starts: it catches up on a backlog",
    )
    backlog.add_argument(
        "--batch-limit",
        type=int,
        help="at most this many records per micro-batch: per shard (Kinesis), per batch "
        "(Pub/Sub); default the job's (10000)",
    )
    backlog.add_argument(
        "--skew",
        type=_share,
        help="put this share of the keys on the first of the two Kinesis shards and the rest "
        "on the second, e.g. 0.9 (aws, postgres)",
    )
    backlog.add_argument(
        "--replay-at",
        type=_share,
        help="after this share of the events, start pipeline version v2 beside v1: its own "
        "checkpoint and serving table, reading the stream from its start; both are checked",
    )

    produce = commands.add_parser(
        "produce",
        help="send synthetic events to Kinesis or Pub/Sub (local or a real cloud)",
        description="Send synthetic events. Name the target (--target with --stream/--region "
        "or --topic/--project, and --endpoint for an emulator), or take it from a Pulumi "
        "stack's outputs with --stack. Prints what the serving store should then hold. Event "
        "ids derive from --seed: the same seed sent twice within the job's watermark is "
        "deduplicated, so give each run into a live stream its own seed.",
    )
    produce.add_argument(
        "--target", choices=("kinesis", "pubsub"), help="the broker (default: the stack's cloud)"
    )
    produce.add_argument("--stream", help="Kinesis stream name")
    produce.add_argument("--region", help="AWS region of the stream")
    produce.add_argument("--topic", help="Pub/Sub topic: a name with --project, or its path")
    produce.add_argument("--project", help="Google Cloud project of the topic")
    produce.add_argument(
        "--endpoint", help="emulator: moto's URL for Kinesis, the fake's host:port for Pub/Sub"
    )
    produce.add_argument("--stack", help="a Pulumi stack: the target from its outputs")
    produce.add_argument(
        "--stack-dir",
        default=str(REPO),
        help="where Pulumi.yaml is, for --stack (default: the repository)",
    )
    event = produce.add_argument_group(
        "the event format",
        "The format of the job's pipeline spec: the one --spec names; else, with --stack, "
        "the live version's (its job_specs output); else the job's defaults. Each field flag "
        "overrides the spec's.",
    )
    source = event.add_mutually_exclusive_group()
    source.add_argument("--spec", help="the pipeline spec to take it from (s3://, gs://, path)")
    source.add_argument(
        "--no-spec", action="store_true", help="read no spec: the flags and the job's defaults"
    )
    defaults = EventFormat()
    event.add_argument("--id-field", help=f"the event id's field (default {defaults.id_field})")
    event.add_argument("--key-field", help=f"the key's field (default {defaults.key_field})")
    event.add_argument(
        "--time-field", help=f"the event time's field (default {defaults.time_field})"
    )
    event.add_argument(
        "--value-fields",
        help="comma-separated numeric fields of each event "
        f"(default {','.join(defaults.value_fields)})",
    )
    produce.add_argument("--truth", type=Path, help="write the truth (expected aggregates) here")
    _add_event_options(produce, events=1000, rate=100.0, spec_decides=True)
    return parser.parse_args(argv)


def _target(args: argparse.Namespace, outputs: dict[str, Any] | None) -> Target:
    if outputs is not None:
        try:
            target = target_from_outputs(outputs, args.target)
        except ValueError as error:
            raise SetupError(f"stack {args.stack}: {error}") from None
        # An endpoint still applies: a stack's names against a local stand-in, for a dry run.
        return replace(target, endpoint=args.endpoint) if args.endpoint else target
    if args.target == "kinesis":
        if not (args.stream and args.region):
            raise SetupError("--target kinesis needs --stream and --region (or --stack)")
        return Target("kinesis", args.stream, args.region, args.endpoint)
    if args.target == "pubsub":
        if not args.topic:
            raise SetupError("--target pubsub needs --topic (and --project) or --stack")
        try:
            return Target("pubsub", topic_path(args.topic, args.project), "", args.endpoint)
        except ValueError as error:
            raise SetupError(str(error)) from None
    raise SetupError("name a target: --target kinesis|pubsub with its options, or --stack")


def _spec(args: argparse.Namespace, outputs: dict[str, Any] | None) -> PipelineSpec | None:
    if args.no_spec:
        return None
    uri = args.spec
    if uri is None and outputs is not None:
        try:
            uri = live_spec_uri(outputs)
        except ValueError as error:
            raise SetupError(f"stack {args.stack}: {error}") from None
    if uri is None:
        return None
    spec = read_spec(uri)
    print(f"event format from {uri} (pipeline version {spec.pipeline_version})", flush=True)
    return spec


def _event_format(args: argparse.Namespace, spec: PipelineSpec | None) -> EventFormat:
    flags = {
        "id_field": args.id_field,
        "key_field": args.key_field,
        "time_field": args.time_field,
        "value_fields": args.value_fields
        and tuple(f.strip() for f in args.value_fields.split(",") if f.strip()),
    }
    base = spec.event if spec is not None else EventFormat()
    try:
        # Built anew rather than copied, so that the overrides are validated too.
        return EventFormat(**{**base.model_dump(), **{k: v for k, v in flags.items() if v}})
    except ValidationError as error:
        problems = "; ".join(e["msg"] for e in error.errors())
        raise SetupError(f"the event format: {problems}") from None


def produce(args: argparse.Namespace) -> int:
    mix = _mix(args, default_events=1000)
    outputs = read_stack_outputs(args.stack, args.stack_dir) if args.stack else None
    target = _target(args, outputs)
    spec = _spec(args, outputs)
    event_format = _event_format(args, spec)
    windowing = spec.windowing if spec is not None else Windowing()
    window = windowing.window_seconds if args.window is None else args.window
    watermark = windowing.watermark_seconds if args.watermark is None else args.watermark
    fields = event_format.value_fields
    print(
        f"events: id {event_format.id_field}, key {event_format.key_field}, time "
        f"{event_format.time_field}, values {', '.join(fields)}; {window}s windows, "
        f"{watermark}s watermark",
        flush=True,
    )
    messages = generate(
        mix, datetime.now(UTC), event_format=event_format, watermark_seconds=watermark
    )
    channel = target.open()
    print(f"sending {len(messages)} events to {channel.description}", flush=True)
    began = time.monotonic()
    last = [0.0]

    def show(sent: list[Message]) -> None:
        if time.monotonic() - last[0] >= 2.0:
            last[0] = time.monotonic()
            print(f"  [{last[0] - began:6.1f}s] sent {len(sent)}/{len(messages)}", flush=True)

    try:
        sent = send_paced(messages, channel, rate=mix.rate, after_slice=show)
    finally:
        channel.close()
    truth = truth_of(sent, window_seconds=window, value_fields=fields)
    print(
        f"sent {truth.sent} events in {time.monotonic() - began:.1f}s: {truth.valid} unique on "
        f"time, {truth.duplicates} duplicates, {len(truth.malformed)} malformed, {truth.late} "
        f"late; expected {len(truth.aggregates)} (key, window) rows of {window}s windows"
    )
    if truth.late:
        print(
            f"  (the {truth.late} late events reached the broker more than {watermark}s after "
            "their event time: the job dead-letters them with reason late and archives them)"
        )
    if args.truth:
        args.truth.write_text(json.dumps(truth.to_json(), indent=1) + "\n")
        print(f"truth written to {args.truth}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    from .local import RunOptions, run, summary

    options = RunOptions(
        flavour=args.flavour,
        mix=_mix(args, default_events=3000),
        window_seconds=args.window,
        watermark_seconds=args.watermark,
        trigger_seconds=args.trigger,
        workdir=args.workdir,
        ports=Ports(args.moto_port, args.pubsub_port, args.bigtable_port, args.postgres_port),
        kill_at=args.kill_job_at,
        split_at=args.split_shard_at,
        idle_seconds=args.idle,
        catch_up_timeout=args.timeout,
        backlog=args.backlog,
        batch_limit=args.batch_limit,
        skew=args.skew,
        replay_at=args.replay_at,
    )
    report = run(options)
    print(summary(report), flush=True)
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run_command(args) if args.command == "run" else produce(args)
    except (SetupError, ProduceError) as error:
        print(f"kappa_local: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kappa_local: interrupted; everything started was shut down", file=sys.stderr)
        return 130
