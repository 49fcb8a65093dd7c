"""What only the Dataproc initialization action does: metadata, role names, no sudo."""

from __future__ import annotations

import pytest

from tests.bootstrap.harness import METADATA_URL, MakeNode, Node, Wheelhouses


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


@pytest.mark.parametrize(
    "attribute", ["dataproc-role", "kappa-wheelhouse-uri", "kappa-wheelhouse-sha256"]
)
def test_missing_metadata_attribute_fails_at_once_naming_it(node: Node, attribute: str):
    node.delete_metadata(attribute)

    run = node.run()

    assert run.returncode != 0
    assert f"ERROR: the cluster metadata has no attribute {attribute}" in run.stderr
    assert node.calls("get_metadata_value").count([f"attributes/{attribute}"]) == 1
    assert node.calls("sleep") == []
    assert node.calls("gcloud") == []


def test_metadata_that_cannot_be_read_fails_after_five_attempts(node: Node):
    node.fail_next("get_metadata_value", times=5)

    run = node.run()

    assert run.returncode != 0
    assert "cannot read the cluster metadata attribute dataproc-role after 5 attempts" in run.stderr
    assert node.calls("sleep") == [["2"], ["4"], ["8"], ["16"]]


def test_without_the_metadata_helper_the_metadata_server_is_asked(
    node: Node, wheelhouses: Wheelhouses
):
    node.metadata_helper.unlink()

    run = node.run()

    assert run.returncode == 0, run.output
    assert f"{node.metadata_helper} is missing; reading cluster metadata from" in run.stderr
    asked = [(call[call.index("--header") + 1], call[-1]) for call in node.calls("curl")]
    assert asked == [
        ("Metadata-Flavor: Google", f"{METADATA_URL}attributes/{attribute}")
        for attribute in ("dataproc-role", "kappa-wheelhouse-uri", "kappa-wheelhouse-sha256")
    ]
    assert node.marker.read_text().strip() == wheelhouses.current.sha256


def test_metadata_server_reads_are_retried(node: Node):
    node.metadata_helper.unlink()
    node.fail_next("curl", times=2)

    run = node.run()

    assert run.returncode == 0, run.output
    assert node.calls("sleep") == [["2"], ["4"]]


def test_attribute_the_metadata_server_does_not_have_fails_at_once_naming_it(node: Node):
    node.metadata_helper.unlink()
    node.delete_metadata("kappa-wheelhouse-uri")

    run = node.run()

    assert run.returncode != 0
    assert "ERROR: the cluster metadata has no attribute kappa-wheelhouse-uri" in run.stderr
    assert len(node.calls("curl")) == 2
    assert node.calls("sleep") == []


def test_no_metadata_helper_and_no_curl_fails_with_a_clear_message(node: Node):
    node.metadata_helper.unlink()
    node.hide("curl")

    run = node.run()

    assert run.returncode != 0
    assert (
        f"ERROR: cannot read cluster metadata: {node.metadata_helper} is missing and there is "
        "no curl"
    ) in run.stderr
    assert node.calls("gcloud") == []


def test_python_is_never_installed_on_dataproc(node: Node):
    node.hide("python3.11", "python3")
    node.provide_dnf()

    run = node.run()

    assert run.returncode != 0
    assert "ERROR: no python3.11 or python3 found" in run.stderr
    assert node.calls("dnf") == []


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
