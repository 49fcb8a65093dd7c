"""What only the EMR bootstrap action does: arguments, sudo, instance files, region, dnf."""

from __future__ import annotations

import json

import pytest

from tests.bootstrap.harness import MakeNode, Node, Wheelhouses


@pytest.fixture
def node(make_node: MakeNode, wheelhouses: Wheelhouses) -> Node:
    worker = make_node("emr", "worker")
    worker.publish(wheelhouses.current.path, wheelhouses.current.sha256)
    return worker


def test_bootstrap_action_arguments_are_the_wheelhouse_uri_and_its_sha256(
    node: Node, wheelhouses: Wheelhouses
):
    uri = node.publish(wheelhouses.current.path, wheelhouses.current.sha256)

    run = node.run([uri, wheelhouses.current.sha256])

    assert run.returncode == 0, run.output
    assert node.calls("aws")[0][-2] == uri


def test_root_owned_paths_are_written_through_sudo(node: Node):
    node.run()

    commands = [" ".join(call) for call in node.calls("sudo")]
    venv = node.venv
    assert any(f"-m venv --clear --without-pip {venv}" in c for c in commands)
    assert any(c.startswith(f"-n {venv}/bin/python") and " install " in c for c in commands)
    assert f"-n tee {node.marker}" in commands


def test_download_runs_as_the_invoking_user_not_root(node: Node):
    node.run()

    assert not [call for call in node.calls("sudo") if "aws" in call or "tar" in call]


def test_download_targets_the_node_region(node: Node):
    extra = node.instance_info.with_name("extraInstanceData.json")
    extra.write_text(
        json.dumps({"jobFlowId": "j-1", "region": "eu-west-1", "instanceRole": "core"})
    )

    node.run()

    assert node.calls("aws")[0][:5] == ["s3", "cp", "--only-show-errors", "--region", "eu-west-1"]


def test_configured_region_wins_over_the_instance_data(node: Node):
    extra = node.instance_info.with_name("extraInstanceData.json")
    extra.write_text(json.dumps({"region": "eu-west-1"}))
    node.env["AWS_REGION"] = "us-east-2"
    node.point_at(node.uri("wheelhouse/wheelhouse.tar"), "0" * 64)  # stop after the download

    node.run()

    assert node.calls("aws")[0][3:5] == ["--region", "us-east-2"]


def test_missing_sudo_rights_fail_with_a_clear_message(node: Node):
    (node.stubs / "sudo").write_text('#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n')

    run = node.run()

    assert run.returncode != 0
    assert "the hadoop user needs passwordless sudo" in run.stderr
    assert not node.venv.exists()


def test_master_is_told_apart_by_instance_json(make_node: MakeNode, wheelhouses: Wheelhouses):
    master = make_node("emr", "master")
    master.publish(wheelhouses.current.path, wheelhouses.current.sha256)
    master.instance_info.write_text(
        '{\n  "isMaster" : true,\n  "isRunningResourceManager": true\n}'
    )

    master.run()

    assert master.profile.exists()


def test_missing_instance_json_fails_with_a_clear_message(node: Node):
    node.instance_info.unlink()

    run = node.run()

    assert run.returncode != 0
    assert f"cannot tell this node's role: {node.instance_info} is missing" in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "usage: emr-bootstrap.sh s3://BUCKET/KEY SHA256 (got 0 arguments)"),
        (("s3://b/k",), "usage: emr-bootstrap.sh s3://BUCKET/KEY SHA256 (got 1 arguments)"),
        (("gs://b/k", "a" * 64), "the wheelhouse must be an s3://BUCKET/KEY URI, got 'gs://b/k'"),
        (("s3://b/k", "A" * 64), "the checksum must be 64 lower-case hex digits"),
        (("s3://b/k", "abc"), "the checksum must be 64 lower-case hex digits"),
    ],
)
def test_bad_arguments_fail_before_any_download(node: Node, args: tuple[str, ...], message: str):
    run = node.run(args)

    assert run.returncode != 0
    assert message in run.stderr
    assert node.calls("aws") == []


def test_missing_python_is_installed_with_dnf_as_root(node: Node):
    node.hide("python3.11")
    node.provide_dnf()

    run = node.run()

    assert run.returncode == 0, run.output
    assert ["-n", "dnf", "install", "-y", "python3.11"] in node.calls("sudo")
    assert node.venv_python("import sys; print('%d.%d' % sys.version_info[:2])") == "3.11"


def test_python_install_is_retried(node: Node):
    node.hide("python3.11")
    node.provide_dnf()
    node.fail_next("dnf", times=2)

    run = node.run()

    assert run.returncode == 0, run.output
    assert len(node.calls("dnf")) == 3
    assert node.calls("sleep") == [["2"], ["4"]]


def test_failed_python_install_fails_with_a_clear_message(node: Node):
    node.hide("python3.11")
    node.provide_dnf()
    node.fail_next("dnf", times=5)

    run = node.run()

    assert run.returncode != 0
    assert "ERROR: could not install python3.11 with dnf after 5 attempts" in run.stderr
    assert "S3 gateway endpoint" in run.stderr
    assert not node.venv.exists()


def test_python_already_on_the_node_is_not_installed(node: Node):
    node.provide_dnf()

    run = node.run()

    assert run.returncode == 0, run.output
    assert node.calls("dnf") == []
