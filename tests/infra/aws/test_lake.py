"""S3: private, KMS-encrypted, TLS-only buckets with lifecycle rules per role."""

from __future__ import annotations

import pytest

from infra.aws.lake import BUCKET_ROLES, Lake, LakeArgs
from tests.infra.mocks import Recording, run_program

KEY = "arn:aws:kms:eu-west-1:123456789012:key/lake-test"


@pytest.fixture(scope="module")
def lake() -> Recording:
    return run_program(lambda: Lake("lake", LakeArgs(kms_key_arn=KEY, log_days=14)))


def bucket_id(role: str) -> str:
    return f"lake-{role.replace('_', '-')}-id"


def settings(recording: Recording, type_token: str, role: str):
    found = [r for r in recording.of_type(type_token) if r["bucket"] == bucket_id(role)]
    assert len(found) == 1, f"{type_token} for {role}"
    return found[0]


def test_one_bucket_per_role(lake: Recording):
    assert len(lake.of_type("aws:s3/bucket:Bucket")) == len(BUCKET_ROLES) == 5


@pytest.mark.parametrize("role", BUCKET_ROLES)
def test_every_bucket_is_encrypted_with_the_stack_key(lake: Recording, role: str):
    rule = settings(
        lake,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        role,
    )["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": KEY,
    }
    assert rule["bucketKeyEnabled"] is True


@pytest.mark.parametrize("role", BUCKET_ROLES)
def test_every_bucket_blocks_all_public_access(lake: Recording, role: str):
    block = settings(lake, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", role)
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[flag] is True


@pytest.mark.parametrize("role", BUCKET_ROLES)
def test_every_bucket_denies_requests_without_tls(lake: Recording, role: str):
    policy = settings(lake, "aws:s3/bucketPolicy:BucketPolicy", role).json("policy")
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    physical = f"arn:aws:s3:::lake-{role.replace('_', '-')}-physical"
    assert deny["Resource"] == [physical, f"{physical}/*"]


@pytest.mark.parametrize("role", BUCKET_ROLES)
def test_acls_are_disabled(lake: Recording, role: str):
    ownership = settings(lake, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", role)
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_data_that_must_not_be_lost_is_versioned_and_logs_are_not(lake: Recording):
    versioned = {r["bucket"] for r in lake.of_type("aws:s3/bucketVersioning:BucketVersioning")}
    expected = {bucket_id(r) for r in ("archive", "checkpoints", "artifacts", "dead_letters")}
    assert versioned == expected


def rules(recording: Recording, role: str):
    return settings(
        recording, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", role
    )["rules"]


def test_logs_expire(lake: Recording):
    (rule,) = rules(lake, "logs")
    assert rule["expiration"] == {"days": 14}


def test_archive_moves_to_cheaper_classes_and_is_kept(lake: Recording):
    (rule,) = rules(lake, "archive")
    assert [(t["days"], t["storageClass"]) for t in rule["transitions"]] == [
        (30, "STANDARD_IA"),
        (180, "GLACIER_IR"),
    ]
    assert "expiration" not in rule


def test_archive_expiry_is_opt_in():
    recording = run_program(
        lambda: Lake("lake", LakeArgs(kms_key_arn=KEY, archive_expire_after_days=400))
    )
    (rule,) = rules(recording, "archive")
    assert rule["expiration"] == {"days": 400}


@pytest.mark.parametrize("role", BUCKET_ROLES)
def test_incomplete_uploads_are_cleaned_up(lake: Recording, role: str):
    for rule in rules(lake, role):
        assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}


def test_buckets_are_not_emptied_on_destroy_by_default(lake: Recording):
    assert all(not b.get("forceDestroy") for b in lake.of_type("aws:s3/bucket:Bucket"))


def test_short_lived_dead_letters_are_not_tiered():
    recording = run_program(lambda: Lake("lake", LakeArgs(kms_key_arn=KEY, dead_letter_days=14)))
    (rule,) = rules(recording, "dead_letters")
    assert rule["expiration"] == {"days": 14}
    assert not rule.get("transitions")


@pytest.mark.parametrize(
    ("cold", "archive", "message"),
    [
        (20, 180, "archive_cold_after_days: got 20"),
        (30, 59, r"archive_archive_after_days: got 59; must be at least .* \(60\)"),
    ],
)
def test_a_lake_alone_refuses_transitions_s3_would_refuse(cold: int, archive: int, message: str):
    """S3 moves objects to STANDARD_IA no sooner than 30 days after creation, and out of it
    only after 30 days there
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html)."""
    with pytest.raises(ValueError, match=message):
        LakeArgs(kms_key_arn=KEY, archive_cold_after_days=cold, archive_archive_after_days=archive)
