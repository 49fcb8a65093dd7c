"""Fixtures for the infrastructure tests: Pulumi mocks, never a cloud."""

from __future__ import annotations

import runpy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import infra.wheelhouse
from infra.artifacts import Artifact, write_artifact
from tests.infra.mocks import Recording, run_program

REPO = Path(__file__).resolve().parents[2]
MAIN = REPO / "__main__.py"

AWS_BASE = {"kappa:cloud": "aws", "aws:region": "eu-west-1"}
GCP_BASE = {"kappa:cloud": "gcp", "gcp:region": "europe-west1", "gcp:project": "acme-data"}


@contextmanager
def fake_wheelhouse_installed() -> Iterator[Artifact]:
    """The real wheelhouse downloads wheels from the package index; the stacks only need an
    artifact with a key and a checksum, which a small local file gives them."""
    artifact = write_artifact("wheelhouse", "wheelhouse.tar", b"wheels for the infra tests\n")
    original = infra.wheelhouse.build_wheelhouse
    infra.wheelhouse.build_wheelhouse = lambda *a, **k: artifact  # type: ignore[assignment]
    try:
        yield artifact
    finally:
        infra.wheelhouse.build_wheelhouse = original


@pytest.fixture(autouse=True)
def fake_wheelhouse() -> Iterator[Artifact]:
    with fake_wheelhouse_installed() as artifact:
        yield artifact


def run_main(config: Mapping[str, Any], stack: str = "test") -> Recording:
    """Run the whole Pulumi program (__main__.py) with a stack's config under mocks."""
    return run_program(lambda: runpy.run_path(str(MAIN)), config, stack=stack)
