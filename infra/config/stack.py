"""StackConfig: the whole validated configuration of one stack, and its parse in one pass.

Every problem is reported at once: a key's own value (the section models), keys the project
does not have or that belong to the other cloud, the provider's region and project, the role
chain, and the rules over several keys. The rules judge a view in which each refused value
stands at its default, and skip any rule that reads a refused key, so a value is never judged
twice nor against a default the stack did not ask for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from infra.config import checks
from infra.config.checks.provider import project_problems, region_problems
from infra.config.clouds import CLOUD_DEFAULTS, Cloud, machine_architecture
from infra.config.keys import PROJECT, keys_of_the_other_cloud, set_on_purpose, unknown_keys
from infra.config.messages import ConfigError, describe
from infra.config.roles import ROLE_SESSION_LIMIT, AssumedRole, parse_assume_roles
from infra.config.sections import (
    SECTIONS,
    BrokerConfig,
    ClusterConfig,
    GeneralConfig,
    NetworkConfig,
    PipelineConfig,
    RetentionConfig,
    ServingConfig,
    _Section,
    section_keys,
)


class StackConfig(BaseModel):
    """The whole validated configuration of one stack."""

    model_config = ConfigDict(frozen=True)

    cloud: Cloud
    region: str
    project: str | None  # the GCP project; None on AWS
    stack: str
    # aws:profile and aws:assumeRoles, for what calls AWS through boto3 rather than the
    # provider (EMR steps, the protection release).
    aws_profile: str | None = None
    aws_assume_roles: tuple[AssumedRole, ...] = ()
    general: GeneralConfig
    broker: BrokerConfig
    cluster: ClusterConfig
    serving: ServingConfig
    network: NetworkConfig
    retention: RetentionConfig
    pipeline: PipelineConfig

    @property
    def environment(self) -> str:
        return self.general.environment

    @property
    def aws_role_chain(self) -> list[dict[str, Any]]:
        """STS AssumeRole arguments for each of `aws:assumeRoles`, in order."""
        session = f"{PROJECT}-{self.stack}"[:ROLE_SESSION_LIMIT]
        return [role.sts_parameters(session) for role in self.aws_assume_roles]

    @property
    def deletion_protection(self) -> bool:
        """On unless set: only a `dev` environment may lose stateful resources with the stack."""
        if self.general.deletion_protection is not None:
            return self.general.deletion_protection
        return self.general.environment != "dev"

    @property
    def release(self) -> str:
        return self.cluster.release or CLOUD_DEFAULTS[self.cloud]["release"]

    @property
    def master_type(self) -> str:
        return self.cluster.master_type or CLOUD_DEFAULTS[self.cloud]["master_type"]

    @property
    def core_type(self) -> str:
        return self.cluster.core_type or CLOUD_DEFAULTS[self.cloud]["core_type"]

    @property
    def task_types(self) -> tuple[str, ...]:
        return self.cluster.task_types or CLOUD_DEFAULTS[self.cloud]["task_types"]

    @property
    def node_machine(self) -> Literal["x86_64", "aarch64"]:
        """The nodes' CPU, for the wheelhouse; the config refuses a mix of architectures."""
        return machine_architecture(self.cloud, self.master_type)

    @property
    def serving_zone(self) -> str:
        """GCP: the Bigtable cluster's zone; zone b exists in every Google Cloud region."""
        return self.serving.zone or f"{self.region}-b"

    @property
    def serving_kind(self) -> str:
        return self.serving.kind or CLOUD_DEFAULTS[self.cloud]["serving_kind"]

    @property
    def tags(self) -> dict[str, str]:
        """User tags plus the ones that say which stack owns a resource."""
        base = {"project": PROJECT, "stack": self.stack, "environment": self.environment}
        return {**base, **self.general.tags}

    @classmethod
    def parse(
        cls,
        values: Mapping[str, Any],
        *,
        region: str | None,
        stack: str,
        project: str | None = None,
        aws_profile: str | None = None,
        aws_assume_roles: Any = None,
    ) -> StackConfig:
        """Validate flat project keys (without the `kappa:` prefix); raise ConfigError."""
        values = set_on_purpose(values)
        problems = unknown_keys(values)
        sections: dict[str, _Section] = {}
        refused: set[str] = set()
        for name, model in SECTIONS.items():
            sections[name], section_problems, section_refused = _validate(model, values)
            problems += section_problems
            refused |= section_refused
        general = cast(GeneralConfig, sections["general"])
        cloud = None if "cloud" in refused else general.cloud
        if cloud is None:
            refused.add("region")  # which provider's region to read depends on the cloud
        else:
            problems += keys_of_the_other_cloud(values, cloud)
            found = region_problems(cloud, region)
            refused |= {"region"} if found else set()
            problems += found + project_problems(cloud, project)
        roles, role_problems = parse_assume_roles(aws_assume_roles)
        problems += role_problems
        fields = {
            "cloud": cloud,
            "region": region or "",
            "project": project,
            "stack": stack,
            "aws_profile": aws_profile,
            "aws_assume_roles": roles,
            **sections,
        }
        # Without a cloud the view cannot be validated; only the rules that do not read the
        # cloud run over it (one that read it anyway would fail on None, not judge wrongly).
        config = cls.model_validate(fields) if cloud else cls.model_construct(**fields)
        problems += checks.run(config, refused)
        if problems:
            raise ConfigError(problems)
        return config


def _validate(
    model: type[_Section], values: Mapping[str, Any]
) -> tuple[_Section, list[str], set[str]]:
    """One section: its model, the problems of its keys and the keys refused.

    The model holds the values that passed and, for the refused keys, their defaults, for the
    rules to judge the rest by. The cloud has no default: a refused one stands as None.
    """
    given = {key: value for key, value in values.items() if key in section_keys(model)}
    try:
        return model.model_validate(given), [], set()
    except ValidationError as error:
        items = error.errors()
    refused = {str(item["loc"][0]) for item in items if item["loc"]}
    kept = {key: value for key, value in given.items() if key not in refused}
    if "cloud" in refused:
        stand_in = model.model_validate({**kept, "cloud": "aws"})
        section = stand_in.model_copy(update={"cloud": None})
    else:
        section = model.model_validate(kept)
    return section, [describe(item, given) for item in items], refused
