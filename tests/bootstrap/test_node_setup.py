"""What both bootstrap scripts do on a node, EMR's and Dataproc's alike.

Each test runs the script as the stack uploads it (bootstrap/lib inlined) in a temporary
root with stubbed cloud tools (see harness.py), against a wheelhouse built by
infra/wheelhouse.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.bootstrap.harness import Cloud, MakeNode, Node, Role, Wheelhouses

DOWNLOADER = {"emr": "aws", "dataproc": "gcloud"}
BUDGET_SECONDS = 30


@pytest.fixture(params=["emr", "dataproc"])
def cloud(request: pytest.FixtureRequest) -> Cloud:
    return request.param


@pytest.fixture
def role() -> Role:
    """Workers unless a test says otherwise: only master-only work differs by role."""
    return "worker"


@pytest.fixture
def node(make_node: MakeNode, cloud: Cloud, role: Role, wheelhouses: Wheelhouses) -> Node:
    """A node pointed at the current wheelhouse, as a fresh cluster's node is."""
    fresh = make_node(cloud, role)
    fresh.publish(wheelhouses.current.path, wheelhouses.current.sha256)
    return fresh


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("role", ["master", "worker"])
def test_node_installs_the_job_requirements_into_the_venv(node: Node):
    run = node.run()

    assert run.returncode == 0, run.output
    assert node.venv_python("import kappa_probe; print(kappa_probe.VERSION)") == "1.0"
    assert node.venv_python("import kappa_probe_dep; print(kappa_probe_dep.VERSION)") == "1.2"


def test_venv_runs_the_wheelhouse_python_without_system_site_packages(node: Node):
    node.run()

    assert node.venv_python("import sys; print('%d.%d' % sys.version_info[:2])") == "3.11"
    assert "include-system-site-packages = false" in (node.venv / "pyvenv.cfg").read_text()


def test_venv_records_the_installed_wheelhouse_checksum(node: Node, wheelhouses: Wheelhouses):
    node.run()

    assert node.marker.read_text().strip() == wheelhouses.current.sha256


@pytest.mark.parametrize("role", ["master", "worker"])
def test_second_run_is_a_no_op(node: Node):
    node.run()
    before = snapshot(node.root)
    downloads = len(node.calls(DOWNLOADER[node.cloud]))

    run = node.run(label="second run")

    assert run.returncode == 0, run.output
    assert "already installed" in run.stdout
    assert len(node.calls(DOWNLOADER[node.cloud])) == downloads
    assert snapshot(node.root) == before


def test_new_wheelhouse_replaces_the_installed_one(node: Node, wheelhouses: Wheelhouses):
    node.run()
    node.publish(wheelhouses.newer.path, wheelhouses.newer.sha256, key="wheelhouse/newer.tar")

    run = node.run()

    assert run.returncode == 0, run.output
    assert node.venv_python("import kappa_probe; print(kappa_probe.VERSION)") == "2.0"
    assert node.marker.read_text().strip() == wheelhouses.newer.sha256


@pytest.mark.parametrize("role", ["master", "worker"])
def test_script_work_stays_within_the_per_node_budget(node: Node):
    run = node.run(label="budget check")

    assert run.returncode == 0, run.output
    assert run.own_seconds < BUDGET_SECONDS


@pytest.mark.parametrize("role", ["master"])
def test_master_points_login_shells_at_the_venv(node: Node):
    node.run()

    python = node.venv / "bin/python"
    assert node.profile.read_text() == (
        f"export PYSPARK_PYTHON={python}\nexport PYSPARK_DRIVER_PYTHON={python}\n"
    )


def test_worker_leaves_login_shells_alone(node: Node):
    run = node.run()

    assert run.returncode == 0, run.output
    assert not node.profile.exists()


def test_success_is_summarised_in_one_syslog_line(node: Node, wheelhouses: Wheelhouses):
    node.run()

    [line] = node.syslog()
    assert (
        f"kappa-bootstrap: {node.role} node: installed wheelhouse {wheelhouses.current.sha256[:12]}"
        in line
    )


def test_transient_download_failures_are_retried_with_growing_waits(node: Node):
    node.fail_next(DOWNLOADER[node.cloud], times=3)

    run = node.run()

    assert run.returncode == 0, run.output
    assert len(node.calls(DOWNLOADER[node.cloud])) == 4
    assert node.calls("sleep") == [["2"], ["4"], ["8"]]
    assert "failed (attempt 1 of 5); retrying in 2s" in run.stderr


def test_missing_wheelhouse_fails_after_five_attempts_with_a_clear_message(node: Node):
    uri = node.uri("wheelhouse/gone.tar")
    node.point_at(uri, "0" * 64)

    run = node.run()

    assert run.returncode != 0
    assert f"ERROR: could not download {uri} after 5 attempts" in run.stderr
    assert "check that `pulumi up` uploaded it" in run.stderr
    assert len(node.calls(DOWNLOADER[node.cloud])) == 5
    assert not node.venv.exists()


def test_bad_checksum_fails_with_a_clear_message(node: Node, wheelhouses: Wheelhouses):
    wrong = "f" * 64
    uri = node.publish(wheelhouses.current.path, wrong)

    run = node.run()

    assert run.returncode != 0
    assert (
        f"ERROR: checksum mismatch for {uri}: expected {wrong}, got {wheelhouses.current.sha256}"
    ) in run.stderr
    assert not node.venv.exists()


def test_failure_is_summarised_in_syslog(node: Node):
    node.point_at(node.uri("wheelhouse/gone.tar"), "a" * 64)

    node.run()

    assert node.syslog()[-1].startswith("kappa-bootstrap: failed: could not download")


def test_wheelhouse_that_is_not_a_tar_fails_with_a_clear_message(node: Node):
    garbage = node.base / "garbage"
    garbage.write_bytes(b"<Error><Code>AccessDenied</Code></Error>")
    node.publish(garbage, hashlib.sha256(garbage.read_bytes()).hexdigest())

    run = node.run()

    assert run.returncode != 0
    assert "ERROR: cannot unpack the wheelhouse; rebuild it with infra/wheelhouse.py" in run.stderr


def test_wheelhouse_for_another_python_fails_with_a_clear_message(node: Node):
    fake = node.base / "python3.9"
    fake.write_text("#!/bin/sh\necho 3.9\n")
    fake.chmod(0o755)
    node.env["KAPPA_PYTHON"] = str(fake)

    run = node.run()

    assert run.returncode != 0
    assert f"the wheelhouse is for Python 3.11 but {fake} is Python 3.9" in run.stderr
    assert not node.venv.exists()


def test_node_without_python3_fails_with_a_clear_message(node: Node):
    node.hide("python3.11", "python3", "dnf")

    run = node.run()

    assert run.returncode != 0
    assert "ERROR: no python3.11 or python3 found" in run.stderr
    assert "set KAPPA_PYTHON or use a node image that has it" in run.stderr
    assert not node.venv.exists()


def test_kappa_python_that_does_not_exist_fails_with_a_clear_message(node: Node):
    missing = node.base / "no-such-dir" / "python3.11"
    node.env["KAPPA_PYTHON"] = str(missing)

    run = node.run()

    assert run.returncode != 0
    assert f"ERROR: KAPPA_PYTHON={missing} is not an executable file nor a command" in run.stderr
    assert not node.venv.exists()


def test_wheelhouse_for_another_machine_fails_with_a_clear_message(
    node: Node, wheelhouses: Wheelhouses
):
    node.publish(wheelhouses.aarch64.path, wheelhouses.aarch64.sha256)

    run = node.run()

    assert run.returncode != 0
    assert "the wheelhouse is for aarch64 but this node is x86_64" in run.stderr
    assert not node.venv.exists()


def test_nothing_is_left_in_the_temporary_directory(node: Node, wheelhouses: Wheelhouses):
    node.run()
    node.publish(wheelhouses.newer.path, "0" * 64, key="wheelhouse/newer.tar")
    failed = node.run()

    assert failed.returncode != 0
    assert "checksum mismatch" in failed.stderr
    assert node.staged_leftovers() == []


def test_output_never_shows_credentials_from_the_environment(node: Node):
    secret = "kappa-test-secret-value"
    node.env.update(AWS_SECRET_ACCESS_KEY=secret, AWS_SESSION_TOKEN=secret, KAPPA_TOKEN=secret)

    good = node.run()
    node.point_at(node.uri("wheelhouse/gone.tar"), "1" * 64)
    bad = node.run()

    assert secret not in good.output + bad.output + "\n".join(node.syslog())
