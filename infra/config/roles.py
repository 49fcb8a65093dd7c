"""`aws:assumeRoles`: the aws provider's role chain, which the stack's own AWS calls follow too."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from infra.config.messages import path

# A Go duration as the aws provider takes it ("1h", "90m", "1h30m"), in STS's bounds.
_GO_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
ROLE_SESSION_LIMIT = 64
_DURATION_EXPECTED = "expected a duration from 15m to 12h, like 1h or 90m"


class AssumedRole(BaseModel):
    """One entry of `aws:assumeRoles`, the aws provider's own key, under its field names.

    The provider assumes the roles in order, each with the previous one's credentials; the
    stack's own boto3 calls (EMR steps, the protection release) must do the same, or they
    would act with the base credentials, in another account or not at all.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel)

    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
    session_name: str | None = Field(None, pattern=r"^[\w+=,.@-]{2,64}$")
    external_id: str | None = Field(None, min_length=2, max_length=1224, pattern=r"^[\w+=,.@:/-]+$")
    duration: str | None = None
    policy: str | None = None
    policy_arns: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    source_identity: str | None = None

    @field_validator("duration")
    @classmethod
    def _duration_in_bounds(cls, value: str | None) -> str | None:
        if value is not None:
            seconds = _duration_seconds(value)
            if seconds is None or not 900 <= seconds <= 43200:
                raise ValueError(_DURATION_EXPECTED)
        return value

    def sts_parameters(self, default_session_name: str) -> dict[str, Any]:
        """The keyword arguments of STS AssumeRole (boto3) for this role."""
        parameters: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "RoleSessionName": self.session_name or default_session_name,
        }
        optional: dict[str, Any] = {
            "ExternalId": self.external_id,
            "DurationSeconds": _duration_seconds(self.duration) if self.duration else None,
            "Policy": self.policy,
            "PolicyArns": [{"arn": arn} for arn in self.policy_arns] or None,
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()] or None,
            "TransitiveTagKeys": list(self.transitive_tag_keys) or None,
            "SourceIdentity": self.source_identity,
        }
        return parameters | {k: v for k, v in optional.items() if v is not None}


def _duration_seconds(text: str) -> int | None:
    match = _GO_DURATION.match(text)
    if not text or match is None:
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_assume_roles(value: Any) -> tuple[tuple[AssumedRole, ...], list[str]]:
    """`aws:assumeRoles` as the provider reads it: the roles, or one problem per bad field."""
    if value is None:
        return (), []
    try:
        return TypeAdapter(tuple[AssumedRole, ...]).validate_python(value), []
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = path(item["loc"])
            if item["type"] == "missing":
                problems.append(f"aws:assumeRoles{where} is required")
                continue
            field = str(item["loc"][-1]) if item["loc"] else ""
            expected = _ROLE_EXPECTATIONS.get(field, item["msg"])
            if item["type"] == "tuple_type":
                expected = "expected a list of roles, each an object with a roleArn"
            elif item["type"] == "model_type":
                expected = "expected an object with a roleArn"
            elif item["type"] == "extra_forbidden":
                fields = ", ".join(to_camel(name) for name in AssumedRole.model_fields)
                expected = f"not a field of an assumed role ({fields})"
            problems.append(f"aws:assumeRoles{where}: got {item['input']!r}; {expected}")
        return (), problems


_ROLE_EXPECTATIONS = {
    "roleArn": "expected an IAM role ARN like arn:aws:iam::123456789012:role/deploy",
    "sessionName": "expected 2 to 64 letters, digits or +=,.@_-",
    "externalId": "expected 2 to 1224 letters, digits or +=,.@:/_-",
    "duration": _DURATION_EXPECTED,
}
