"""What only the Dataproc initialization action does: metadata, role names, no sudo."""

from __future__ import annotations

import pytest

from tests.bootstrap.harness import MakeNode, Node, Wheelhouses


@pytest.fixture
def node(make_node: MakeNode, wheelhouses: Wheelhouses) -> Node:
    worker = make_node("dataproc", "worker")
    worker.publish(wheelhouses.current.path, wheelhouses.current.sha256)
    return worker


def test_wheelhouse_comes_from_the_cluster_metadata(node: Node, wheelhouses: Wheelhouses):
    node.run()

    assert node.calls("get_metadata_value") == [
        ["attributes/dataproc-role"],
        ["attributes/kappa-wheelhouse-uri"],
        ["attributes/kappa-wheelhouse-sha256"],
    ]
    assert node.calls("gcloud") == [
        [
            "storage",
            "cp",
            "--quiet",
            node.uri("wheelhouse/wheelhouse.tar"),
            node.calls("gcloud")[0][-1],
        ]
    ]
    assert node.marker.read_text().strip() == wheelhouses.current.sha256


def test_runs_as_root_without_sudo(node: Node):
    run = node.run()

    assert run.returncode == 0, run.output
    assert node.calls("sudo") == []


def test_metadata_reads_are_retried(node: Node):
    node.fail_next("get_metadata_value", times=2)

    run = node.run()

    assert run.returncode == 0, run.output
    assert node.calls("sleep") == [["2"], ["4"]]


@pytest.mark.parametrize("attribute", ["kappa-wheelhouse-uri", "kappa-wheelhouse-sha256"])
def test_missing_wheelhouse_metadata_fails_with_a_clear_message(node: Node, attribute: str):
    node.delete_metadata(attribute)

    run = node.run()

    assert run.returncode != 0
    assert f"ERROR: cannot read the cluster metadata attribute {attribute}" in run.stderr
    assert node.calls("gcloud") == []


def test_unknown_role_fails_with_a_clear_message(node: Node):
    node.set_metadata("dataproc-role", "Driver")

    run = node.run()

    assert run.returncode != 0
    assert "unknown dataproc-role 'Driver' (expected Master or Worker)" in run.stderr


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("kappa-wheelhouse-uri", "s3://b/k", "must be a gs://BUCKET/KEY URI, got 's3://b/k'"),
        ("kappa-wheelhouse-sha256", "xyz", "must be 64 lower-case hex digits (sha256), got 'xyz'"),
    ],
)
def test_malformed_metadata_fails_before_any_download(
    node: Node, attribute: str, value: str, message: str
):
    node.set_metadata(attribute, value)

    run = node.run()

    assert run.returncode != 0
    assert message in run.stderr
    assert node.calls("gcloud") == []
