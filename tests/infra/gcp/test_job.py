"""Shipping the job: content-addressed uploads and one restartable Dataproc job per version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kappa.spec import PipelineSpec

import infra.gcp.platform
from infra.artifacts import JOBS_DIR, build_job_bundle
from infra.gcp.job import spec_key
from tests.infra.gcp.conftest import GcpStack, bucket_name, named
from tests.infra.mocks import Recording, Resource

JOB = "gcp:dataproc/job:Job"
OBJECT = "gcp:storage/bucketObject:BucketObject"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
CLUSTER = "gcp:dataproc/cluster:Cluster"


def job(recording: Recording, version: str = "v1") -> Resource:
    return named(recording, JOB, f"kappa-test-{version}")


def uri(obj: Resource) -> str:
    return f"gs://{obj['bucket']}/{obj['name']}"


def spec_object(recording: Recording, version: str = "v1") -> Resource:
    return named(recording, OBJECT, f"kappa-test-{version}-spec")


def spec(recording: Recording, version: str = "v1") -> PipelineSpec:
    content = spec_object(recording, version)["content"]
    # The provider marks object content secret; the mocks keep the secret's envelope.
    return PipelineSpec.from_json(content["value"] if isinstance(content, dict) else content)


def test_job_runs_the_uploaded_entry_point(default_stack: Recording):
    entry_point = named(default_stack, OBJECT, "kappa-test-entry-point")
    assert entry_point["name"] == build_job_bundle().entry_point.key
    assert entry_point["bucket"] == bucket_name(default_stack, "artifacts")
    assert job(default_stack)["pysparkConfig"]["mainPythonFileUri"] == uri(entry_point)


def test_job_imports_the_uploaded_package_zip(default_stack: Recording):
    package = named(default_stack, OBJECT, "kappa-test-package")
    assert package["name"] == build_job_bundle().package.key
    assert job(default_stack)["pysparkConfig"]["pythonFileUris"] == [uri(package)]


def test_job_is_given_the_uri_of_its_uploaded_spec(default_stack: Recording):
    args = job(default_stack)["pysparkConfig"]["args"]
    assert args == ["--spec", uri(spec_object(default_stack))]


def test_spec_is_stored_under_a_name_derived_from_its_content(default_stack: Recording):
    obj = spec_object(default_stack)
    assert obj["name"] == spec_key("v1", spec(default_stack).to_json())
    assert obj["bucket"] == bucket_name(default_stack, "artifacts")


def test_spec_reads_the_versions_subscription(default_stack: Recording):
    subscription = named(default_stack, SUBSCRIPTION, "kappa-test-v1").outputs["name"]
    source = spec(default_stack).source
    assert source.model_dump()["subscription"] == f"projects/acme-data/subscriptions/{subscription}"


def test_spec_leases_messages_as_long_as_the_subscription(default_stack: Recording):
    subscription = named(default_stack, SUBSCRIPTION, "kappa-test-v1")
    source = spec(default_stack).source.model_dump()
    assert source["ack_deadline_seconds"] == subscription["ackDeadlineSeconds"]


@pytest.mark.parametrize("hours", [168, 744])
def test_spec_replays_a_new_version_over_what_the_topic_retains(gcp_stack: GcpStack, hours: int):
    recording = gcp_stack(brokerRetentionHours=hours)
    topic = named(recording, "gcp:pubsub/topic:Topic", "kappa-test-events")
    source = spec(recording).source.model_dump()
    assert source["replay_window_seconds"] == hours * 3600
    assert topic["messageRetentionDuration"] == f"{hours * 3600}s"


def test_spec_writes_the_versions_bigtable_table(default_stack: Recording):
    pipeline = spec(default_stack)
    instance = default_stack.one("gcp:bigtable/instance:Instance").outputs["name"]
    sink = pipeline.sink.model_dump()
    assert (sink["kind"], sink["project"], sink["instance"]) == ("bigtable", "acme-data", instance)
    assert (
        pipeline.serving_table
        == named(default_stack, "gcp:bigtable/table:Table", "kappa-test-v1")["name"]
    )


def test_spec_keeps_archive_dead_letters_and_checkpoints_in_the_lake(default_stack: Recording):
    storage = spec(default_stack).storage
    assert storage.archive_uri == f"gs://{bucket_name(default_stack, 'archive')}"
    assert storage.dead_letter_uri == f"gs://{bucket_name(default_stack, 'dead-letters')}"
    assert storage.checkpoint_uri == f"gs://{bucket_name(default_stack, 'checkpoints')}"


def test_job_runs_on_the_stacks_cluster_in_its_region(default_stack: Recording):
    cluster = default_stack.one("gcp:dataproc/cluster:Cluster")
    placed = job(default_stack)
    assert placed["placement"] == {"clusterName": cluster.outputs["name"]}
    assert placed["region"] == "europe-west1"


def test_job_runs_in_the_virtualenv_the_init_action_builds(default_stack: Recording):
    properties = job(default_stack)["pysparkConfig"]["properties"]
    assert properties["spark.pyspark.python"] == "/opt/kappa/venv/bin/python"


def test_job_restarts_after_a_failure(default_stack: Recording):
    assert job(default_stack)["scheduling"] == {"maxFailuresPerHour": 5, "maxFailuresTotal": 240}


def test_a_running_job_is_cancelled_and_deleted_before_its_replacement_starts(
    default_stack: Recording,
):
    running = job(default_stack)
    assert running["forceDelete"] is True
    assert running.delete_before_replace is True
    assert "pysparkConfig" in running.replace_on_changes


def assert_job_is_replaced_and_cluster_kept(before: Recording, after: Recording) -> None:
    old, new = job(before), job(after)
    changed = {key for key in old.inputs.keys() | new.inputs.keys() if old.get(key) != new.get(key)}
    # Pulumi replaces a resource whose inputs named in replace_on_changes differ; every
    # other change would be an update, which a submitted Dataproc job cannot take.
    assert changed
    assert changed <= set(new.replace_on_changes)
    assert new.delete_before_replace
    assert before.one(CLUSTER).inputs == after.one(CLUSTER).inputs


def test_a_changed_spec_is_a_new_object_and_replaces_the_job_but_not_the_cluster(
    gcp_stack: GcpStack,
):
    before, after = gcp_stack(), gcp_stack(pipelineWindowSeconds=300)
    assert spec_object(before)["name"] != spec_object(after)["name"]
    assert job(before)["pysparkConfig"]["args"] != job(after)["pysparkConfig"]["args"]
    assert_job_is_replaced_and_cluster_kept(before, after)


@pytest.fixture
def edited_jobs(tmp_path: Path) -> Path:
    """A copy of jobs/ whose package differs from the repository's by one comment."""
    jobs = tmp_path / "jobs"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(JOBS_DIR / "kappa", jobs / "kappa", ignore=ignore)
    shutil.copy2(JOBS_DIR / "run_pipeline.py", jobs / "run_pipeline.py")
    with (jobs / "kappa" / "pipeline.py").open("a") as module:
        module.write("# edited\n")
    return jobs


def test_a_changed_bundle_is_a_new_object_and_replaces_the_job_but_not_the_cluster(
    gcp_stack: GcpStack, edited_jobs: Path, monkeypatch: pytest.MonkeyPatch
):
    before = gcp_stack()
    monkeypatch.setattr(
        infra.gcp.platform, "build_job_bundle", lambda: build_job_bundle(edited_jobs)
    )
    after = gcp_stack()
    package = [named(recording, OBJECT, "kappa-test-package") for recording in (before, after)]
    assert package[0]["name"] != package[1]["name"]
    assert job(after)["pysparkConfig"]["pythonFileUris"] == [uri(package[1])]
    assert_job_is_replaced_and_cluster_kept(before, after)


def test_an_unchanged_stack_uploads_the_same_objects(gcp_stack: GcpStack):
    first, second = gcp_stack(), gcp_stack()
    names = [sorted(o["name"] for o in recording.of_type(OBJECT)) for recording in (first, second)]
    assert names[0] == names[1]


def test_each_pipeline_version_runs_its_own_job_with_its_own_spec(gcp_stack: GcpStack):
    recording = gcp_stack(pipelineVersions=["v1", "v2"], pipelineLiveVersion="v1")
    specs = {version: spec(recording, version) for version in ("v1", "v2")}
    assert {v: s.pipeline_version for v, s in specs.items()} == {"v1": "v1", "v2": "v2"}
    assert specs["v1"].checkpoint_location != specs["v2"].checkpoint_location
    assert specs["v1"].serving_table != specs["v2"].serving_table
    subscriptions = {s.source.model_dump()["subscription"] for s in specs.values()}
    assert len(subscriptions) == 2
    for version in ("v1", "v2"):
        assert job(recording, version)["pysparkConfig"]["args"][1] == uri(
            spec_object(recording, version)
        )
