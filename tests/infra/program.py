"""Running the whole Pulumi program under mocks, as the infrastructure tests do.

A plain module rather than conftest.py: pytest imports conftest files under a name of its
own, and module state (WHEELHOUSE_REQUESTS) must be one object for every importer."""

from __future__ import annotations

import runpy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def run_main(
    config: Mapping[str, Any], stack: str = "test", recording: Recording | None = None
) -> Recording:
    """Run the whole Pulumi program (__main__.py) with a stack's config under mocks."""
    return run_program(lambda: runpy.run_path(str(MAIN)), config, stack=stack, recording=recording)
