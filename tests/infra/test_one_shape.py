"""The same layer has the same shape on both clouds: what a newcomer learns on one holds on
the other."""

from __future__ import annotations

import dataclasses

import pytest

from infra.aws.broker import BrokerArgs as AwsBrokerArgs
from infra.aws.cluster import ClusterArgs as AwsClusterArgs
from infra.aws.encryption import EncryptionArgs
from infra.aws.lake import LakeArgs as AwsLakeArgs
from infra.config import StackConfig
from infra.gcp.broker import BrokerArgs as GcpBrokerArgs
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
        assert default_of(args_class, field_name) == stack_value, field_name
