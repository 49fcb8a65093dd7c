"""The pip wheel the bootstrap and wheelhouse tests run from, on every kind of Python."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.bootstrap import fake_wheels


def test_a_python_without_bundled_wheels_gets_pip_from_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Debian's python3 ships ensurepip without its wheels: the tests that need pip's wheel
    must still run (they skipped before, and the run stayed green)."""
    stripped = tmp_path / "_bundled"
    stripped.mkdir()
    monkeypatch.setattr(fake_wheels, "PIP_WHEEL_CACHE", tmp_path / "cache")
    wheel = fake_wheels.bundled_pip_wheel(stripped)
    assert wheel.parent == tmp_path / "cache"
    assert wheel.name.startswith("pip-")
    with zipfile.ZipFile(wheel) as archive:
        assert "pip/__init__.py" in archive.namelist()


def test_without_bundled_wheels_or_the_index_the_tests_fail_rather_than_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    stripped = tmp_path / "_bundled"
    stripped.mkdir()
    monkeypatch.setattr(fake_wheels, "PIP_WHEEL_CACHE", tmp_path / "cache")
    # An index that answers nothing: pip cannot fetch.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(pytest.fail.Exception, match="no pip wheel"):
        fake_wheels.bundled_pip_wheel(stripped)
