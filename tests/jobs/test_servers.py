"""The local servers the job's tests rely on: one that is missing fails those tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.jobs.servers import REPO


def test_tests_that_need_postgresql_fail_without_it_rather_than_skip(tmp_path: Path) -> None:
    """A separate pytest run in which no PostgreSQL is installed (its search path is empty)."""
    (tmp_path / "conftest.py").write_text(
        "from tests.jobs import servers\n"
        "from tests.jobs.conftest import postgres  # noqa: F401 - the fixture under test\n"
        "servers.PG_BIN_CANDIDATES = ()\n"
    )
    (tmp_path / "test_needs_postgres.py").write_text("def test_it(postgres):\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "jobs")])},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout[-2000:]
    assert "1 error" in done.stdout
    assert "skipped" not in done.stdout
    assert "apt-get install postgresql" in done.stdout
