"""kappa.objects on gs:// against fake-gcs-server (jobs/emulators/gcs), reached by
google-cloud-storage through STORAGE_EMULATOR_HOST: on Dataproc these calls carry the spec,
the stop marker, the readers' planned offsets and the Pub/Sub reader's stored batches."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kappa import objects
from kappa.cli import load_spec
from kappa.runner import StopRequest
from kappa.sources.planned import PlannedOffsets
from kappa.spec import BigtableSink, PubSubSource

from tests.jobs import servers
from tests.jobs.support import make_spec

BUCKET = "kappa-test-lake"


@pytest.fixture(scope="module")
def gcs() -> Iterator[str]:
    """A bucket in fake-gcs-server; the client library finds the fake through this variable,
    read whenever a client is made, so it is set for this module only."""
    from google.cloud import storage

    with servers.go_emulator("gcs", servers.free_port()) as address:
        saved = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = f"http://{address}"
        try:
            storage.Client(project="kappa-test").create_bucket(BUCKET)
            yield f"gs://{BUCKET}"
        finally:
            if saved is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = saved


@pytest.fixture
def base(gcs: str, request: pytest.FixtureRequest) -> str:
    """A prefix of the test's own, so that no test sees another's objects."""
    return objects.join(gcs, request.node.name)


def test_written_bytes_read_back_unchanged(base: str) -> None:
    uri = objects.join(base, "spec.json")
    objects.write_bytes(uri, b'{"a": 1}')
    assert objects.read_bytes(uri) == b'{"a": 1}'


def test_a_batch_too_big_for_one_request_is_uploaded_in_chunks_and_reads_back_whole(
    base: str,
) -> None:
    # Above 8 MiB the client switches to a resumable upload (a pulled batch of 10,000 messages
    # gets there); its requests differ from the single-request upload of small objects.
    uri = objects.join(base, "batches", "000000000001.json")
    data = bytes(range(256)) * (9 * 4096)
    objects.write_bytes(uri, data)
    assert objects.read_bytes(uri) == data


def test_a_second_write_replaces_the_object(base: str) -> None:
    uri = objects.join(base, "latest-offset.json")
    objects.write_bytes(uri, b"first")
    objects.write_bytes(uri, b"second")
    assert objects.read_bytes(uri) == b"second"


def test_exists_tells_a_present_object_from_an_absent_one(base: str) -> None:
    objects.write_bytes(objects.join(base, "here"), b"x")
    assert objects.exists(objects.join(base, "here"))
    assert not objects.exists(objects.join(base, "not-here"))
    # A "directory" is no object: only the names under it exist.
    assert not objects.exists(base)


def test_list_names_gives_the_direct_children_sorted(base: str) -> None:
    for name in ("batches/000000000002.json", "batches/000000000001.json", "batches/x/deeper"):
        objects.write_bytes(objects.join(base, name), b"{}")
    objects.write_bytes(objects.join(base, "batches-old/000000000001.json"), b"{}")
    expected = ["000000000001.json", "000000000002.json"]
    assert objects.list_names(objects.join(base, "batches")) == expected
    assert objects.list_names(objects.join(base, "batches") + "/") == expected


def test_list_names_of_a_prefix_without_objects_is_empty(base: str) -> None:
    assert objects.list_names(objects.join(base, "nothing")) == []


def test_delete_removes_the_object_and_a_missing_one_is_no_error(base: str) -> None:
    uri = objects.join(base, "batches", "000000000001.json")
    objects.write_bytes(uri, b"{}")
    objects.delete(uri)
    assert not objects.exists(uri)
    objects.delete(uri)


def test_reading_a_missing_object_names_its_uri(base: str) -> None:
    uri = objects.join(base, "missing.json")
    with pytest.raises(objects.ObjectStoreError, match=f"cannot read {uri}"):
        objects.read_bytes(uri)


def test_writing_to_a_missing_bucket_names_the_uri() -> None:
    uri = "gs://kappa-no-such-bucket/spec.json"
    with pytest.raises(objects.ObjectStoreError, match=f"cannot write {uri}"):
        objects.write_bytes(uri, b"{}")


def test_join_puts_parts_under_a_gs_base_with_single_slashes() -> None:
    assert objects.join("gs://lake/", "/state/", "batches") == "gs://lake/state/batches"
    assert objects.parse_uri("gs://lake/state/batches").key == "state/batches"


def test_the_job_loads_its_spec_from_gs(base: str, tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        source=PubSubSource(subscription="projects/p/subscriptions/s"),
        sink=BigtableSink(project="p", instance="i", table="aggregates"),
    )
    uri = objects.join(base, "specs", "v1", "spec.json")
    objects.write_bytes(uri, spec.to_json().encode("utf-8"))
    assert load_spec(uri) == spec


def test_a_stop_marker_on_gs_stops_the_job(base: str) -> None:
    marker = objects.join(base, "_control", "stop-v1")
    stop = StopRequest(marker)
    assert not stop.poll()
    objects.write_bytes(marker, b"stop\n")
    assert stop.poll()
    assert stop.reason == f"stop marker {marker}"


def test_planned_offsets_survive_on_gs(base: str) -> None:
    planned = PlannedOffsets(objects.join(base, "state"))
    assert planned.load() is None
    planned.save({"batch": 7})
    assert PlannedOffsets(objects.join(base, "state")).load() == {"batch": 7}
