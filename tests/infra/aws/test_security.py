"""Security invariants over the whole default AWS stack, whatever the layer."""

from __future__ import annotations

from tests.infra.mocks import Recording


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_no_iam_statement_grants_any_action_on_any_resource(default_stack: Recording):
    for policy in default_stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in policy.json("policy")["Statement"]:
            actions = _as_list(statement["Action"])
            resources = _as_list(statement["Resource"])
            assert "*" not in resources, (policy.name, statement["Sid"])
            assert not any(a == "*" or a.endswith(":*") for a in actions), (
                policy.name,
                statement["Sid"],
            )


def test_every_bucket_is_private_encrypted_and_tls_only(default_stack: Recording):
    buckets = {b.outputs["id"] for b in default_stack.of_type("aws:s3/bucket:Bucket")}
    for token in (
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketPolicy:BucketPolicy",
    ):
        assert {r["bucket"] for r in default_stack.of_type(token)} == buckets, token


def test_everything_stateful_is_encrypted_with_the_stack_key(default_stack: Recording):
    key = default_stack.one("aws:kms/key:Key")
    assert key["enableKeyRotation"] is True
    arn = key.outputs["arn"]
    assert default_stack.one("aws:kinesis/stream:Stream")["kmsKeyId"] == arn
    assert default_stack.one("aws:dynamodb/table:Table")["serverSideEncryption"]["kmsKeyArn"] == arn


def test_the_key_policy_trusts_only_this_account(default_stack: Recording):
    (statement,) = default_stack.one("aws:kms/key:Key").json("policy")["Statement"]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}


def test_nothing_gets_a_public_address(default_stack: Recording):
    assert default_stack.of_type("aws:ec2/eip:Eip") == []
    for subnet in default_stack.of_type("aws:ec2/subnet:Subnet"):
        assert subnet["mapPublicIpOnLaunch"] is False
