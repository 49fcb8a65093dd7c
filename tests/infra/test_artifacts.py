"""Content-addressed artifacts: keys follow the bytes the cluster gets, and builds repeat."""

from __future__ import annotations

import io
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from infra import artifacts
from infra.artifacts import bootstrap_script, inline_sources, job_package_zip


@pytest.fixture(autouse=True)
def build_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Artifacts are written under the test's folder, not the repository's .build/."""
    folder = tmp_path / ".build"
    monkeypatch.setattr(artifacts, "BUILD_DIR", folder)
    return folder


@pytest.fixture
def bootstrap_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of bootstrap/ that bootstrap_script reads instead of the repository's."""
    copy = tmp_path / "bootstrap"
    shutil.copytree(artifacts.BOOTSTRAP_DIR, copy)
    monkeypatch.setattr(artifacts, "BOOTSTRAP_DIR", copy)
    return copy


def zip_names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_bootstrap_script_uploads_the_inlined_script_under_its_content_key():
    artifact = bootstrap_script("emr-bootstrap.sh")

    expected = inline_sources(artifacts.BOOTSTRAP_DIR / "emr-bootstrap.sh")
    assert re.fullmatch(r"bootstrap/emr-bootstrap-[0-9a-f]{16}\.sh", artifact.key)
    assert artifact.path.read_bytes() == expected
    assert artifact.sha256 == artifacts.digest(expected)


def test_bootstrap_script_key_changes_when_the_inlined_lib_changes(bootstrap_copy: Path):
    before = bootstrap_script("emr-bootstrap.sh").key
    with (bootstrap_copy / "lib" / "node-setup.sh").open("a") as lib:
        lib.write("# a change to the shared setup only\n")

    after = bootstrap_script("emr-bootstrap.sh").key

    assert after != before


def test_bootstrap_script_key_stays_the_same_for_the_same_content(bootstrap_copy: Path):
    copied = bootstrap_script("dataproc-init.sh").key
    in_repository = artifacts.REPO_ROOT / "bootstrap" / "dataproc-init.sh"

    assert copied == artifacts.content_key(
        "bootstrap", "dataproc-init.sh", inline_sources(in_repository)
    )


def test_job_package_zip_is_byte_identical_across_builds():
    assert job_package_zip() == job_package_zip()


def test_job_package_zip_holds_only_the_package_python_files():
    names = zip_names(job_package_zip())

    assert "kappa/__init__.py" in names
    assert all(name.startswith("kappa/") and name.endswith(".py") for name in names)
    assert not [name for name in names if "__pycache__" in name]


def test_job_package_zip_ignores_caches_and_timestamps(tmp_path: Path):
    package = tmp_path / "kappa"
    shutil.copytree(
        artifacts.JOBS_DIR / "kappa", package, ignore=shutil.ignore_patterns("__pycache__")
    )
    first = job_package_zip(package)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "stale.py").write_text("raise SystemExit('stale')\n")
    (package / "__pycache__" / "spec.cpython-311.pyc").write_bytes(b"\x00compiled")
    for path in package.rglob("*.py"):
        os.utime(path, (0, 0))

    second = job_package_zip(package)

    assert second == first
