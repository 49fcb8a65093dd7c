from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.infra.mocks import Recording
from tests.infra.program import AWS_BASE, fake_wheelhouse_installed, run_main

AwsStack = Callable[..., Recording]


@pytest.fixture
def aws_stack() -> AwsStack:
    """The whole AWS program with the base config plus overrides (keys without `kappa:`)."""

    def run(stack: str = "test", **overrides: Any) -> Recording:
        return run_main({**AWS_BASE, **{f"kappa:{k}": v for k, v in overrides.items()}}, stack)

    return run


@pytest.fixture(scope="module")
def default_stack() -> Recording:
    """One run of the default AWS stack, shared by the tests that only read it."""
    with fake_wheelhouse_installed():
        return run_main(AWS_BASE)
