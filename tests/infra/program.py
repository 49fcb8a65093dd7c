"""Running the whole Pulumi program under mocks, as the infrastructure tests do.

A plain module rather than conftest.py: pytest imports conftest files under a name of its
own, and module state (WHEELHOUSE_REQUESTS) must be one object for every importer."""

from __future__ import annotations

import functools
import runpy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

import infra.wheelhouse
from infra.artifacts import Artifact, write_artifact
from tests.infra.mocks import Recording, run_program

REPO = Path(__file__).resolve().parents[2]
MAIN = REPO / "__main__.py"

AWS_BASE = {"kappa:cloud": "aws", "aws:region": "eu-west-1"}
GCP_BASE = {"kappa:cloud": "gcp", "gcp:region": "europe-west1", "gcp:project": "acme-data"}


WHEELHOUSE_REQUESTS: list[dict[str, Any]] = []


@contextmanager
def fake_wheelhouse_installed() -> Iterator[Artifact]:
    """The real wheelhouse downloads wheels from the package index; the stacks only need an
    artifact with a key and a checksum, which a small local file gives them. What the
    program asked for is kept in WHEELHOUSE_REQUESTS."""
    artifact = write_artifact("wheelhouse", "wheelhouse.tar", b"wheels for the infra tests\n")
    original = infra.wheelhouse.build_wheelhouse

    def fake(*args: Any, **kwargs: Any) -> Artifact:
        WHEELHOUSE_REQUESTS.append(kwargs)
        return artifact

    infra.wheelhouse.build_wheelhouse = fake  # type: ignore[assignment]
    try:
        yield artifact
    finally:
        infra.wheelhouse.build_wheelhouse = original


class MissingStackConfig(Exception):
    """What the Pulumi CLI refuses a stack with, before the program starts."""


@functools.cache
def _declared_config() -> dict[str, Any]:
    """Pulumi.yaml's config declarations, read once for the hundreds of program runs."""
    return yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]


def as_the_cli_merges_it(config: Mapping[str, Any], stack: str = "test") -> dict[str, Any]:
    """The config the Pulumi CLI hands the program for a stack (its mergeConfig): the stack's
    values, plus the declared default of every project key the stack leaves out. A project
    key declared without a default and left out stops the run."""
    declared = _declared_config()
    merged = dict(config)
    missing = []
    for key, declaration in declared.items():
        if f"kappa:{key}" in merged:
            continue
        if "default" in declaration:
            merged[f"kappa:{key}"] = declaration["default"]
        else:
            missing.append(key)
    if missing:
        raise MissingStackConfig(f"Stack '{stack}' is missing configuration values {missing}")
    return merged


def run_main(
    config: Mapping[str, Any],
    stack: str = "test",
    recording: Recording | None = None,
    invokes: Mapping[str, Mapping[str, Any]] | None = None,
) -> Recording:
    """Run the whole Pulumi program (__main__.py) under mocks with a stack's config, as the
    Pulumi CLI would pass it (declared defaults filled in). `invokes` replaces what a data
    source (by its token) answers."""
    merged = as_the_cli_merges_it(config, stack)
    return run_program(
        lambda: runpy.run_path(str(MAIN)),
        merged,
        stack=stack,
        recording=recording,
        invokes=invokes,
    )
