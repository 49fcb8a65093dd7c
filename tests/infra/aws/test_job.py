"""Shipping the job: content-addressed uploads, and a run that follows the bundle and spec."""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import pytest
from kappa.spec import DynamoDbSink, KinesisSource, PipelineSpec

import infra.aws.platform
from infra.artifacts import JOBS_DIR, build_job_bundle, digest
from infra.aws.job import EMR_KINESIS_CONNECTOR_JAR, StreamingJob, StreamingJobArgs
from tests.infra.mocks import Recording, run_program

STEP = "pulumi-python:dynamic/kappa:EmrStep"


def objects(recording: Recording) -> dict[str, dict]:
    return {o.name: o.inputs for o in recording.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}


def uri(obj: dict) -> str:
    return f"s3://{obj['bucket']}/{obj['key']}"


def test_the_spec_is_uploaded_under_its_content_digest(default_stack: Recording):
    spec = objects(default_stack)["kappa-test-v1-spec"]
    assert spec["key"] == f"specs/v1/spec-{digest(spec['content'].encode())[:16]}.json"
    assert spec["contentType"] == "application/json"


def test_the_spec_points_the_job_at_this_stacks_resources(default_stack: Recording):
    spec = PipelineSpec.from_json(objects(default_stack)["kappa-test-v1-spec"]["content"])
    assert isinstance(spec.source, KinesisSource)
    assert spec.source.stream_name == "kappa-test-events"
    assert spec.source.region == "eu-west-1"
    assert isinstance(spec.sink, DynamoDbSink)
    assert spec.serving_table == "kappa-test-aggregates_v1"
    assert spec.storage.archive_uri == "s3://kappa-test-archive-physical"
    assert spec.checkpoint_location == "s3://kappa-test-checkpoints-physical/v1"
    assert spec.storage.dead_letter_uri == "s3://kappa-test-dead-letters-physical"


def test_the_driver_and_executors_get_the_stacks_region(aws_stack):
    """EMR puts no region in a step's environment; boto3 without one signs for us-east-1 and
    goes to the global S3 endpoint, which a gateway endpoint in another region does not route
    (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html). The driver
    runs in YARN's application master (cluster mode): appMasterEnv, then executorEnv."""
    command = aws_stack().one(STEP)["command"]
    confs = {command[i + 1] for i, word in enumerate(command) if word == "--conf"}
    for scope in ("spark.yarn.appMasterEnv", "spark.executorEnv"):
        for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            assert f"{scope}.{variable}=eu-west-1" in confs


def test_the_run_submits_the_uploaded_bundle_and_spec(default_stack: Recording):
    uploaded = objects(default_stack)
    step = default_stack.one(STEP)
    command = step["command"]
    assert command[:5] == ["spark-submit", "--deploy-mode", "cluster", "--master", "yarn"]
    package, entry = uploaded["kappa-test-package"], uploaded["kappa-test-entry"]
    assert package["key"].startswith("jobs/kappa-")
    assert package["key"].endswith(".zip")
    assert command[command.index("--py-files") + 1] == uri(package)
    assert command[command.index("--py-files") + 2] == uri(entry)
    assert command[-2:] == ["--spec", uri(uploaded["kappa-test-v1-spec"])]
    assert "spark.pyspark.python=/opt/kappa/venv/bin/python" in command
    assert step["cluster_id"] == "kappa-test-emr-id"
    assert step["control_uri"] == "s3://kappa-test-checkpoints-physical/_control"


def test_the_job_reads_kinesis_with_its_own_reader_unless_told(default_stack: Recording):
    spec = PipelineSpec.from_json(objects(default_stack)["kappa-test-v1-spec"]["content"])
    assert isinstance(spec.source, KinesisSource)
    assert spec.source.reader == "python"
    assert "--jars" not in default_stack.one(STEP)["command"]


def test_the_emr_connector_reader_reaches_the_spec_and_its_jar_the_classpath(aws_stack):
    recording = aws_stack(brokerReader="emr-connector")
    spec = PipelineSpec.from_json(objects(recording)["kappa-test-v1-spec"]["content"])
    assert isinstance(spec.source, KinesisSource)
    assert spec.source.reader == "emr-connector"
    command = recording.one(STEP)["command"]
    jars = command[command.index("--jars") + 1]
    assert jars == EMR_KINESIS_CONNECTOR_JAR
    assert command.index("--jars") < command.index("--py-files")


def test_the_bundle_is_the_same_bytes_when_built_twice():
    assert build_job_bundle() == build_job_bundle()


@pytest.fixture
def changed_jobs(tmp_path: Path) -> Path:
    copy = tmp_path / "jobs"
    shutil.copytree(JOBS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "emulators"))
    (copy / "kappa" / "release_note.py").write_text('"""A change to the job."""\n')
    return copy


def test_a_job_change_replaces_the_run_but_not_the_cluster(
    aws_stack, changed_jobs: Path, monkeypatch: pytest.MonkeyPatch
):
    before = aws_stack()
    monkeypatch.setattr(
        infra.aws.platform, "build_job_bundle", partial(build_job_bundle, jobs_dir=changed_jobs)
    )
    after = aws_stack()
    assert (
        objects(after)["kappa-test-package"]["key"] != objects(before)["kappa-test-package"]["key"]
    )
    assert after.one(STEP)["command"] != before.one(STEP)["command"]
    cluster = "aws:emr/cluster:Cluster"
    assert after.one(cluster).inputs == before.one(cluster).inputs


def test_a_spec_change_replaces_the_run_but_not_the_cluster(aws_stack):
    before = aws_stack()
    after = aws_stack(pipelineWindowSeconds=300)
    old_spec, new_spec = (objects(r)["kappa-test-v1-spec"] for r in (before, after))
    assert PipelineSpec.from_json(new_spec["content"]).windowing.window_seconds == 300
    assert new_spec["key"] != old_spec["key"]
    assert after.one(STEP)["command"][-1] == uri(new_spec)
    cluster = "aws:emr/cluster:Cluster"
    assert after.one(cluster).inputs == before.one(cluster).inputs


def test_each_pipeline_version_runs_with_its_own_spec(aws_stack):
    recording = aws_stack(pipelineVersions=["v1", "v2"], pipelineLiveVersion="v1")
    steps = {s["step_name"]: s["command"][-1] for s in recording.of_type(STEP)}
    uploaded = objects(recording)
    assert steps == {
        "kappa-test-v1": uri(uploaded["kappa-test-v1-spec"]),
        "kappa-test-v2": uri(uploaded["kappa-test-v2-spec"]),
    }
    v2 = PipelineSpec.from_json(uploaded["kappa-test-v2-spec"]["content"])
    assert v2.checkpoint_location.endswith("/v2")
    assert v2.serving_table == "kappa-test-aggregates_v2"


def test_a_job_alone_runs_on_the_cluster_and_buckets_it_is_given():
    spec = '{"pipeline_version": "v1"}'
    recording = run_program(
        lambda: StreamingJob(
            "kappa-test",
            StreamingJobArgs(
                cluster_id="j-PLATFORM00001",
                region="eu-west-1",
                artifacts_bucket="platform-artifacts",
                control_uri="s3://platform-checkpoints/_control",
                bundle=build_job_bundle(),
                specs={"v1": spec},
                application_prefix="analytics",
                aws_profile="platform-deploy",
            ),
        )
    )
    step = recording.one(STEP)
    assert step["cluster_id"] == "j-PLATFORM00001"
    assert step["region"] == "eu-west-1"
    assert step["control_uri"] == "s3://platform-checkpoints/_control"
    assert step["profile"] == "platform-deploy"
    assert step["step_name"] == "analytics-v1"
    uploaded = objects(recording)
    assert {o["bucket"] for o in uploaded.values()} == {"platform-artifacts"}
    assert uploaded["kappa-test-v1-spec"]["content"] == spec
    command = step["command"]
    assert command[command.index("--py-files") + 1] == uri(uploaded["kappa-test-package"])
    assert command[-2:] == ["--spec", uri(uploaded["kappa-test-v1-spec"])]


def test_the_deduplication_horizon_defaults_to_the_watermark_and_can_be_set(aws_stack):
    """The spec carries the key when set; 0 leaves it to the job, which takes the watermark."""
    default, longer = aws_stack(), aws_stack(pipelineDeduplicationSeconds=3600)
    specs = [
        PipelineSpec.from_json(objects(r)["kappa-test-v1-spec"]["content"]).windowing
        for r in (default, longer)
    ]
    assert (specs[0].deduplication_seconds, specs[0].deduplication_horizon_seconds) == (None, 600)
    assert (specs[1].deduplication_seconds, specs[1].watermark_seconds) == (3600, 600)
