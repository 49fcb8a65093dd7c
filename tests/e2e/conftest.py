"""The local pipeline end to end: every scenario is one run of `kappa_local.local.run` (its own
stand-ins on free ports, the job as a child process in local Spark), shared by the tests that
each check one thing about it."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kappa_local.flavours import Ports
from kappa_local.local import RunOptions, RunReport, run, summary
from kappa_local.stand_ins import debian_clusters, free_port

# Kept small for two cores: a few hundred events at 100/s, one-second triggers.
TRIGGER_SECONDS = 1


def free_ports() -> Ports:
    return Ports(moto=free_port(), pubsub=free_port(), bigtable=free_port(), postgres=free_port())


def debian_postgres_port() -> int:
    """The port of the machine's Debian PostgreSQL cluster, which the postgres flavour starts
    when it is down (a cluster is configured per port, so no free port will do). Without one,
    the default port: the run then says how to create a cluster, and the test fails, as on any
    machine that lacks what the README's test command installs."""
    return min(debian_clusters(), default=Ports().postgres)


RunLocal = Callable[..., RunReport]


@pytest.fixture(scope="module")
def run_local(tmp_path_factory: pytest.TempPathFactory) -> RunLocal:
    """Run the local pipeline; on failure the assertion shows the run's summary and log."""

    def run_once(name: str, **options: Any) -> RunReport:
        workdir: Path = tmp_path_factory.mktemp(name)
        ports = free_ports()
        if options.get("flavour") == "postgres":
            ports = replace(ports, postgres=debian_postgres_port())
        out = io.StringIO()
        report = run(
            RunOptions(
                workdir=workdir,
                ports=ports,
                trigger_seconds=TRIGGER_SECONDS,
                catch_up_timeout=180,
                **options,
            ),
            out=out,
        )
        print(out.getvalue())
        print(summary(report))
        return report

    return run_once
