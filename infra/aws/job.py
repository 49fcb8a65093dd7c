"""Ships the streaming job to the cluster: bundle, spec per pipeline version, and the run.

Every object is uploaded under a content-addressed key, and the run's command names those
keys, so a changed job or spec changes the command and replaces the run (see emr_step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.artifacts import Artifact, JobBundle, content_key
from infra.aws.emr_step import EmrStep
from infra.options import child_options
from infra.wheelhouse import NODE_PYTHON

# EMR's Kinesis connector ships in the release image (7.1 and later) but is not on Spark's
# classpath: a job that reads with it names the jar (CLOUD_FACTS.md, the EMR Serverless guide).
EMR_KINESIS_CONNECTOR_JAR = (
    "/usr/share/aws/kinesis/spark-sql-kinesis/lib/spark-streaming-sql-kinesis-connector.jar"
)


def upload(
    name: str,
    bucket: pulumi.Input[str],
    artifact: Artifact,
    parent: pulumi.Resource,
    opts: pulumi.ResourceOptions | None = None,
) -> pulumi.Output[str]:
    """Upload a built artifact under its content-addressed key; return its s3:// URI.
    `opts` are the options `parent` was given (what it waits for, its children wait for)."""
    obj = aws.s3.BucketObjectv2(
        name,
        bucket=bucket,
        key=artifact.key,
        source=pulumi.FileAsset(str(artifact.path)),
        opts=child_options(parent, opts),
    )
    return pulumi.Output.format("s3://{0}/{1}", obj.bucket, obj.key)


def region_environment(region: str) -> dict[str, str]:
    """Spark settings that give the driver (YARN's application master in cluster mode) and
    every executor the stack's region. EMR sets none in a step's environment, and a boto3
    client without one goes to us-east-1's global endpoint, which the VPC's S3 gateway
    endpoint in another region does not route
    (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html: a gateway
    endpoint serves its own region only)."""
    conf = {}
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        conf[f"spark.yarn.appMasterEnv.{variable}"] = region
        conf[f"spark.executorEnv.{variable}"] = region
    return conf


def spark_submit_command(
    *,
    application_name: str,
    package_uri: str,
    entry_point_uri: str,
    spec_uri: str,
    region: str,
    extra_conf: Mapping[str, str] | None = None,
    jars: Sequence[str] = (),
) -> list[str]:
    conf = {
        **region_environment(region),
        # Cluster mode puts the driver in YARN, which restarts it after a failure; failures
        # older than an hour do not count towards the limit, so a long-lived job survives.
        "spark.yarn.maxAppAttempts": "4",
        "spark.yarn.am.attemptFailuresValidityInterval": "1h",
        "spark.pyspark.python": NODE_PYTHON,
        "spark.pyspark.driver.python": NODE_PYTHON,
        **(extra_conf or {}),
    }
    command = ["spark-submit", "--deploy-mode", "cluster", "--master", "yarn"]
    command += ["--name", application_name]
    for key in sorted(conf):
        command += ["--conf", f"{key}={conf[key]}"]
    if jars:
        command += ["--jars", ",".join(jars)]
    command += ["--py-files", package_uri, entry_point_uri, "--spec", spec_uri]
    return command


@dataclass(frozen=True)
class StreamingJobArgs:
    cluster_id: pulumi.Input[str]
    region: str
    artifacts_bucket: pulumi.Input[str]
    # Where stop markers for runs are written; the job can read it (checkpoints bucket).
    control_uri: pulumi.Input[str]
    bundle: JobBundle
    # Pipeline version -> its spec document (JSON).
    specs: Mapping[str, pulumi.Input[str]]
    application_prefix: str = "kappa"
    extra_conf: Mapping[str, str] = field(default_factory=dict)
    # Jars on the nodes to add to the job's classpath (EMR_KINESIS_CONNECTOR_JAR).
    jars: Sequence[str] = ()
    stop_timeout_seconds: int = 900
    # The stack's `aws:profile` and role chain (config.aws_role_chain): the runs are added and
    # stopped through boto3, outside the aws provider, so they are told which credentials the
    # stack uses.
    aws_profile: str | None = None
    aws_assume_roles: Sequence[Mapping[str, Any]] = ()


class StreamingJob(pulumi.ComponentResource):
    spec_uris: dict[str, pulumi.Output[str]]
    bundle_uri: pulumi.Output[str]
    step_ids: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: StreamingJobArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kappa:aws:StreamingJob", name, None, opts)
        self._opts = opts
        bundle = args.bundle
        package_uri = upload(f"{name}-package", args.artifacts_bucket, bundle.package, self, opts)
        entry_uri = upload(f"{name}-entry", args.artifacts_bucket, bundle.entry_point, self, opts)
        self.bundle_uri = package_uri
        self.spec_uris, self.step_ids = {}, {}
        for version, document in args.specs.items():
            spec_uri = self._upload_spec(name, version, args.artifacts_bucket, document)
            application = f"{args.application_prefix}-{version}"
            command = pulumi.Output.all(package_uri, entry_uri, spec_uri).apply(
                lambda uris, application=application: spark_submit_command(
                    application_name=application,
                    package_uri=uris[0],
                    entry_point_uri=uris[1],
                    spec_uri=uris[2],
                    region=args.region,
                    extra_conf=args.extra_conf,
                    jars=args.jars,
                )
            )
            step = EmrStep(
                f"{name}-{version}",
                cluster_id=args.cluster_id,
                region=args.region,
                step_name=application,
                command=command,
                control_uri=args.control_uri,
                stop_timeout_seconds=args.stop_timeout_seconds,
                profile=args.aws_profile,
                assume_roles=args.aws_assume_roles,
                opts=child_options(self, opts, delete_before_replace=True),
            )
            self.spec_uris[version] = spec_uri
            self.step_ids[version] = step.step_id
        self.register_outputs(
            {"bundle_uri": package_uri, "spec_uris": self.spec_uris, "step_ids": self.step_ids}
        )

    def _upload_spec(
        self, name: str, version: str, bucket: pulumi.Input[str], document: pulumi.Input[str]
    ) -> pulumi.Output[str]:
        key = pulumi.Output.from_input(document).apply(
            lambda text: content_key(f"specs/{version}", "spec.json", text.encode())
        )
        obj = aws.s3.BucketObjectv2(
            f"{name}-{version}-spec",
            bucket=bucket,
            key=key,
            content=document,
            content_type="application/json",
            opts=child_options(self, self._opts),
        )
        return pulumi.Output.format("s3://{0}/{1}", obj.bucket, obj.key)
