"""How the test run itself behaves: every test has a time limit by tier, and one tier's
environment does not leak into another's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ENVIRONMENT_AT_START, TESTS, TIER_TIMEOUT_SECONDS, timeout_for

REPO = TESTS.parent


def test_every_tier_has_its_own_time_limit():
    for tier, seconds in TIER_TIMEOUT_SECONDS.items():
        assert timeout_for(TESTS / tier / "test_something.py") == seconds
    assert TIER_TIMEOUT_SECONDS["infra"] < TIER_TIMEOUT_SECONDS["jobs"]


def test_this_test_carries_the_infra_limit(request: pytest.FixtureRequest):
    (marker,) = list(request.node.iter_markers("timeout"))
    assert marker.args == (TIER_TIMEOUT_SECONDS["infra"],)


def test_a_hanging_test_fails_instead_of_hanging_the_run(tmp_path: Path):
    hanging = tmp_path / "test_hang.py"
    hanging.write_text(
        textwrap.dedent(
            """
            import time
            import pytest

            @pytest.mark.timeout(1)
            def test_hangs():
                time.sleep(60)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(hanging)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "Timeout" in done.stdout


def test_the_job_tests_environment_does_not_reach_the_other_tiers():
    """tests/jobs sets fake credentials and emulator hosts for its own tests only: in a full
    run the infrastructure tests see the environment they see alone."""
    for name in ("PUBSUB_EMULATOR_HOST", "BIGTABLE_EMULATOR_HOST", "AWS_SESSION_TOKEN"):
        assert os.environ.get(name) == ENVIRONMENT_AT_START.get(name), name


def test_after_the_job_tests_the_environment_is_the_one_the_run_started_with():
    """The check above, in a run that holds both tiers, jobs first."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            # Any job test sets the job tier's environment up; this one needs no Spark.
            "tests/jobs/test_aws_regions.py::test_every_boto3_client_in_the_job_is_given_a_region",
            "tests/infra/test_test_tiers.py::"
            "test_the_job_tests_environment_does_not_reach_the_other_tiers",
        ],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS",)},
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert "2 passed" in done.stdout
