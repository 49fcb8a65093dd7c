"""An EMR step as a Pulumi resource: how a job update reaches a running cluster.

Pulumi has no EMR step resource (steps are part of aws.emr.Cluster, and changing them
replaces the cluster). This dynamic resource adds the streaming job as a step through
boto3. Any change to its command (a new bundle or spec key) replaces the resource, delete
first: the old run is asked to stop, finishes its batch, and only then is the new run added.
So two runs never share a checkpoint, and the cluster stays.

Stopping a run: the job polls for a per-run stop marker object between batches. Cancelling
an EMR step alone is not enough in cluster deploy mode: it kills spark-submit on the master
but leaves the YARN application running; so if the marker is not honoured in time, the step
is cancelled and the YARN application of that name is killed too.

AWS is called with the stack's region, `aws:profile` and `aws:assumeRoles`, which the
resource carries as inputs (see emr_api). The provider is pickled by reference (dill), so
this module must import from the project root and keep its imports light; boto3 is imported
where it is used.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider

from infra.aws.emr_api import changed_inputs, cluster_gone, connection_inputs, is_invalid_request
from infra.aws.emr_api import client as _client  # a name of this module's: tests proxy it

TERMINAL_STATES = ("COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED")
# What changes the run; anything else (e.g. the stop timeout) is updated in place.
REPLACING_INPUTS = ("cluster_id", "region", "step_name", "command", "control_uri")


def stop_marker_uri(control_uri: str, step_name: str, token: str) -> str:
    return f"{control_uri.rstrip('/')}/{step_name}/stop-{token}"


def kill_application_command(application_name: str) -> list[str]:
    """A step command that kills the running YARN application with this exact name."""
    script = (
        "yarn application -list -appStates RUNNING,ACCEPTED 2>/dev/null "
        f"| awk -F'\\t' '$2 ~ /^ *{application_name} *$/ {{print $1}}' "
        "| xargs -r -n1 yarn application -kill"
    )
    return ["bash", "-c", script]


class EmrStepProvider(ResourceProvider):
    """create/delete/diff for one long-running step; update only touches bookkeeping."""

    def __init__(self, poll_seconds: float = 15.0) -> None:
        self.poll_seconds = poll_seconds

    def create(self, props: dict[str, Any]) -> CreateResult:
        token = uuid.uuid4().hex[:12]
        marker = stop_marker_uri(props["control_uri"], props["step_name"], token)
        emr = _client("emr", props)
        response = emr.add_job_flow_steps(
            JobFlowId=props["cluster_id"],
            Steps=[
                {
                    "Name": props["step_name"],
                    # With concurrent steps EMR accepts only CONTINUE; YARN restarts the
                    # driver on failure (spark.yarn.maxAppAttempts), not EMR.
                    "ActionOnFailure": "CONTINUE",
                    "HadoopJarStep": {
                        "Jar": "command-runner.jar",
                        "Args": [*props["command"], "--stop-marker", marker],
                    },
                }
            ],
        )
        step_id = response["StepIds"][0]
        return CreateResult(id_=step_id, outs={**props, "step_id": step_id, "stop_marker": marker})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in REPLACING_INPUTS if olds.get(key) != news.get(key)]
        changed = replaces or changed_inputs(olds, news)
        return DiffResult(
            changes=bool(changed), replaces=replaces, stables=[], delete_before_replace=True
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> Any:
        from pulumi.dynamic import UpdateResult

        return UpdateResult(
            outs={**news, "step_id": olds["step_id"], "stop_marker": olds["stop_marker"]}
        )

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        emr = _client("emr", props)
        state = _step_state(emr, props["cluster_id"], props["step_id"])
        if state is None or state in TERMINAL_STATES:
            return
        _put_marker(_client("s3", props), props["stop_marker"])
        deadline = time.monotonic() + float(props.get("stop_timeout_seconds", 900))
        while time.monotonic() < deadline:
            state = _step_state(emr, props["cluster_id"], props["step_id"])
            if state is None or state in TERMINAL_STATES:
                return
            time.sleep(self.poll_seconds)
        pulumi.log.warn(
            f"step {props['step_id']} did not stop within its timeout; cancelling it and "
            f"killing YARN application {props['step_name']}"
        )
        emr.cancel_steps(
            ClusterId=props["cluster_id"],
            StepIds=[props["step_id"]],
            StepCancellationOption="SEND_INTERRUPT",
        )
        emr.add_job_flow_steps(
            JobFlowId=props["cluster_id"],
            Steps=[
                {
                    "Name": f"kill {props['step_name']}",
                    "ActionOnFailure": "CONTINUE",
                    "HadoopJarStep": {
                        "Jar": "command-runner.jar",
                        "Args": kill_application_command(props["step_name"]),
                    },
                }
            ],
        )


def _step_state(emr: Any, cluster_id: str, step_id: str) -> str | None:
    """The step's state, or None when the cluster (and so the step) is gone."""
    from botocore.exceptions import ClientError

    if cluster_gone(emr, cluster_id):
        return None
    try:
        return emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]["State"]
    except ClientError as error:
        if is_invalid_request(error):
            return None
        raise


def _put_marker(s3: Any, uri: str) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3.put_object(Bucket=bucket, Key=key, Body=b"stop requested by pulumi\n")


class EmrStep(pulumi.dynamic.Resource, module="kappa", name="EmrStep"):
    """One streaming run on an EMR cluster; replaced (stop, then start) when its command changes."""

    step_id: pulumi.Output[str]
    stop_marker: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        cluster_id: pulumi.Input[str],
        region: pulumi.Input[str],
        step_name: pulumi.Input[str],
        command: pulumi.Input[Sequence[str]],
        control_uri: pulumi.Input[str],
        stop_timeout_seconds: int = 900,
        profile: pulumi.Input[str] | None = None,
        assume_roles: Sequence[Mapping[str, Any]] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            EmrStepProvider(),
            name,
            {
                "cluster_id": cluster_id,
                # Only the region replaces the step: other credentials do not change what runs.
                **connection_inputs(region, profile, assume_roles),
                "step_name": step_name,
                "command": command,
                "control_uri": control_uri,
                "stop_timeout_seconds": stop_timeout_seconds,
                "step_id": None,
                "stop_marker": None,
            },
            opts,
        )
