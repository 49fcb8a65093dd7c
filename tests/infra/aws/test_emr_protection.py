"""Releasing termination protection when Pulumi deletes the cluster, against moto's EMR."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.aws import emr_protection
from infra.aws.emr_protection import ProtectionReleaseProvider
from tests.infra.aws.conftest import MOTO_REGION, start_emr_cluster


@pytest.fixture
def emr(moto: Path):
    return boto3.client("emr", region_name=MOTO_REGION)


def released(cluster_id: str) -> None:
    """What Pulumi does to the release resource before it deletes the cluster."""
    properties = {"cluster_id": cluster_id, "region": MOTO_REGION}
    result = ProtectionReleaseProvider().create(properties)
    ProtectionReleaseProvider().delete(result.id, result.outs or {})


def test_emr_refuses_to_terminate_a_protected_cluster(emr):
    """Why the release exists: the aws provider deletes a cluster by terminating it."""
    cluster_id = start_emr_cluster(protected=True)
    with pytest.raises(ClientError, match="termination protect"):
        emr.terminate_job_flows(JobFlowIds=[cluster_id])


def test_a_released_cluster_can_be_terminated(emr):
    cluster_id = start_emr_cluster(protected=True)
    released(cluster_id)
    assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["TerminationProtected"] is False
    emr.terminate_job_flows(JobFlowIds=[cluster_id])
    state = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]
    assert state.startswith("TERMINAT")


def test_releasing_a_terminated_cluster_does_nothing(emr, monkeypatch: pytest.MonkeyPatch):
    cluster_id = start_emr_cluster()
    emr.terminate_job_flows(JobFlowIds=[cluster_id])
    calls: list[str] = []
    emr.meta.events.register("before-call.emr.*", lambda model, **_: calls.append(model.name))
    monkeypatch.setattr(emr_protection, "client", lambda service, props: emr)

    released(cluster_id)

    assert calls == ["DescribeCluster"]


def test_a_new_cluster_replaces_the_release():
    old = {"cluster_id": "j-OLD", "region": MOTO_REGION}
    diff = ProtectionReleaseProvider().diff("r", old, {**old, "cluster_id": "j-NEW"})
    assert diff.replaces == ["cluster_id"]


def test_a_new_profile_only_updates_the_release():
    old = {"cluster_id": "j-1", "region": MOTO_REGION}
    diff = ProtectionReleaseProvider().diff("r", old, {**old, "profile": "kappa-deploy"})
    assert diff.changes is True
    assert diff.replaces == []
