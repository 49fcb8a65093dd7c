"""Fixtures for running the bootstrap scripts on simulated nodes; prints their timings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.artifacts import Artifact
from infra.wheelhouse import Platform, build_wheelhouse
from tests.bootstrap.fake_wheels import bundled_pip_wheel, make_wheel, pip_pin
from tests.bootstrap.harness import TIMINGS, Cloud, MakeNode, Node, Role, Wheelhouses


@pytest.fixture(scope="session")
def wheelhouses(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouses:
    base = tmp_path_factory.mktemp("wheelhouses")
    index = base / "index"
    make_wheel(index, "kappa-probe", "1.0", requires=["kappa-probe-dep>=1"])
    make_wheel(index, "kappa-probe", "2.0", requires=["kappa-probe-dep>=1"])
    make_wheel(index, "kappa-probe-dep", "1.2")
    shutil.copy(bundled_pip_wheel(), index)

    def build(pin: str, platform: Platform | None = None) -> Artifact:
        platform = platform or Platform()
        requirements = base / f"requirements-{pin}-{platform.machine}.txt"
        requirements.write_text(f"kappa-probe=={pin}\n")
        return build_wheelhouse(
            requirements,
            platform,
            pip_requirement=pip_pin(bundled_pip_wheel()),
            source_args=("--no-index", "--find-links", str(index)),
            cache_root=base / "cache",
        )

    return Wheelhouses(build("1.0"), build("2.0"), build("1.0", Platform(machine="aarch64")))


@pytest.fixture
def make_node(tmp_path: Path) -> MakeNode:
    count = 0

    def make(cloud: Cloud, role: Role) -> Node:
        nonlocal count
        count += 1
        return Node(tmp_path / f"node-{count}", cloud, role)

    return make


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("bootstrap script timings (own time excludes stubbed downloads)")
    for timing in TIMINGS:
        run = timing.run
        terminalreporter.write_line(
            f"{timing.label:<44} own {run.own_seconds:6.2f} s   "
            f"wall {run.wall_seconds:6.2f} s   downloads {run.stub_seconds:5.2f} s"
        )
