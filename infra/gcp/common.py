"""Small pieces every GCP layer shares: labels, ids, service agents, CMEK grants, uploads."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

import pulumi
import pulumi_gcp as gcp

from infra.artifacts import Artifact

KMS_ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"

# Google-managed service agents, named by project number:
# https://cloud.google.com/iam/docs/service-agents
SERVICE_AGENT_DOMAINS = {
    "pubsub": "gcp-sa-pubsub.iam.gserviceaccount.com",
    "bigtable": "gcp-sa-bigtable.iam.gserviceaccount.com",
    "dataproc": "dataproc-accounts.iam.gserviceaccount.com",
    "compute": "compute-system.iam.gserviceaccount.com",
}

_LABEL_INVALID = re.compile(r"[^a-z0-9_-]")


def labels(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags as GCP labels: lower-case letters, digits, '_' and '-', at most 63 characters.

    The stack's own tags (its name, say) are not validated like user tags, so they are
    folded here rather than rejected.
    """
    folded = {}
    for key, value in tags.items():
        label_key = _LABEL_INVALID.sub("-", key.lower())[:63]
        if not label_key[:1].isalpha():
            label_key = f"k{label_key}"[:63]
        folded[label_key] = _LABEL_INVALID.sub("-", value.lower())[:63]
    return folded


def short_id(name: str, max_length: int, *, min_length: int = 1) -> str:
    """A lower-case id of at most `max_length` characters, unique per `name`.

    Some GCP ids are short (service account ids: 6-30) and not auto-named by Pulumi; a long
    name is cut and suffixed with a digest of the whole name, so two names never collide.
    """
    cleaned = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-") or "kappa"
    if not cleaned[0].isalpha():
        cleaned = f"k{cleaned}"
    if len(cleaned) <= max_length:
        return cleaned.ljust(min_length, "0")
    suffix = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{cleaned[: max_length - 7].rstrip('-')}-{suffix}"


def project_number(project: pulumi.Input[str], parent: pulumi.Resource) -> pulumi.Output[str]:
    found = gcp.organizations.get_project_output(
        project_id=project, opts=pulumi.InvokeOutputOptions(parent=parent)
    )
    return found.number


def service_agent(number: pulumi.Input[str], service: str) -> pulumi.Output[str]:
    """The IAM member of a Google service agent of the project with this number."""
    domain = SERVICE_AGENT_DOMAINS[service]
    return pulumi.Output.concat("serviceAccount:service-", number, "@", domain)


def grant_kms(
    name: str,
    key: str,
    members: Mapping[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> list[gcp.kms.CryptoKeyIAMMember]:
    """Let service agents use a CMEK key; the key itself stays outside the stack."""
    return [
        gcp.kms.CryptoKeyIAMMember(
            f"{name}-kms-{agent}",
            crypto_key_id=key,
            role=KMS_ENCRYPTER_DECRYPTER,
            member=member,
            opts=opts,
        )
        for agent, member in members.items()
    ]


def upload(
    resource_name: str,
    bucket: pulumi.Input[str],
    artifact: Artifact,
    content_type: str,
    opts: pulumi.ResourceOptions,
) -> gcp.storage.BucketObject:
    """Upload a built artifact under its content-addressed key."""
    return gcp.storage.BucketObject(
        resource_name,
        bucket=bucket,
        name=artifact.key,
        source=pulumi.FileAsset(str(artifact.path)),
        content_type=content_type,
        opts=opts,
    )


def object_uri(obj: gcp.storage.BucketObject) -> pulumi.Output[str]:
    return pulumi.Output.concat("gs://", obj.bucket, "/", obj.name)


def bucket_uri(bucket: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.concat("gs://", bucket)
