"""Self-signed TLS material for EMR's in-transit encryption, uploaded where EMR fetches it.

EMR's PEM certificate provider wants the key and certificates in a zip on S3
(https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-encryption-enable.html).
This is a function, not a component: its resources are the cluster's children, declared with
the options the cluster passes, so their URNs (`kappa:aws:Cluster$tls:...::<name>-tls`) are
those of deployed stacks and moving the code here replaces nothing.
"""

from __future__ import annotations

import base64

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from infra.artifacts import content_key, deterministic_zip


def internal_domain(region: str) -> str:
    """The domain of EC2's private host names in a region, which EMR's nodes carry: EMR's
    in-transit encryption guide suggests a `*.ec2.internal` certificate in us-east-1.

    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-naming.html
    """
    return "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"


def in_transit_certificates(
    name: str, *, region: str, bucket: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """Declare the key, the certificate for the nodes of `region` and their zip in `bucket`;
    return the zip's `s3://` URI for the security configuration.

    `opts` are the caller's options for its children (the cluster's `parent=self`). The key
    lives in the Pulumi state as a secret and in the encrypted, private artifacts bucket.
    """
    key = tls.PrivateKey(f"{name}-tls", algorithm="RSA", rsa_bits=2048, opts=opts)
    # A wildcard stands for one label, so the certificate names the nodes' own domain.
    wildcard = f"*.{internal_domain(region)}"
    certificate = tls.SelfSignedCert(
        f"{name}-tls",
        private_key_pem=key.private_key_pem,
        subject={"common_name": wildcard, "organization": "kappa"},
        dns_names=[wildcard],
        validity_period_hours=2 * 365 * 24,
        early_renewal_hours=30 * 24,
        allowed_uses=["key_encipherment", "digital_signature", "server_auth", "client_auth"],
        opts=opts,
    )
    bundle = pulumi.Output.all(key.private_key_pem, certificate.cert_pem).apply(
        lambda pems: base64.b64encode(
            deterministic_zip(
                {
                    "privateKey.pem": pems[0].encode(),
                    "certificateChain.pem": pems[1].encode(),
                    "trustedCertificates.pem": pems[1].encode(),
                }
            )
        ).decode()
    )
    uploaded = aws.s3.BucketObjectv2(
        f"{name}-tls",
        bucket=bucket,
        # Named by the certificate, so a new one (early renewal, a new region) is a new
        # object and a new cluster: overwritten in place, it would reach only the nodes
        # that boot later, which the others would not trust.
        key=certificate.cert_pem.apply(
            lambda pem: content_key("security", f"{name}-in-transit-tls.zip", pem.encode())
        ),
        content_base64=pulumi.Output.secret(bundle),
        opts=opts,
    )
    # From the object's outputs, so the security configuration (and so the cluster, whose
    # nodes fetch the zip at boot) waits until it is uploaded.
    return pulumi.Output.format("s3://{0}/{1}", uploaded.bucket, uploaded.key)
