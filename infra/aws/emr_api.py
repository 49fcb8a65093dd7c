"""boto3 for the dynamic resources that act on an EMR cluster (steps, termination protection).

A dynamic provider runs in Pulumi's provider host, outside the aws provider, so it does not
see the stack's aws provider settings; what it needs of them travels in its inputs: the
region, the `aws:profile` and the role chain of `aws:assumeRoles` (as STS AssumeRole
arguments, assumed in order like the provider does).

Imported by reference from the provider host, so it stays light: boto3 loads on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pulumi

CLUSTER_GONE_STATES = ("TERMINATED", "TERMINATED_WITH_ERRORS")


def session(props: dict[str, Any]) -> Any:
    """A session in the stack's region with the stack's profile (the default chain without),
    then as each role of the stack's role chain in turn."""
    import boto3

    region = props["region"]
    current = boto3.Session(profile_name=props.get("profile") or None, region_name=region)
    for parameters in props.get("assume_roles") or ():
        credentials = current.client("sts").assume_role(**parameters)["Credentials"]
        current = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )
    return current


def connection_inputs(
    region: pulumi.Input[str],
    profile: pulumi.Input[str] | None,
    assume_roles: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The inputs `session` reads, for a dynamic resource to carry. The role chain is secret:
    it may hold external ids."""
    import pulumi

    chain = pulumi.Output.secret([dict(role) for role in assume_roles]) if assume_roles else None
    return {"region": region, "profile": profile, "assume_roles": chain}


def client(service: str, props: dict[str, Any]) -> Any:
    return session(props).client(service, endpoint_url=props.get("endpoint"))


def cluster_gone(emr: Any, cluster_id: str) -> bool:
    """Whether the cluster is terminated, or no longer known to EMR."""
    from botocore.exceptions import ClientError

    try:
        state = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]
    except ClientError as error:
        if is_invalid_request(error):
            return True
        raise
    return state in CLUSTER_GONE_STATES


def changed_inputs(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    """The inputs a dynamic resource's diff sees changed (Pulumi's own `__` keys aside)."""
    return [key for key in news if not key.startswith("__") and olds.get(key) != news.get(key)]


def is_invalid_request(error: Any) -> bool:
    """EMR's answer for a cluster or step id it does not know."""
    return error.response.get("Error", {}).get("Code") == "InvalidRequestException"
