"""A wait between IAM grants and the first resource that depends on them being in effect.

IAM is eventually consistent: Google documents that a change to an allow policy typically
takes effect within 2 minutes and can take 7 minutes or longer
(https://cloud.google.com/iam/docs/access-change-propagation). Dataproc checks at create
time that the cluster's service account holds the agent permissions (dataproc.agents.*,
dataproc.tasks.*), and the nodes read their initialization action as that account at first
boot, so a cluster created right after its grants can fail, and pass when `pulumi up` is run
again. No API says when a grant has propagated (testIamPermissions answers for the caller,
not for the service account), so the wait is a fixed one, as the Google provider's own tests
wait out IAM propagation (GoogleCloudPlatform/magic-modules#18182: a 120 s `time_sleep` after
the grants, before the resource that needs them).

A dynamic resource rather than the pulumiverse-time provider's Sleep: the same behaviour
(it waits when created, not on every `up`; a change of what it guards, its `triggers`,
replaces it so that it waits again), without another provider plugin to download on the
first `up` or another pinned requirement, and with a create the tests can call. The project
already runs dynamic resources (infra/aws/emr_step.py). Pickled by reference (dill) like
those: keep the imports light.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

# Google's "typically" figure, and the provider tests' wait. Raise it towards 420 s (the
# documented "7 minutes or longer") where first deployments still fail on the cluster's
# permissions.
DEFAULT_PROPAGATION_SECONDS = 120


class PropagationWaitProvider(ResourceProvider):
    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sleep = sleep

    def create(self, props: dict[str, Any]) -> CreateResult:
        self.sleep(float(props["seconds"]))
        return CreateResult(id_=uuid.uuid4().hex, outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # New grants to wait for: wait again. A new duration alone changes nothing that is
        # already in effect.
        replaces = ["triggers"] if olds.get("triggers") != news.get("triggers") else []
        changed = bool(replaces) or olds.get("seconds") != news.get("seconds")
        return DiffResult(changes=changed, replaces=replaces, stables=[])

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)


class PropagationWait(pulumi.dynamic.Resource, module="kappa", name="IamPropagationWait"):
    """Waits `seconds` once created; depend on it instead of on the grants it follows.

    Give it the grants as `depends_on`, and as `triggers` the values whose change means new
    grants (the principal, the key): changing them replaces the wait, so it waits again.
    """

    def __init__(
        self,
        name: str,
        *,
        seconds: int,
        triggers: Mapping[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        if seconds < 0:
            raise ValueError(f"PropagationWait.seconds: got {seconds}; expected 0 or more")
        super().__init__(
            PropagationWaitProvider(), name, {"seconds": seconds, "triggers": dict(triggers)}, opts
        )
