"""The same layer has the same shape on both clouds: what a newcomer learns on one holds on
the other."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from types import ModuleType

import pytest

import infra.aws.cluster
import infra.gcp.cluster
from infra.aws.broker import BrokerArgs as AwsBrokerArgs
from infra.aws.cluster import ClusterArgs as AwsClusterArgs
from infra.aws.encryption import EncryptionArgs
from infra.aws.lake import LakeArgs as AwsLakeArgs
from infra.config import ClusterConfig, StackConfig
from infra.gcp.broker import BrokerArgs as GcpBrokerArgs
from infra.gcp.cluster import PREEMPTIBILITY as GCP_PREEMPTIBILITY
from infra.gcp.cluster import ClusterArgs as GcpClusterArgs
from infra.gcp.lake import LakeArgs as GcpLakeArgs


def default_of(args_class: type, name: str) -> object:
    (found,) = [f for f in dataclasses.fields(args_class) if f.name == name]
    return found.default


@pytest.mark.parametrize(
    "args_class", [AwsBrokerArgs, GcpBrokerArgs, AwsLakeArgs, GcpLakeArgs, EncryptionArgs]
)
def test_stateful_layers_are_protected_unless_the_caller_says_otherwise(args_class: type):
    """A layer taken alone (the composition example in docs/components.md) must be as safe
    as the platform outside dev: Pulumi refuses to delete what holds data."""
    assert default_of(args_class, "protect") is True


@pytest.mark.parametrize(
    ("cloud", "args_class", "names"),
    [
        (
            "aws",
            AwsClusterArgs,
            {
                "release": "release",
                "master_type": "master_type",
                "core_type": "core_type",
                "task_types": "task_types",
                "core_count": "core_count",
                "task_min": "task_min",
                "task_max": "task_max",
                "disk_gib": "disk_gib",
                "mode": "mode",
                "idle_timeout_minutes": "idle_timeout_minutes",
                "spot_allocation": "spot_allocation",
                "task_capacity": "task_capacity",
            },
        ),
        (
            "gcp",
            GcpClusterArgs,
            {
                "image_version": "release",
                "master_type": "master_type",
                "worker_type": "core_type",
                "secondary_type": "task_types",
                "worker_count": "core_count",
                "secondary_min": "task_min",
                "secondary_max": "task_max",
                "disk_gib": "disk_gib",
                "mode": "mode",
                "idle_delete_minutes": "idle_timeout_minutes",
                "preemptibility": "task_capacity",
                "component_gateway": "component_gateway",
            },
        ),
    ],
)
def test_a_cluster_taken_alone_has_the_stacks_defaults(
    cloud: str, args_class: type, names: dict[str, str]
):
    """ClusterArgs takes its defaults from the stack configuration, not from a copy."""
    config = StackConfig.parse(
        {"cloud": cloud},
        region="europe-west1" if cloud == "gcp" else "eu-west-1",
        stack="test",
        project="acme" if cloud == "gcp" else None,
    )
    for field_name, config_name in names.items():
        stack_value = getattr(config, config_name, None)
        if stack_value is None:
            stack_value = getattr(config.cluster, config_name)
        if field_name == "secondary_type":
            stack_value = stack_value[0]
        if field_name == "preemptibility":
            # What the GCP platform hands the cluster for the stack's task capacity.
            stack_value = GCP_PREEMPTIBILITY[stack_value]
        assert default_of(args_class, field_name) == stack_value, field_name


def fresh_copy(module: ModuleType) -> ModuleType:
    """The module's source run again, for defaults computed when its classes were made; the
    original stays in place for every other test."""
    name = f"{module.__name__}_fresh_copy"
    spec = importlib.util.spec_from_file_location(name, module.__file__)
    assert spec is not None
    assert spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    # dataclasses looks its module up by name to read the annotations.
    sys.modules[name] = copy
    try:
        spec.loader.exec_module(copy)
    finally:
        del sys.modules[name]
    return copy


def test_a_cluster_taken_alone_follows_the_stacks_defaults_when_they_change(
    monkeypatch: pytest.MonkeyPatch,
):
    """Equal values today prove no link; a copy of each cluster module made after the
    config's defaults change shows whether its ClusterArgs reads them or keeps its own."""
    fields = ClusterConfig.model_fields
    monkeypatch.setattr(fields["task_capacity"], "default", "on_demand")
    monkeypatch.setattr(fields["component_gateway"], "default", True)
    aws = fresh_copy(infra.aws.cluster).ClusterArgs
    gcp = fresh_copy(infra.gcp.cluster).ClusterArgs
    assert default_of(aws, "task_capacity") == "on_demand"
    assert default_of(gcp, "preemptibility") == "NON_PREEMPTIBLE"
    assert default_of(gcp, "component_gateway") is True
