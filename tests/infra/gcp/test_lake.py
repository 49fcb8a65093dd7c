"""Cloud Storage: one bucket per role, private, regional, versioned where data must not be lost."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pytest

from infra.gcp.lake import Lake, LakeArgs
from infra.gcp.services import Services, ServicesArgs
from tests.infra.gcp.conftest import CMEK_KEY, GcpStack, named, run_layer
from tests.infra.mocks import Recording, RecordingMocks, Resource, run_program

BUCKET = "gcp:storage/bucket:Bucket"
KEY_GRANT = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
AGENT_LOOKUP = "gcp:storage/getProjectServiceAccount:getProjectServiceAccount"
SERVICE = "gcp:projects/service:Service"
ROLES = ("archive", "checkpoints", "artifacts", "staging", "logs", "dead-letters")


def bucket(recording: Recording, role: str) -> Resource:
    return named(recording, BUCKET, f"kappa-test-{role}")


def rules(resource: Resource, action: str) -> list[dict[str, Any]]:
    return [r for r in resource["lifecycleRules"] if r["action"]["type"] == action]


def test_there_is_one_bucket_per_role(default_stack: Recording):
    labels = sorted(b["labels"]["kappa-role"] for b in default_stack.of_type(BUCKET))
    assert labels == sorted(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_bucket_is_private_with_uniform_access(default_stack: Recording, role: str):
    resource = bucket(default_stack, role)
    assert resource["uniformBucketLevelAccess"] is True
    assert resource["publicAccessPrevention"] == "enforced"


def test_buckets_are_regional_in_the_stacks_region(default_stack: Recording):
    assert {b["location"] for b in default_stack.of_type(BUCKET)} == {"EUROPE-WEST1"}


def test_versioning_is_on_where_data_cannot_be_rebuilt(default_stack: Recording):
    versioned = {
        b["labels"]["kappa-role"]
        for b in default_stack.of_type(BUCKET)
        if b["versioning"]["enabled"]
    }
    assert versioned == {"archive", "checkpoints", "dead-letters"}


def test_overwritten_versions_expire_after_a_recovery_window(default_stack: Recording):
    (rule,) = [
        r
        for r in rules(bucket(default_stack, "checkpoints"), "Delete")
        if r["condition"].get("withState") == "ARCHIVED"
    ]
    assert rule["condition"]["daysSinceNoncurrentTime"] == 7


def test_archive_moves_to_colder_classes_and_is_kept_by_default(default_stack: Recording):
    archive = bucket(default_stack, "archive")
    moves = {
        r["action"]["storageClass"]: r["condition"]["age"]
        for r in rules(archive, "SetStorageClass")
    }
    assert moves == {"NEARLINE": 30, "ARCHIVE": 180}
    assert not [
        r for r in rules(archive, "Delete") if r["condition"].get("withState") != "ARCHIVED"
    ]


def test_archive_expires_when_asked(gcp_stack: GcpStack):
    archive = bucket(gcp_stack(archiveExpireAfterDays=400), "archive")
    (expiry,) = [r for r in rules(archive, "Delete") if r["condition"].get("age")]
    assert expiry["condition"] == {"age": 400, "withState": "LIVE"}


def test_logs_and_dead_letters_expire_after_their_retention(gcp_stack: GcpStack):
    recording = gcp_stack(logRetentionDays=14, deadLetterRetentionDays=90)
    (logs,) = rules(bucket(recording, "logs"), "Delete")
    assert logs["condition"]["age"] == 14
    ages = [r["condition"].get("age") for r in rules(bucket(recording, "dead-letters"), "Delete")]
    assert 90 in ages


@pytest.mark.parametrize("role", ["artifacts", "staging"])
def test_artifacts_and_the_clusters_staging_files_never_expire(gcp_stack: GcpStack, role: str):
    recording = gcp_stack(logRetentionDays=1)
    assert rules(bucket(recording, role), "Delete") == []


@pytest.mark.parametrize("role", ROLES)
def test_abandoned_multipart_uploads_are_cleaned_up(default_stack: Recording, role: str):
    (rule,) = rules(bucket(default_stack, role), "AbortIncompleteMultipartUpload")
    assert rule["condition"]["age"] == 7


def test_dev_buckets_can_be_destroyed_with_their_objects(default_stack: Recording):
    for resource in default_stack.of_type(BUCKET):
        assert resource["forceDestroy"] is True
        assert resource.get("deletionPolicy") is None


def test_outside_dev_stateful_buckets_refuse_deletion(gcp_stack: GcpStack):
    recording = gcp_stack(environment="prod")
    policies = {
        b["labels"]["kappa-role"]: b.get("deletionPolicy") for b in recording.of_type(BUCKET)
    }
    assert policies == {
        "archive": "PREVENT",
        "checkpoints": "PREVENT",
        "dead-letters": "PREVENT",
        "artifacts": None,
        "staging": None,
        "logs": None,
    }
    assert {b["forceDestroy"] for b in recording.of_type(BUCKET)} == {False}


def test_google_managed_encryption_without_a_key(default_stack: Recording):
    assert all(b.get("encryption") is None for b in default_stack.of_type(BUCKET))
    assert default_stack.of_type(KEY_GRANT) == []


def lake_with_key() -> Lake:
    return Lake(
        "kappa-test", LakeArgs(project="acme-data", location="europe-west1", kms_key=CMEK_KEY)
    )


def test_cmek_encrypts_every_bucket_with_the_key():
    recording = run_layer(lake_with_key)
    for resource in recording.of_type(BUCKET):
        assert resource["encryption"] == {"defaultKmsKeyName": CMEK_KEY}


def test_cmek_lets_the_storage_agent_use_the_key_before_buckets_exist():
    recording = run_layer(lake_with_key)
    grant = recording.one(KEY_GRANT)
    assert grant["cryptoKeyId"] == CMEK_KEY
    assert grant["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert grant["member"].startswith("serviceAccount:service-")
    assert grant["member"].endswith("@gs-project-accounts.mock")
    assert all(recording.depends_on(b, grant) for b in recording.of_type(BUCKET))


def storage_api_alone() -> pulumi.Resource:
    return gcp.projects.Service(
        "storage-api", project="acme-data", service="storage.googleapis.com"
    )


def storage_api_in_services() -> pulumi.Resource:
    # As the platform passes it: the component that enables the stack's APIs.
    return Services(
        "kappa-test", ServicesArgs(project="acme-data", apis=("storage.googleapis.com",))
    )


@pytest.mark.parametrize("storage_api", [storage_api_alone, storage_api_in_services])
def test_cmek_looks_up_the_storage_agent_only_after_what_the_lake_waits_for(
    monkeypatch: pytest.MonkeyPatch, storage_api: Callable[[], pulumi.Resource]
):
    """On a new project the stack enables the Cloud Storage API (infra/gcp/services.py), and
    the agent lookup (projects.serviceAccount.get,
    https://cloud.google.com/storage/docs/json_api/v1/projects/serviceAccount/get) fails until
    the API is on. An invoke waits only for its own dependsOn
    (https://www.pulumi.com/docs/reference/pkg/nodejs/pulumi/pulumi/interfaces/InvokeOutputOptions.html),
    not its parent's. Here the API's registration is held until the lookup is made, or for a
    second: a lookup that does not wait for it is made in the meantime."""
    api_registered = threading.Event()
    lookup_made = threading.Event()
    api_was_on_at_lookup: list[bool] = []
    new_resource, call = RecordingMocks.new_resource, RecordingMocks.call

    def register(self: RecordingMocks, args: Any) -> Any:
        if args.typ != SERVICE:
            return new_resource(self, args)
        lookup_made.wait(timeout=1)
        registered = new_resource(self, args)
        api_registered.set()
        return registered

    def invoke(self: RecordingMocks, args: Any) -> Any:
        if args.token == AGENT_LOOKUP:
            api_was_on_at_lookup.append(api_registered.is_set())
            lookup_made.set()
        return call(self, args)

    monkeypatch.setattr(RecordingMocks, "new_resource", register)
    monkeypatch.setattr(RecordingMocks, "call", invoke)

    def program() -> None:
        api = storage_api()
        Lake(
            "kappa-test",
            LakeArgs(project="acme-data", location="europe-west1", kms_key=CMEK_KEY),
            opts=pulumi.ResourceOptions(depends_on=[api]),
        )

    recording = run_program(program)
    assert api_was_on_at_lookup == [True]
    assert recording.one(KEY_GRANT)["member"].endswith("@gs-project-accounts.mock")
