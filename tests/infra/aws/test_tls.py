"""EMR's in-transit TLS material: its own module, still the cluster's children."""

from __future__ import annotations

import pulumi
import pytest

from infra.aws.tls import in_transit_certificates, internal_domain
from tests.infra.mocks import Recording, resolve, run_program

TLS_TYPES = (
    "tls:index/privateKey:PrivateKey",
    "tls:index/selfSignedCert:SelfSignedCert",
    "aws:s3/bucketObjectv2:BucketObjectv2",
)


def tls_material(recording: Recording) -> set[tuple[str, str, str | None]]:
    """Type, name and parent of the key, the certificate and the zip (the only object named
    `-tls`; the other objects are the bundle, the wheelhouse, specs and scripts)."""
    return {
        (r.type, r.name, r.parent)
        for r in recording
        if r.type in TLS_TYPES and (r.type.startswith("tls:") or r.name.endswith("-tls"))
    }


def test_tls_material_keeps_the_urns_of_deployed_stacks(default_stack: Recording):
    """A URN is the parent's type chain, the type and the name: with the same three, the key,
    the certificate and the zip of a deployed stack stay where they are (a new URN would
    be a new certificate, and so a new cluster)."""
    cluster = "urn:pulumi:test::kappa::kappa:aws:Platform$kappa:aws:Cluster::kappa-test"
    assert tls_material(default_stack) == {(kind, "kappa-test-tls", cluster) for kind in TLS_TYPES}


@pytest.mark.parametrize(
    ("region", "domain"),
    [
        ("us-east-1", "ec2.internal"),
        ("eu-west-1", "eu-west-1.compute.internal"),
        ("ap-southeast-2", "ap-southeast-2.compute.internal"),
    ],
)
def test_internal_domain_is_ec2s_private_host_name_domain(region: str, domain: str):
    assert internal_domain(region) == domain


def test_the_certificates_uri_names_the_uploaded_zip():
    uris: list[pulumi.Output[str]] = []

    def program() -> None:
        parent = pulumi.ComponentResource("test:index:Owner", "owner")
        uris.append(
            in_transit_certificates(
                "owner",
                region="eu-west-1",
                bucket="my-artifacts",
                opts=pulumi.ResourceOptions(parent=parent),
            )
        )

    recording = run_program(program)
    uploaded = recording.one(TLS_TYPES[2])
    assert resolve(uris[0]) == f"s3://my-artifacts/{uploaded['key']}"
    assert uploaded["key"].startswith("security/owner-in-transit-tls-")
    parents = {r.parent for r in recording if r.type in TLS_TYPES}
    assert parents == {"urn:pulumi:test::kappa::pulumi:pulumi:Stack$test:index:Owner::owner"}


def test_the_private_key_travels_only_as_a_secret(default_stack: Recording):
    """The zip EMR fetches holds the nodes' private key: Pulumi must keep it encrypted in the
    stack's state and mask it in every preview and log."""
    (bundle,) = [
        o
        for o in default_stack.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
        if o.name == "kappa-test-tls"
    ]
    assert bundle.secret_inputs == ("contentBase64",)
    assert "content" not in bundle.inputs
