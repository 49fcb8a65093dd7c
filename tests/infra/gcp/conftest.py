"""Fixtures for the GCP stack: the whole program under mocks, and single layers alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from infra.artifacts import Artifact, write_artifact
from infra.config import load_config
from infra.gcp.platform import Platform
from tests.infra import mocks
from tests.infra.mocks import Recording, Resource
from tests.infra.program import GCP_BASE

GcpStack = Callable[..., Recording]

CMEK_KEY = "projects/acme-security/locations/europe-west1/keyRings/data/cryptoKeys/kappa"
AGENT_DOMAINS = {
    "pubsub": "gcp-sa-pubsub.iam.gserviceaccount.com",
    "bigtable": "gcp-sa-bigtable.iam.gserviceaccount.com",
    "dataproc": "dataproc-accounts.iam.gserviceaccount.com",
    "compute": "compute-system.iam.gserviceaccount.com",
}


def agent(service: str) -> str:
    """The IAM member the mocks' project number gives a Google service agent."""
    return f"serviceAccount:service-{mocks.GCP_PROJECT_NUMBER}@{AGENT_DOMAINS[service]}"


def with_kappa_prefix(overrides: dict[str, Any]) -> dict[str, Any]:
    return {f"kappa:{key}": value for key, value in overrides.items()}


WHEELHOUSE_BYTES = b"wheels for the gcp tests\n"


def built_wheelhouse() -> Artifact:
    """The wheelhouse the GCP platform programs are given, as the build would name it."""
    return write_artifact("wheelhouse", "wheelhouse.tar", WHEELHOUSE_BYTES)


def platform_program() -> None:
    """What __main__.py does for a GCP stack, without the wheelhouse build it also does."""
    config = load_config()
    platform = Platform(f"kappa-{pulumi.get_stack()}", config, wheelhouse=built_wheelhouse())
    for output_name, value in platform.stack_outputs().items():
        pulumi.export(output_name, value)


def run_platform(config: dict[str, Any], stack: str = "test") -> Recording:
    return mocks.run_program(platform_program, config, stack=stack)


@pytest.fixture
def gcp_stack() -> GcpStack:
    """The GCP platform for the base config plus overrides (keys without `kappa:`)."""

    def run(stack: str = "test", **overrides: Any) -> Recording:
        return run_platform({**GCP_BASE, **with_kappa_prefix(overrides)}, stack)

    return run


def named(recording: Recording, type_token: str, name: str) -> Resource:
    """A resource by type and name: names repeat across types (a version's subscription,
    table and job all carry the version)."""
    (found,) = [r for r in recording.of_type(type_token) if r.name == name]
    return found


def urn_of(resource: Resource) -> str:
    return f"{resource.type}::{resource.name}"


def bucket_name(recording: Recording, role: str) -> str:
    """The name of the Lake's bucket for a role (`dead-letters`, as in resource names)."""
    return named(recording, "gcp:storage/bucket:Bucket", f"kappa-test-{role}").outputs["name"]


@pytest.fixture(scope="module")
def default_stack() -> Recording:
    """One run of the default GCP stack, shared by a module's tests that only read it."""
    return run_platform(GCP_BASE)


def run_layer(program: Callable[[], Any]) -> Recording:
    """One layer on its own, with ids passed in as a platform team would: no stack config."""
    return mocks.run_program(program)
