"""Shipping the job: content-addressed uploads and one Dataproc PySpark job per pipeline version.

Every uploaded object is named by a digest of its bytes, so a changed bundle or spec is a new
URI, and a new URI in a job's configuration replaces the job. The old run is deleted before
the new one starts: two runs of one version on one checkpoint would corrupt it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.artifacts import JobBundle, content_key
from infra.gcp.common import object_uri, upload
from infra.options import child_options
from infra.wheelhouse import NODE_PYTHON

SPEC_PREFIX = "specs"

# The driver uses it too unless spark.pyspark.driver.python says otherwise.
JOB_PROPERTIES = {"spark.pyspark.python": NODE_PYTHON}


@dataclass(frozen=True)
class StreamingJobArgs:
    project: pulumi.Input[str]
    region: str
    cluster_name: pulumi.Input[str]
    artifacts_bucket: pulumi.Input[str]
    bundle: JobBundle
    # pipeline version -> its pipeline spec, as canonical JSON (PipelineSpec.to_json())
    specs: Mapping[str, pulumi.Input[str]]
    # Restart on failure. The API allows at most 10 per hour and 240 in all.
    max_failures_per_hour: int = 5
    max_failures_total: int = 240
    properties: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.specs:
            raise ValueError("StreamingJobArgs.specs needs at least one pipeline version")
        if not 1 <= self.max_failures_per_hour <= 10:
            raise ValueError("StreamingJobArgs.max_failures_per_hour must be 1-10")
        if not 1 <= self.max_failures_total <= 240:
            raise ValueError("StreamingJobArgs.max_failures_total must be 1-240")


def spec_key(version: str, spec_json: str) -> str:
    return content_key(SPEC_PREFIX, f"pipeline-{version}.json", spec_json.encode())


class StreamingJob(pulumi.ComponentResource):
    bundle_uri: pulumi.Output[str]
    entry_point_uri: pulumi.Output[str]
    spec_uris: dict[str, pulumi.Output[str]]
    jobs: dict[str, gcp.dataproc.Job]

    def __init__(
        self, name: str, args: StreamingJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kappa:gcp:StreamingJob", name, None, opts)
        child = child_options(self, opts)
        package = upload(
            f"{name}-package", args.artifacts_bucket, args.bundle.package, "application/zip", child
        )
        entry_point = upload(
            f"{name}-entry-point",
            args.artifacts_bucket,
            args.bundle.entry_point,
            "text/x-python",
            child,
        )
        self.bundle_uri = object_uri(package)
        self.entry_point_uri = object_uri(entry_point)
        self.spec_uris = {}
        self.jobs = {}
        for version, spec in args.specs.items():
            spec_json = pulumi.Output.from_input(spec)
            spec_object = gcp.storage.BucketObject(
                f"{name}-{version}-spec",
                bucket=args.artifacts_bucket,
                name=spec_json.apply(lambda document, v=version: spec_key(v, document)),
                content=spec_json,
                content_type="application/json",
                opts=child,
            )
            spec_uri = object_uri(spec_object)
            self.spec_uris[version] = spec_uri
            self.jobs[version] = gcp.dataproc.Job(
                f"{name}-{version}",
                project=args.project,
                region=args.region,
                placement=gcp.dataproc.JobPlacementArgs(cluster_name=args.cluster_name),
                pyspark_config=gcp.dataproc.JobPysparkConfigArgs(
                    main_python_file_uri=self.entry_point_uri,
                    python_file_uris=[self.bundle_uri],
                    args=["--spec", spec_uri],
                    properties={**JOB_PROPERTIES, **args.properties},
                ),
                scheduling=gcp.dataproc.JobSchedulingArgs(
                    max_failures_per_hour=args.max_failures_per_hour,
                    max_failures_total=args.max_failures_total,
                ),
                labels={**args.labels, "kappa-version": version},
                # A streaming job never becomes inactive; without this, replacing or
                # destroying it fails instead of cancelling it.
                force_delete=True,
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(
                        delete_before_replace=True,
                        replace_on_changes=["pysparkConfig", "placement"],
                    ),
                ),
            )
        self.register_outputs(
            {
                "bundle": self.bundle_uri,
                "entry_point": self.entry_point_uri,
                "specs": self.spec_uris,
                "jobs": {version: job.id for version, job in self.jobs.items()},
            }
        )
