"""The bootstrap scripts as source and as uploaded: lint-clean, shared logic kept once.

The repository's scripts source bootstrap/lib/node-setup.sh; the stack uploads each script with
that file inlined (infra/artifacts.py), because a cluster fetches one object per script.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.artifacts import inline_sources
from tests.bootstrap.harness import REPO, SCRIPTS, Cloud, MakeNode, Wheelhouses

LIB = REPO / "bootstrap" / "lib" / "node-setup.sh"


def shellcheck() -> str:
    found = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    if not Path(found).exists():
        pytest.fail("shellcheck is not installed; pip install -r requirements-dev.txt")
    return found


@pytest.fixture(params=list(SCRIPTS), ids=list(SCRIPTS))
def script(request: pytest.FixtureRequest) -> Path:
    return SCRIPTS[request.param]


@pytest.fixture
def uploaded(script: Path, tmp_path: Path) -> Path:
    """The script as the stack uploads it, written where nothing else can be sourced."""
    path = tmp_path / script.name
    path.write_bytes(inline_sources(script))
    return path


@pytest.mark.parametrize("path", [*SCRIPTS.values(), LIB], ids=[*SCRIPTS, "lib"])
def test_repository_script_is_shellcheck_clean_following_its_sources(path: Path):
    result = subprocess.run([shellcheck(), "-x", str(path)], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout


def test_uploaded_script_is_shellcheck_clean(uploaded: Path):
    result = subprocess.run([shellcheck(), str(uploaded)], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout


def test_uploaded_script_carries_the_lib_instead_of_sourcing_it(uploaded: Path):
    text = uploaded.read_text()

    assert LIB.read_text() in text
    assert not [line for line in text.splitlines() if line.lstrip().startswith(("source", ". "))]


@pytest.mark.parametrize("form", ["repository", "uploaded"])
def test_script_stops_on_errors_unset_variables_and_failed_pipes(
    script: Path, uploaded: Path, form: str
):
    lines = (script if form == "repository" else uploaded).read_text().splitlines()

    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -Eeuo pipefail" in lines
    assert lines[-1] == 'main "$@"'


def test_sourcing_the_lib_only_defines_functions_and_constants():
    # Compared with the traps before sourcing: a shell started under nohup or in the
    # background inherits ignored signals, which `trap -p` lists too.
    probe = (
        f'set -Eeuo pipefail; before="$(trap -p)"; source "{LIB}"; '
        '[ "$(trap -p)" = "$before" ] || { trap -p; exit 3; }'
    )

    result = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize("cloud", ["emr", "dataproc"])
def test_nodes_run_the_script_as_uploaded_unless_told_otherwise(make_node: MakeNode, cloud: Cloud):
    node = make_node(cloud, "worker")

    run = node.run()

    assert Path(run.command[0]).read_bytes() == inline_sources(SCRIPTS[cloud])
    assert Path(run.command[0]).parent != SCRIPTS[cloud].parent


@pytest.mark.parametrize("cloud", ["emr", "dataproc"])
def test_repository_script_runs_as_is_sourcing_the_lib(
    make_node: MakeNode, wheelhouses: Wheelhouses, cloud: Cloud
):
    node = make_node(cloud, "worker")
    node.form = "repo"
    node.publish(wheelhouses.current.path, wheelhouses.current.sha256)

    run = node.run()

    assert run.command[0] == str(SCRIPTS[cloud])
    assert run.returncode == 0, run.output
    assert node.venv_python("import kappa_probe; print(kappa_probe.VERSION)") == "1.0"


def test_inlining_a_missing_sourced_file_fails_with_a_clear_error(script: Path, tmp_path: Path):
    lonely = tmp_path / script.name
    shutil.copy(script, lonely)

    with pytest.raises(FileNotFoundError, match=r"sources .*/lib/node-setup\.sh, which does not"):
        inline_sources(lonely)


def test_inlining_rejects_a_marked_line_that_is_not_a_relative_source(tmp_path: Path):
    script = tmp_path / "odd.sh"
    script.write_text("#!/usr/bin/env bash\nsource /etc/kappa.sh  # kappa:inline\n")

    with pytest.raises(ValueError, match=r"odd\.sh:2: a `# kappa:inline` line must be exactly"):
        inline_sources(script)
