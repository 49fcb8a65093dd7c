"""How long the init scripts take on a node with the job's real wheelhouse.

The tests measure the scripts with tiny fake wheels; this measures them with what a cluster
installs. It builds (or reuses, from .build/wheelhouse/) the wheelhouse for
jobs/requirements.txt with infra.wheelhouse.build_wheelhouse, which downloads from PyPI the
first time, then runs bootstrap/emr-bootstrap.sh and bootstrap/dataproc-init.sh, as the stack
uploads them, through the test harness (tests/bootstrap/harness.py): each as a master and as
a worker on a fresh simulated node, then once more on the same node (a no-op).

Per run it prints own time (wall time minus the time spent in the stubbed downloads and
metadata reads: the figure the 30 s per-node goal is for), wall time, and that stub time.
The stubs copy from a local folder, so a cluster adds the real transfer of the wheelhouse
from S3 or GCS on top.

    .venv/bin/python benchmarks/bootstrap_time.py [--runs 1]
"""

from __future__ import annotations

import argparse
import platform as host
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from infra.artifacts import Artifact  # noqa: E402
from infra.wheelhouse import Platform, build_wheelhouse  # noqa: E402
from tests.bootstrap.harness import Cloud, Node, Role, Run  # noqa: E402

CLOUDS: tuple[Cloud, ...] = ("emr", "dataproc")
ROLES: tuple[Role, ...] = ("master", "worker")


def nodes_platform() -> Platform:
    """The nodes' platform as this machine: the harness installs with this machine's Python."""
    machine = host.machine()
    if machine not in ("x86_64", "aarch64"):
        sys.exit(f"the wheelhouse is built for x86_64 or aarch64 nodes, not {machine}")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Platform(python_version=python, machine="aarch64" if machine == "aarch64" else "x86_64")


def build() -> Artifact:
    started = time.perf_counter()
    artifact = build_wheelhouse(platform=nodes_platform())
    with tarfile.open(artifact.path) as archive:
        wheels = [name for name in archive.getnames() if name.endswith(".whl")]
    print(
        f"wheelhouse {artifact.key}: {artifact.path.stat().st_size / 1e6:.1f} MB, "
        f"{len(wheels)} wheels, ready in {time.perf_counter() - started:.1f} s "
        "(downloads from PyPI unless .build/wheelhouse/ has it)"
    )
    return artifact


def row(cloud: Cloud, role: Role, label: str, run: Run) -> str:
    return (
        f"{cloud:<9} {role:<7} {label:<14} {run.own_seconds:8.2f} {run.wall_seconds:8.2f} "
        f"{run.stub_seconds:10.2f}"
    )


def measure(wheelhouse: Artifact, runs: int) -> list[float]:
    print(f"{'cloud':<9} {'role':<7} {'run':<14} {'own s':>8} {'wall s':>8} {'download s':>10}")
    installs = []
    with tempfile.TemporaryDirectory(prefix="kappa-bootstrap-bench-") as scratch:
        for cloud in CLOUDS:
            for role in ROLES:
                for attempt in range(runs):
                    node = Node(Path(scratch) / f"{cloud}-{role}-{attempt}", cloud, role)
                    node.publish(wheelhouse.path, wheelhouse.sha256)
                    for label in ("install", "again (no-op)"):
                        run = node.run()
                        if run.returncode != 0:
                            sys.exit(f"{cloud} {role} {label} failed:\n{run.output}")
                        print(row(cloud, role, label, run), flush=True)
                        if label == "install":
                            installs.append(run.own_seconds)
    return installs


def main() -> None:
    parser = argparse.ArgumentParser(description="Time the init scripts with the real wheelhouse.")
    parser.add_argument("--runs", type=int, default=1, help="fresh nodes per cloud and role")
    args = parser.parse_args()
    installs = measure(build(), args.runs)
    print(
        f"own time of an install: {min(installs):.1f}-{max(installs):.1f} s "
        "(goal: at most 30 s per node)"
    )


if __name__ == "__main__":
    main()
