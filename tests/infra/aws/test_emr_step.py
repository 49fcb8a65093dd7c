"""The EMR step provider against moto's EMR and S3 (moto has no cancel_steps; a proxy
records that one call and passes every other through to moto)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, ProfileNotFound
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends
from moto.sts.models import sts_backends

import infra.aws.emr_step as emr_step
from infra.aws.emr_api import session
from infra.aws.emr_protection import ProtectionReleaseProvider
from infra.aws.emr_step import EmrStepProvider
from tests.infra.aws.conftest import MOTO_REGION as REGION
from tests.infra.aws.conftest import start_emr_cluster

CONTROL_BUCKET = "checkpoints"


class CancelRecordingEmr:
    def __init__(self, client: Any, cancelled: list[dict[str, Any]]) -> None:
        self._client = client
        self._cancelled = cancelled

    def cancel_steps(self, **request: Any) -> dict[str, Any]:
        self._cancelled.append(request)
        return {"CancelStepsInfoList": []}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def aws(moto: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    cancelled: list[dict[str, Any]] = []
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=CONTROL_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    real_client = emr_step._client

    def client(service: str, props: dict[str, Any]) -> Any:
        made = real_client(service, props)
        return CancelRecordingEmr(made, cancelled) if service == "emr" else made

    monkeypatch.setattr(emr_step, "_client", client)
    return cancelled


@pytest.fixture
def cluster_id(aws) -> str:
    return start_emr_cluster()


# moto accepts any credentials; these only tell the profile's keys from the environment's.
DEPLOY_PROFILE_KEY_ID = "testing-deploy-profile"


@pytest.fixture
def deploy_profile(moto: Path) -> str:
    """A named profile in the AWS config file, with its own keys and another region."""
    moto.write_text(
        "[profile kappa-deploy]\n"
        "region = us-west-2\n"
        f"aws_access_key_id = {DEPLOY_PROFILE_KEY_ID}\n"
        "aws_secret_access_key = testing\n"
    )
    return "kappa-deploy"


def started(provider: EmrStepProvider, properties: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    result = provider.create(properties)
    assert result.outs is not None
    return result.id, result.outs


def props(cluster_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "cluster_id": cluster_id,
        "region": REGION,
        "step_name": "kappa-test-v1",
        "command": ["spark-submit", "s3://artifacts/jobs/run_pipeline-1.py", "--spec", "s3://a/s1"],
        "control_uri": f"s3://{CONTROL_BUCKET}/_control",
        "stop_timeout_seconds": 60,
        **changes,
    }


def step(cluster_id: str, step_id: str) -> dict[str, Any]:
    emr = boto3.client("emr", region_name=REGION)
    return emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]


def set_step_state(cluster_id: str, step_id: str, state: str) -> None:
    cluster = emr_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[cluster_id]
    (found,) = [s for s in cluster.steps if s.id == step_id]
    found.state = state


def marker_exists(uri: str) -> bool:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=bucket, Prefix=key)
    return listed.get("KeyCount", 0) == 1


def test_create_adds_the_job_as_a_step_with_its_stop_marker(cluster_id: str):
    step_id, outs = started(EmrStepProvider(), props(cluster_id))
    added = step(cluster_id, step_id)
    arguments = added["Config"]["Args"]
    assert arguments[:4] == props(cluster_id)["command"]
    assert arguments[-2] == "--stop-marker"
    assert arguments[-1] == outs["stop_marker"]
    assert outs["stop_marker"].startswith(f"s3://{CONTROL_BUCKET}/_control/kappa-test-v1/")
    assert added["ActionOnFailure"] == "CONTINUE"
    assert outs["step_id"] == step_id


def test_each_run_gets_its_own_stop_marker(cluster_id: str):
    provider = EmrStepProvider()
    (_, first), (_, second) = (
        started(provider, props(cluster_id)),
        started(provider, props(cluster_id)),
    )
    assert first["stop_marker"] != second["stop_marker"]


def test_a_new_command_replaces_the_run_stopping_the_old_one_first(cluster_id: str):
    old = props(cluster_id)
    new = props(cluster_id, command=[*old["command"][:-1], "s3://a/s2"])
    diff = EmrStepProvider().diff("s-1", old, new)
    assert diff.changes is True
    assert diff.replaces == ["command"]
    assert diff.delete_before_replace is True


def test_a_new_stop_timeout_changes_nothing_that_runs(cluster_id: str):
    diff = EmrStepProvider().diff(
        "s-1", props(cluster_id), props(cluster_id, stop_timeout_seconds=5)
    )
    assert diff.changes is True
    assert diff.replaces == []


def test_an_unchanged_run_is_left_alone(cluster_id: str):
    diff = EmrStepProvider().diff("s-1", props(cluster_id), props(cluster_id))
    assert diff.changes is False


def test_delete_asks_the_run_to_stop_and_waits_for_it(
    aws: list[dict[str, Any]], cluster_id: str, monkeypatch: pytest.MonkeyPatch
):
    provider = EmrStepProvider(poll_seconds=0)
    step_id, outs = started(provider, props(cluster_id))
    waits: list[float] = []

    def job_honours_the_marker(seconds: float) -> None:
        waits.append(seconds)
        if marker_exists(outs["stop_marker"]):
            set_step_state(cluster_id, step_id, "COMPLETED")

    monkeypatch.setattr(emr_step.time, "sleep", job_honours_the_marker)
    provider.delete(step_id, outs)
    assert marker_exists(outs["stop_marker"])
    assert step(cluster_id, step_id)["Status"]["State"] == "COMPLETED"
    assert aws == []  # no cancellation was needed
    assert waits


def test_a_run_that_ignores_the_marker_is_cancelled_and_its_application_killed(
    aws: list[dict[str, Any]], cluster_id: str, monkeypatch: pytest.MonkeyPatch
):
    provider = EmrStepProvider(poll_seconds=0)
    step_id, outs = started(provider, props(cluster_id, stop_timeout_seconds=0))
    monkeypatch.setattr(emr_step.time, "sleep", lambda _seconds: None)
    provider.delete(step_id, outs)
    assert aws == [
        {
            "ClusterId": cluster_id,
            "StepIds": [step_id],
            "StepCancellationOption": "SEND_INTERRUPT",
        }
    ]
    steps = boto3.client("emr", region_name=REGION).list_steps(ClusterId=cluster_id)["Steps"]
    (kill,) = [s for s in steps if s["Name"] == "kill kappa-test-v1"]
    assert kill["Config"]["Args"][:2] == ["bash", "-c"]
    assert "yarn application -kill" in kill["Config"]["Args"][2]
    assert "kappa-test-v1" in kill["Config"]["Args"][2]


def test_deleting_a_finished_run_does_nothing(aws: list[dict[str, Any]], cluster_id: str):
    provider = EmrStepProvider(poll_seconds=0)
    step_id, outs = started(provider, props(cluster_id))
    set_step_state(cluster_id, step_id, "FAILED")
    provider.delete(step_id, outs)
    assert not marker_exists(outs["stop_marker"])
    assert aws == []


def test_deleting_a_run_on_a_terminated_cluster_does_nothing(
    aws: list[dict[str, Any]], cluster_id: str
):
    provider = EmrStepProvider(poll_seconds=0)
    step_id, outs = started(provider, props(cluster_id))
    boto3.client("emr", region_name=REGION).terminate_job_flows(JobFlowIds=[cluster_id])
    provider.delete(step_id, outs)
    assert not marker_exists(outs["stop_marker"])
    assert aws == []


def test_aws_is_called_with_the_stacks_profile_and_region(cluster_id: str, deploy_profile: str):
    properties = props(cluster_id, profile=deploy_profile)
    built = session(properties)
    assert built.profile_name == deploy_profile
    # The stack's region wins over the profile's own.
    assert built.region_name == REGION
    assert built.get_credentials().access_key == DEPLOY_PROFILE_KEY_ID
    assert emr_step._client("emr", properties).meta.region_name == REGION
    step_id, _ = started(EmrStepProvider(), properties)
    assert step(cluster_id, step_id)["Name"] == "kappa-test-v1"


ROLE_CHAIN = [
    {"RoleArn": "arn:aws:iam::123456789012:role/platform-hop", "RoleSessionName": "kappa-test"},
    {
        "RoleArn": "arn:aws:iam::210987654321:role/kappa-deploy",
        "RoleSessionName": "kappa-test",
        "ExternalId": "kappa-prod",
    },
]


def calls_with_their_keys(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every AWS call from now on, with the access key id it is signed with."""
    calls: list[tuple[str, str]] = []
    make_api_call = BaseClient._make_api_call  # every client call passes through it

    def recording(client: BaseClient, operation: str, parameters: dict[str, Any]) -> Any:
        credentials = client._request_signer._credentials
        calls.append((operation, credentials.access_key))
        return make_api_call(client, operation, parameters)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls


def test_aws_is_called_as_the_last_role_of_the_stacks_role_chain(
    aws, monkeypatch: pytest.MonkeyPatch
):
    properties = props("j-none", assume_roles=ROLE_CHAIN)
    identity = session(properties).client("sts").get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::210987654321:assumed-role/kappa-deploy/kappa-test"
    (deploy,) = sts_backends["210987654321"]["aws"].assumed_roles
    assert deploy.external_id == "kappa-prod"
    # The aws provider, assuming the same roles, made the cluster in the role's account: the
    # step goes there, where the environment's own credentials do not reach.
    emr_there = session(properties).client("emr")
    cluster_id = start_emr_cluster(emr=emr_there)
    calls = calls_with_their_keys(monkeypatch)
    step_id, _ = started(EmrStepProvider(), {**properties, "cluster_id": cluster_id})
    # Each role is assumed with the credentials of the one before, as the provider does.
    (first, hop), (second, last), (add, signer) = calls
    assert (first, second, add) == ("AssumeRole", "AssumeRole", "AddJobFlowSteps")
    assert hop == os.environ["AWS_ACCESS_KEY_ID"]
    assert len({hop, last, signer}) == 3
    assert emr_there.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Name"] == (
        "kappa-test-v1"
    )
    with pytest.raises(ClientError):
        boto3.client("emr", region_name=REGION).describe_cluster(ClusterId=cluster_id)


def test_without_a_profile_aws_is_called_through_the_default_chain(cluster_id: str):
    built = session(props(cluster_id))
    assert built.profile_name == "default"
    assert built.region_name == REGION


def test_a_profile_the_machine_does_not_have_is_refused_by_name(cluster_id: str):
    with pytest.raises(ProfileNotFound, match="kappa-elsewhere"):
        EmrStepProvider().create(props(cluster_id, profile="kappa-elsewhere"))


@pytest.mark.parametrize(
    "credentials",
    [{"profile": "kappa-deploy"}, {"assume_roles": ROLE_CHAIN}],
    ids=["profile", "role-chain"],
)
def test_new_credentials_change_nothing_that_runs(cluster_id: str, credentials: dict[str, Any]):
    diff = EmrStepProvider().diff("s-1", props(cluster_id), props(cluster_id, **credentials))
    assert diff.changes is True
    assert diff.replaces == []


@pytest.mark.parametrize(
    ("provider", "module"),
    [
        (EmrStepProvider, "infra.aws.emr_step"),
        (ProtectionReleaseProvider, "infra.aws.emr_protection"),
    ],
)
def test_the_providers_pickle_by_reference_to_an_importable_module(provider: type, module: str):
    """Pulumi ships a provider to its provider host with dill; by reference keeps it small
    and means the host imports its module from the project root."""
    import base64
    import pickle

    from pulumi.dynamic.dynamic import serialize_provider

    payload = base64.b64decode(serialize_provider(provider()))
    assert module.encode() in payload
    assert len(payload) < 500
    assert isinstance(pickle.loads(payload), provider)  # noqa: S301 (our own bytes)
