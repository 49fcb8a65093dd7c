from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

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


MOTO_REGION = "eu-west-1"


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Moto's AWS with throwaway credentials; yields the AWS config file boto3 reads (absent
    until a test writes it), so no profile of the machine's own leaks in."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    config_file = tmp_path / "aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    with mock_aws():
        yield config_file


def start_emr_cluster(*, protected: bool = False, emr: Any = None) -> str:
    """A cluster in moto's EMR, as the stack's aws.emr.Cluster would leave one (made with the
    given EMR client, else with the environment's credentials)."""
    emr = emr or boto3.client("emr", region_name=MOTO_REGION)
    return emr.run_job_flow(
        Name="kappa-test",
        ReleaseLabel="emr-spark-8.0.0",
        Instances={
            "KeepJobFlowAliveWhenNoSteps": True,
            "TerminationProtected": protected,
            "InstanceCount": 1,
            "MasterInstanceType": "m6i.xlarge",
        },
        JobFlowRole="nodes",
        ServiceRole="service",
    )["JobFlowId"]
