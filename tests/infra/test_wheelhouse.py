"""The wheelhouse: the job's dependencies as one deterministic, cached bundle for the nodes.

Builds run offline: pip downloads from a local folder of wheels made by the test.
"""

from __future__ import annotations

import hashlib
import io
import platform as host
import shutil
import tarfile
from pathlib import Path
from typing import Literal

import pytest

from infra.artifacts import Artifact
from infra.wheelhouse import Platform, WheelhouseError, build_wheelhouse
from tests.bootstrap.fake_wheels import bundled_pip_wheel, make_wheel, pip_pin

# pip evaluates markers for the machine it runs on: the nodes here are the other machine.
BUILDER = host.machine()
NODES: Literal["x86_64", "aarch64"] = "aarch64" if BUILDER == "x86_64" else "x86_64"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A folder of wheels standing in for the package index."""
    folder = tmp_path / "index"
    make_wheel(folder, "kappa-probe", "1.0", requires=["kappa-probe-dep>=1"])
    make_wheel(folder, "kappa-probe-dep", "1.2")
    shutil.copy(bundled_pip_wheel(), folder)
    return folder


@pytest.fixture
def requirements(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("# the job's dependencies\nkappa-probe==1.0\n")
    return path


def build(
    requirements: Path,
    source: Path,
    cache: Path,
    platform: Platform | None = None,
) -> Artifact:
    return build_wheelhouse(
        requirements,
        platform or Platform(),
        pip_requirement=pip_pin(bundled_pip_wheel()),
        source_args=("--no-index", "--find-links", str(source)),
        cache_root=cache,
    )


def members(bundle: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(bundle) as archive:
        return archive.getmembers()


def read_member(bundle: Path, name: str) -> bytes:
    with tarfile.open(bundle) as archive:
        member = archive.extractfile(name)
        assert member is not None
        return member.read()


def test_bundle_holds_requirements_target_pip_and_every_resolved_wheel(
    requirements: Path, source: Path, tmp_path: Path
):
    bundle = build(requirements, source, tmp_path / "cache").path

    assert [member.name for member in members(bundle)] == [
        "kappa_probe-1.0-py3-none-any.whl",
        "kappa_probe_dep-1.2-py3-none-any.whl",
        bundled_pip_wheel().name,
        "requirements.txt",
        "target.env",
    ]
    assert read_member(bundle, "requirements.txt") == requirements.read_bytes()
    assert read_member(bundle, "target.env") == b"python=3.11\nmachine=x86_64\n"


def test_two_builds_of_the_same_requirements_are_byte_identical(
    requirements: Path, source: Path, tmp_path: Path
):
    first = build(requirements, source, tmp_path / "cache-1")
    for wheel in source.iterdir():  # file times and modes must not leak into the bundle
        wheel.touch()
        wheel.chmod(0o600)
    second = build(requirements, source, tmp_path / "cache-2")

    assert second.sha256 == first.sha256
    assert second.path.read_bytes() == first.path.read_bytes()


def test_bundle_entries_have_fixed_time_owner_and_mode(
    requirements: Path, source: Path, tmp_path: Path
):
    bundle = build(requirements, source, tmp_path / "cache").path

    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members(bundle)} == {
        (0, 0, 0, "", "", 0o644)
    }


def test_bundle_is_named_by_its_sha256(requirements: Path, source: Path, tmp_path: Path):
    artifact = build(requirements, source, tmp_path / "cache")

    assert artifact.sha256 == hashlib.sha256(artifact.path.read_bytes()).hexdigest()
    assert artifact.key == f"wheelhouse/wheelhouse-{artifact.sha256[:16]}.tar"


def test_repeated_build_reuses_the_cache_without_downloading(
    requirements: Path, source: Path, tmp_path: Path
):
    first = build(requirements, source, tmp_path / "cache")
    shutil.rmtree(source)  # nothing left to download from
    source.mkdir()

    assert build(requirements, source, tmp_path / "cache") == first


def test_cache_lives_under_a_folder_per_requirements_and_platform(
    requirements: Path, source: Path, tmp_path: Path
):
    cache = tmp_path / "cache"
    x86 = build(requirements, source, cache)
    arm = build(requirements, source, cache, Platform(machine="aarch64"))
    requirements.write_text("kappa-probe-dep==1.2\n")
    other = build(requirements, source, cache)

    folders = {artifact.path.parent for artifact in (x86, arm, other)}
    assert len(folders) == 3
    assert all(folder.parent == cache for folder in folders)
    assert len({x86.sha256, arm.sha256, other.sha256}) == 3


def test_platform_selects_the_wheels_built_for_its_machine(
    requirements: Path, source: Path, tmp_path: Path
):
    requirements.write_text("fastcalc==2.0\n")
    for machine in ("x86_64", "aarch64"):
        tag = f"cp311-cp311-manylinux_2_17_{machine}.manylinux2014_{machine}"
        make_wheel(source, "fastcalc", "2.0", tag=tag)

    bundle = build(requirements, source, tmp_path / "cache", Platform(machine="aarch64")).path

    names = [member.name for member in members(bundle)]
    assert "fastcalc-2.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl" in names
    assert not [name for name in names if "x86_64" in name]
    assert read_member(bundle, "target.env") == b"python=3.11\nmachine=aarch64\n"


def test_wheel_for_another_python_version_is_not_accepted(
    requirements: Path, source: Path, tmp_path: Path
):
    requirements.write_text("fastcalc==2.0\n")
    make_wheel(source, "fastcalc", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64")

    with pytest.raises(WheelhouseError, match="fastcalc"):
        build(requirements, source, tmp_path / "cache")


def test_wheel_needing_a_newer_glibc_than_the_nodes_have_is_not_accepted(
    requirements: Path, source: Path, tmp_path: Path
):
    requirements.write_text("fastcalc==2.0\n")
    make_wheel(source, "fastcalc", "2.0", tag="cp311-cp311-manylinux_2_39_x86_64")

    with pytest.raises(WheelhouseError, match=r"glibc <= 2\.34"):
        build(requirements, source, tmp_path / "cache")


def test_unresolvable_requirement_fails_naming_it_and_what_to_do(
    requirements: Path, source: Path, tmp_path: Path
):
    requirements.write_text("kappa-probe==1.0\nno-such-package==9.9\n")

    with pytest.raises(WheelhouseError) as failure:
        build(requirements, source, tmp_path / "cache")

    message = str(failure.value)
    assert "no-such-package" in message
    assert "needs a binary wheel" in message
    assert "CPython 3.11 on x86_64" in message


def test_failed_build_leaves_nothing_in_the_cache(requirements: Path, source: Path, tmp_path: Path):
    requirements.write_text("no-such-package==9.9\n")

    with pytest.raises(WheelhouseError):
        build(requirements, source, tmp_path / "cache")

    assert not list((tmp_path / "cache").rglob("*.tar"))
    assert not list((tmp_path / "cache").rglob("*.whl"))


@pytest.mark.parametrize(
    "line",
    [
        "-r base.txt",
        "-rbase.txt",
        "--constraint=pins.txt",
        "-cpins.txt",
        "--constr pins.txt",
        "-e ./jobs",
        "-e./jobs",
    ],
)
def test_requirements_that_point_at_other_files_are_refused(
    requirements: Path, source: Path, tmp_path: Path, line: str
):
    requirements.write_text(f"kappa-probe==1.0\n{line}\n")

    with pytest.raises(WheelhouseError, match=rf"requirements\.txt:2: '{line}' cannot be shipped"):
        build(requirements, source, tmp_path / "cache")


def test_long_wheel_file_names_are_kept_whole(requirements: Path, source: Path, tmp_path: Path):
    tag = "cp311-cp311-" + ".".join(f"manylinux_2_{minor}_x86_64" for minor in (17, 24, 27, 28))
    wheel = make_wheel(source, "fastcalc", "2.0", tag=tag)
    requirements.write_text("fastcalc==2.0\n")

    bundle = build(requirements, source, tmp_path / "cache").path

    assert len(wheel.name) > 100  # past the 100 characters of a plain ustar name field
    assert read_member(bundle, wheel.name) == wheel.read_bytes()


def test_bundle_is_an_uncompressed_tar(requirements: Path, source: Path, tmp_path: Path):
    bundle = build(requirements, source, tmp_path / "cache").path

    with tarfile.open(fileobj=io.BytesIO(bundle.read_bytes()), mode="r:") as archive:
        assert "requirements.txt" in archive.getnames()


@pytest.mark.parametrize("line", ["--prefer-binary", "--pre"])
def test_options_that_read_no_other_file_are_shipped(
    requirements: Path, source: Path, tmp_path: Path, line: str
):
    requirements.write_text(f"{line}\nkappa-probe==1.0\n")

    bundle = build(requirements, source, tmp_path / "cache").path

    assert read_member(bundle, "requirements.txt") == requirements.read_bytes()


@pytest.fixture
def marked(source: Path, requirements: Path) -> Path:
    """kappa-multi: dependencies for the nodes' machine, this machine, macOS and an extra."""
    make_wheel(
        source,
        "kappa-multi",
        "1.0",
        requires=[
            "kappa-probe-dep>=1",
            f'kappa-node-only>=1; platform_machine == "{NODES}"',
            f'kappa-builder-only; platform_machine == "{BUILDER}"',
            'kappa-mac-only; sys_platform == "darwin"',
            f'kappa-fast; extra == "fast" and platform_machine == "{NODES}"',
        ],
    )
    make_wheel(source, "kappa-node-only", "1.0", requires=["kappa-node-helper"])
    for name in ("kappa-node-helper", "kappa-builder-only", "kappa-mac-only", "kappa-fast"):
        make_wheel(source, name, "1.0")
    requirements.write_text("kappa-multi==1.0\n")
    return requirements


def wheel_projects(bundle: Path) -> set[str]:
    return {m.name.split("-")[0] for m in members(bundle) if m.name.endswith(".whl")}


def build_for_the_nodes(requirements: Path, source: Path, tmp_path: Path) -> Path:
    return build(requirements, source, tmp_path / "cache", Platform(machine=NODES)).path


def test_dependency_only_the_nodes_machine_needs_is_in_the_wheelhouse_with_its_own(
    marked: Path, source: Path, tmp_path: Path
):
    projects = wheel_projects(build_for_the_nodes(marked, source, tmp_path))

    assert {"kappa_multi", "kappa_probe_dep", "kappa_node_only", "kappa_node_helper"} <= projects


def test_extra_dependency_the_nodes_need_is_in_the_wheelhouse(
    marked: Path, source: Path, tmp_path: Path
):
    marked.write_text("kappa-multi[fast]==1.0\n")

    projects = wheel_projects(build_for_the_nodes(marked, source, tmp_path))

    assert "kappa_fast" in projects


@pytest.mark.parametrize(
    "project",
    ["kappa_mac_only", "kappa_builder_only", "kappa_fast"],
    ids=["for-another-os", "for-the-building-machine", "for-an-extra-not-asked-for"],
)
def test_dependency_the_nodes_do_not_need_is_left_out(
    marked: Path, source: Path, tmp_path: Path, project: str
):
    projects = wheel_projects(build_for_the_nodes(marked, source, tmp_path))

    assert project not in projects


def test_requirement_line_marked_for_the_nodes_machine_is_in_the_wheelhouse(
    marked: Path, source: Path, tmp_path: Path
):
    marked.write_text(f'kappa-probe==1.0\nkappa-node-helper==1.0; platform_machine == "{NODES}"\n')

    projects = wheel_projects(build_for_the_nodes(marked, source, tmp_path))

    assert "kappa_node_helper" in projects


def test_dependency_the_nodes_need_that_no_source_has_fails_naming_it(
    requirements: Path, source: Path, tmp_path: Path
):
    make_wheel(
        source, "kappa-multi", "1.0", requires=[f'kappa-absent>=2; platform_machine == "{NODES}"']
    )
    requirements.write_text("kappa-multi==1.0\n")

    with pytest.raises(WheelhouseError) as failure:
        build_for_the_nodes(requirements, source, tmp_path)

    message = str(failure.value)
    assert f"the nodes (CPython 3.11 on {NODES} (glibc <= 2.34)) need kappa-absent>=2" in message
    assert "required by kappa-multi 1.0" in message
    assert not list((tmp_path / "cache").rglob("*.tar"))


def test_dependency_the_nodes_need_that_conflicts_with_the_resolved_ones_fails_naming_it(
    marked: Path, source: Path, tmp_path: Path
):
    (source / "kappa_node_only-1.0-py3-none-any.whl").unlink()
    make_wheel(source, "kappa-node-only", "1.0", requires=["kappa-probe-dep<1.1"])

    with pytest.raises(WheelhouseError) as failure:
        build_for_the_nodes(marked, source, tmp_path)

    message = str(failure.value)
    assert "kappa-probe-dep<1.1 (required by kappa-node-only 1.0" in message
    assert "conflicts with kappa-probe-dep 1.2" in message
