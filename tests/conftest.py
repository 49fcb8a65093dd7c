"""What every tier shares: a time limit per test, set by tier, and the environment the run
started with (so a tier can show it leaves the others' alone)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# Generous limits: a test that hangs (an emulator that never answers, a query that never
# commits) fails after this long instead of holding CI until its own limit. They include the
# test's fixtures, so the first test of a tier pays for building Google's fakes with Go and
# starting Spark.
TIER_TIMEOUT_SECONDS = {"infra": 120, "bootstrap": 300, "jobs": 900, "e2e": 1200}
DEFAULT_TIMEOUT_SECONDS = 300

ENVIRONMENT_AT_START: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    # Before any test module or conftest below this one is imported.
    ENVIRONMENT_AT_START.update(os.environ)


def tier_of(path: Path) -> str:
    try:
        return path.resolve().relative_to(TESTS).parts[0]
    except ValueError:
        return ""


def timeout_for(path: Path) -> int:
    return TIER_TIMEOUT_SECONDS.get(tier_of(path), DEFAULT_TIMEOUT_SECONDS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(timeout_for(item.path)))
