"""IAM policy documents built from Outputs; every statement names its resources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

EMR_MANAGED_POLICY_TAG = {"for-use-with-amazon-emr-managed-policies": "true"}


def statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    *,
    effect: str = "Allow",
    condition: dict[str, Any] | None = None,
    principal: dict[str, Any] | str | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "Sid": sid,
        "Effect": effect,
        "Action": sorted(actions),
        "Resource": list(resources),
    }
    if condition:
        document["Condition"] = condition
    if principal is not None:
        document["Principal"] = principal
    return document


def document(*statements: dict[str, Any]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role_policy(service: str) -> str:
    import json

    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def trust_policy(service: str, condition: dict[str, Any]) -> pulumi.Output[str]:
    """Who may assume a role: `service`, under `condition` (whose values may be Outputs)."""
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                    "Condition": condition,
                }
            ],
        }
    )


def deny_insecure_transport(bucket_arn: pulumi.Input[str]) -> dict[str, Any]:
    """Refuse every request that does not arrive over TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
