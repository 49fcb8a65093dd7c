"""Lets Pulumi delete an EMR cluster that has termination protection, and nobody else.

Termination protection makes EMR refuse to terminate the cluster, whoever asks: the console,
the CLI, and also Pulumi's aws provider, which deletes a cluster by terminating it (its docs:
protection must be applied as false before the resource can be destroyed). A change to what
the nodes install at boot replaces the cluster; without help, that replacement would start
the new cluster, move the job to it, and then fail to delete the old one.

This resource depends on the cluster, so Pulumi deletes it first whenever it deletes the
cluster (a replacement or a destroy); its delete turns the protection off. Terminations from
outside Pulumi are still refused.

Pickled by reference, like emr_step: keep the imports light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from infra.aws.emr_api import changed_inputs, client, cluster_gone, connection_inputs

# A new cluster is a new resource; new credentials are only a new way to reach the same one.
REPLACING_INPUTS = ("cluster_id", "region")


class ProtectionReleaseProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        # The cluster turns its protection on itself (its termination_protection argument).
        return CreateResult(id_=f"{props['cluster_id']}-protection-release", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in REPLACING_INPUTS if olds.get(key) != news.get(key)]
        changed = replaces or changed_inputs(olds, news)
        return DiffResult(changes=bool(changed), replaces=replaces, stables=[])

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        emr = client("emr", props)
        if cluster_gone(emr, props["cluster_id"]):
            return
        emr.set_termination_protection(JobFlowIds=[props["cluster_id"]], TerminationProtected=False)


class ProtectionRelease(pulumi.dynamic.Resource, module="kappa", name="ProtectionRelease"):
    """Turns the cluster's termination protection off just before Pulumi deletes the cluster."""

    def __init__(
        self,
        name: str,
        *,
        cluster_id: pulumi.Input[str],
        region: pulumi.Input[str],
        profile: pulumi.Input[str] | None = None,
        assume_roles: Sequence[Mapping[str, Any]] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            ProtectionReleaseProvider(),
            name,
            {"cluster_id": cluster_id, **connection_inputs(region, profile, assume_roles)},
            opts,
        )
