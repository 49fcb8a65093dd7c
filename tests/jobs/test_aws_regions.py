"""Every AWS client the job builds names its region: none is left to boto3's fallback.

On a cluster node nothing sets a region unless the stack does, and boto3 without one signs
for us-east-1 and calls the global S3 endpoint, which a VPC's S3 gateway endpoint in another
region does not route (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from kappa import objects

JOBS = Path(__file__).resolve().parents[2] / "jobs"
CLIENT_FACTORIES = {"client", "resource"}


def client_calls(tree: ast.AST) -> list[ast.Call]:
    """Every `<anything>.client(service, ...)` / `.resource(service, ...)` in a module, the
    service given by position or as `service_name=`.

    Matched by the call's shape, not by what builds the client (boto3, a session, a session
    made in the same expression), so no way of building one slips past.
    """
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLIENT_FACTORIES
        and (node.args or any(k.arg == "service_name" for k in node.keywords))
    ]


def names_a_region(call: ast.Call) -> bool:
    """`region_name=` given, and not as a literal None, which is boto3's fallback again."""
    return any(
        k.arg == "region_name" and not (isinstance(k.value, ast.Constant) and k.value.value is None)
        for k in call.keywords
    )


def boto3_client_calls() -> list[tuple[str, ast.Call]]:
    """Every client or resource call in jobs/, with where it is."""
    found = []
    for path in sorted(JOBS.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in client_calls(tree):
            found.append((f"{path.relative_to(JOBS)}:{node.lineno}", node))
    return found


def test_every_boto3_client_in_the_job_is_given_a_region():
    calls = boto3_client_calls()
    # The job's S3, Kinesis and DynamoDB clients and the local stand-ins' own.
    assert len(calls) >= 5
    missing = [where for where, call in calls if not names_a_region(call)]
    assert missing == []


@pytest.mark.parametrize(
    "source",
    [
        'boto3.client("s3")',
        'boto3.client("s3", region_name=None)',
        'boto3.client(service_name="s3")',
        'boto3.client(service_name="s3", region_name=None)',
        'boto3.resource("dynamodb", endpoint_url=url)',
        'boto3.session.Session().client("kinesis", **options)',
    ],
)
def test_a_client_left_to_boto3s_fallback_region_is_caught(source: str):
    (call,) = client_calls(ast.parse(source))
    assert not names_a_region(call)


@pytest.mark.parametrize(
    "source",
    [
        'boto3.client("s3", region_name=region)',
        'boto3.client(service_name="s3", region_name="eu-west-1")',
        'session.resource("dynamodb", region_name=aws_region(), **credentials)',
    ],
)
def test_a_client_given_its_region_passes(source: str):
    (call,) = client_calls(ast.parse(source))
    assert names_a_region(call)


def test_s3_refuses_to_guess_a_region(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(objects.ObjectStoreError, match="cannot read s3://b/k: no AWS region"):
        objects.read_bytes("s3://b/k")


def test_s3_takes_the_region_the_step_exports(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert objects._s3().meta.region_name == "eu-west-1"
    monkeypatch.delenv("AWS_REGION")
    assert objects._s3().meta.region_name == "us-east-1"
