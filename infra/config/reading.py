"""Reading the stack's configuration from Pulumi: the only place that touches pulumi.Config."""

from __future__ import annotations

from typing import Any

from infra.config.keys import PROJECT
from infra.config.stack import StackConfig


def load_config() -> StackConfig:
    """Read this stack's configuration from Pulumi; call once, before declaring resources."""
    import pulumi

    values = _project_config(pulumi)
    cloud = values.get("cloud")
    provider = pulumi.Config(cloud) if cloud in ("aws", "gcp") else None
    region = provider.get("region") if provider else None
    project = provider.get("project") if provider and cloud == "gcp" else None
    aws = provider if provider and cloud == "aws" else None
    return StackConfig.parse(
        values,
        region=region,
        stack=pulumi.get_stack(),
        project=project,
        aws_profile=aws.get("profile") if aws else None,
        aws_assume_roles=aws.get_object("assumeRoles") if aws else None,
    )


def _project_config(pulumi: Any) -> dict[str, Any]:
    """All `kappa:` keys set for the stack, so that misspelt keys are caught, not ignored.

    pulumi.Config can only look keys up by name; the full map lives in the runtime's config
    (set by the language host) or in PULUMI_CONFIG (older hosts), so both are read.
    """
    from pulumi.runtime import config as runtime_config

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{PROJECT}:"
    return {k.removeprefix(prefix): v for k, v in merged.items() if k.startswith(prefix)}
