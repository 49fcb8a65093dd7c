"""Fixtures for the infrastructure tests: Pulumi mocks, never a cloud."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.artifacts import Artifact
from tests.infra.program import (  # noqa: F401 (re-exported for the test modules)
    AWS_BASE,
    GCP_BASE,
    MAIN,
    WHEELHOUSE_REQUESTS,
    fake_wheelhouse_installed,
    run_main,
)


@pytest.fixture(autouse=True)
def fake_wheelhouse() -> Iterator[Artifact]:
    with fake_wheelhouse_installed() as artifact:
        yield artifact
