"""The job's Python dependencies as one file the cluster nodes install from, offline.

Cluster nodes have no internet egress, so they cannot reach a package index. Instead the
stack uploads a wheelhouse built here: every wheel that `jobs/requirements.txt` resolves to
on the nodes' platform, a `pip` wheel to install them with, the requirements file, and a
`target.env` naming the Python version and machine the wheels are for. The bootstrap
scripts (`bootstrap/emr-bootstrap.sh`, `bootstrap/dataproc-init.sh`) verify its sha256,
unpack it and run `pip install --no-index --find-links <wheelhouse> -r requirements.txt`.

Which wheels the nodes need is decided for the nodes, not for the machine building the bundle:
pip evaluates dependency markers (`; platform_machine == "aarch64"`) against the interpreter
it runs on whatever `--platform` says, so after pip's download the bundle is completed and
trimmed to the dependency closure under the nodes' environment (`Platform.marker_environments`).

The bundle is content-addressed like every artifact, and its checksum is an argument of the
cluster's bootstrap action: a changed byte replaces the cluster. So the bundle must be
byte-identical wherever it is built. It is an uncompressed tar with sorted entries and fixed
metadata. Not gzip: wheels are already deflate-compressed (gzip saves 2% on this job's), and
deflate output differs between zlib builds (zlib-ng, the default on recent Fedora, emits
other bytes than zlib), which would change the checksum from one laptop to the next.

Builds are cached under `.build/wheelhouse/<key>/`, keyed by the requirements and the
target, so repeated `pulumi preview` runs download nothing.
"""

from __future__ import annotations

import email.parser
import functools
import hashlib
import io
import json
import operator
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# packaging is what pip itself vendors to judge markers (pinned in requirements.txt).
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from infra.artifacts import BUILD_DIR, JOBS_DIR, Artifact, content_key, digest

# Where the init scripts install the wheelhouse on every node: the job's interpreter.
NODE_PYTHON = "/opt/kappa/venv/bin/python"

# Bump when the bundle's layout, or how its wheels are chosen, changes, so that cached bundles
# built the old way are not reused. 2: the closure under the nodes' markers.
_LAYOUT_VERSION = 2
BUNDLE_NAME = "wheelhouse.tar"
REQUIREMENTS_ENTRY = "requirements.txt"
TARGET_ENTRY = "target.env"

# The nodes run pip from this wheel (`python pip-*.whl/pip install ...`): no ensurepip is
# needed on the node (Debian's python3 lacks it without python3-venv, which an offline node
# cannot install), and the installer's version is pinned with everything else.
DEFAULT_PIP = "pip==26.3"

# Options that make pip read other files; the nodes receive only the requirements file and
# the wheels, so these would break there (at cluster start), not here. Index options are
# fine: they steer the download here and the nodes' --no-index overrides them. pip takes a
# short option's value glued on (`-rbase.txt`) and long options abbreviated (`--constr`).
_UNSHIPPABLE_SHORT = ("-r", "-c", "-e")
_UNSHIPPABLE_LONG = ("--requirement", "--constraint", "--editable")


class WheelhouseError(RuntimeError):
    """The wheelhouse could not be built; the message says why and what to change."""


@dataclass(frozen=True)
class Platform:
    """What the cluster nodes run: CPython version, CPU and the newest glibc on every image.

    glibc 2.34 is Amazon Linux 2023's (EMR 7 and emr-spark-8); Debian 12 (Dataproc 2.2+ and
    3.0) has 2.36. A wheel needing a newer glibc would install but fail to import, so it is
    not accepted.
    """

    python_version: str = "3.11"
    machine: Literal["x86_64", "aarch64"] = "x86_64"
    glibc: tuple[int, int] = (2, 34)

    def pip_platforms(self) -> list[str]:
        """The `--platform` values pip needs: it does not infer older manylinux tags itself."""
        major, newest = self.glibc
        oldest = 5 if self.machine == "x86_64" else 17  # aarch64 wheels start at manylinux2014
        minors = range(newest, oldest - 1, -1)
        tags = [f"manylinux_{major}_{minor}_{self.machine}" for minor in minors]
        return [*tags, f"manylinux2014_{self.machine}"]

    def target_env(self) -> str:
        return f"python={self.python_version}\nmachine={self.machine}\n"

    def describe(self) -> str:
        major, minor = self.glibc
        return f"CPython {self.python_version} on {self.machine} (glibc <= {major}.{minor})"

    def marker_environments(self) -> list[dict[str, str]]:
        """What PEP 508 markers see on the nodes, at the first and at a late patch release.

        The nodes' patch release is not known here (Debian 12 has 3.11.2, AL2023 a later
        3.11.x): a dependency is needed if its marker holds at either end of the series.
        """
        common = {
            "implementation_name": "cpython",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_version": self.python_version,
            "sys_platform": "linux",
        }
        return [
            {**common, "python_full_version": full, "implementation_version": full}
            for full in (f"{self.python_version}.0", f"{self.python_version}.99")
        ]


def build_wheelhouse(
    requirements: Path = JOBS_DIR / "requirements.txt",
    platform: Platform = Platform(),
    *,
    pip_requirement: str = DEFAULT_PIP,
    source_args: Sequence[str] = (),
    cache_root: Path = BUILD_DIR / "wheelhouse",
) -> Artifact:
    """Build (or reuse) the wheelhouse bundle and name it by its content.

    `source_args` are extra `pip download` options saying where wheels come from, e.g.
    `("--no-index", "--find-links", "/some/dir")`; by default pip's own configuration
    (PyPI or the mirror in pip.conf). They are not part of the cache key: the pins decide
    which wheels go in, the source only where their bytes come from.
    """
    text, wanted = _shippable_requirements(requirements)
    bundle = cache_root / _cache_key(text, platform, pip_requirement) / BUNDLE_NAME
    if not bundle.exists():
        wanted = [*wanted, Requirement(pip_requirement)]
        _build_bundle(bundle, requirements, text, wanted, platform, pip_requirement, source_args)
    data = bundle.read_bytes()
    key = content_key("wheelhouse", BUNDLE_NAME, data)
    return Artifact(key=key, path=bundle, sha256=digest(data))


def _shippable_requirements(requirements: Path) -> tuple[str, list[Requirement]]:
    """The file's text, checked to need nothing but itself, and the requirements it lists."""
    try:
        text = requirements.read_text(encoding="utf-8")
    except OSError as error:
        raise WheelhouseError(f"cannot read the job's requirements: {error}") from error
    listed = []
    for number, line in _logical_lines(text):
        if _reads_another_file(line):
            raise WheelhouseError(
                f"{requirements}:{number}: '{line.strip()}' cannot be shipped to the cluster, "
                "which receives only this file and the wheels; list the packages themselves"
            )
        # Comments, options, and a requirement's own options (`--hash=...`) are not part of it.
        requirement = re.split(r"\s--", re.sub(r"(^|\s)#.*", "", line), maxsplit=1)[0].strip()
        if not requirement or requirement.startswith("-"):
            continue
        try:
            listed.append(Requirement(requirement))
        except InvalidRequirement as error:
            raise WheelhouseError(
                f"{requirements}:{number}: '{requirement}' is not a requirement the nodes can "
                f"install from a wheelhouse ({error}); list packages as name==version"
            ) from error
    return text, listed


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(number of its first line, line) with backslash continuations joined, as pip reads."""
    first, parts = 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        first = first if parts else number
        parts.append(line.removesuffix("\\"))
        if not line.endswith("\\"):
            yield first, "".join(parts)
            parts = []
    if parts:
        yield first, "".join(parts)


def _reads_another_file(line: str) -> bool:
    option = re.split(r"[\s=]", line.strip(), maxsplit=1)[0]
    if option.startswith("--"):
        return len(option) > 2 and any(name.startswith(option) for name in _UNSHIPPABLE_LONG)
    return option[:2] in _UNSHIPPABLE_SHORT


def _cache_key(text: str, platform: Platform, pip_requirement: str) -> str:
    identity = {
        "layout": _LAYOUT_VERSION,
        "requirements": text,
        "python": platform.python_version,
        "platforms": platform.pip_platforms(),
        "pip": pip_requirement,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _build_bundle(
    bundle: Path,
    requirements: Path,
    text: str,
    wanted: Sequence[Requirement],
    platform: Platform,
    pip_requirement: str,
    source_args: Sequence[str],
) -> None:
    bundle.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=bundle.parent, prefix=".download-") as scratch:
        wheels = Path(scratch)
        _download(wheels, requirements, platform, pip_requirement, source_args)
        _complete_for_the_nodes(wheels, wanted, platform, source_args)
        data = _pack(text, platform, sorted(wheels.glob("*.whl")))
        partial = wheels / BUNDLE_NAME
        partial.write_bytes(data)
        # Atomic: an interrupted build never leaves a bundle that a later run would trust.
        os.replace(partial, bundle)


def _download(
    dest: Path,
    requirements: Path,
    platform: Platform,
    pip_requirement: str,
    source_args: Sequence[str],
) -> None:
    result = _pip_download(dest, platform, source_args, ["-r", str(requirements), pip_requirement])
    if result.returncode != 0:
        raise WheelhouseError(
            f"pip download could not resolve the job's requirements ({requirements} and "
            f"{pip_requirement}) for {platform.describe()}. Every "
            "package and dependency needs a binary wheel for that platform: pin a version "
            "that publishes one, or check the package name.\n"
            f"pip said:\n{_tail(result.stderr or result.stdout)}"
        )


def _pip_download(
    dest: Path, platform: Platform, source_args: Sequence[str], arguments: Sequence[str]
) -> subprocess.CompletedProcess[str]:
    platforms = [arg for tag in platform.pip_platforms() for arg in ("--platform", tag)]
    command = [
        sys.executable, "-m", "pip", "download",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "--only-binary=:all:", "--implementation", "cp",
        "--python-version", platform.python_version, *platforms,
        "--dest", str(dest), *source_args, *arguments,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=False)


@dataclass(frozen=True)
class _Wheel:
    path: Path
    version: Version
    requires: tuple[Requirement, ...]


@dataclass(frozen=True)
class _Need:
    requirement: Requirement
    needed_by: str


def _complete_for_the_nodes(
    dest: Path, wanted: Sequence[Requirement], platform: Platform, source_args: Sequence[str]
) -> None:
    """Make `dest` hold exactly the dependency closure of `wanted` on the nodes.

    pip chose the wheels with this machine's markers: one needed only on the nodes (an
    aarch64-only dependency, built on x86_64) is missing, and one needed only here (macOS)
    is extra. Missing ones are downloaded a round at a time (--no-deps: their own
    dependencies are read from their metadata in the next round) until nothing is missing;
    extra ones are dropped, so the bundle is the same whichever machine builds it.
    """
    while True:
        wheels = _wheels_in(dest)
        needed, missing = _closure(wanted, wheels, platform)
        if not missing:
            break
        _download_missing(dest, missing, platform, source_args)
    for name, wheel in wheels.items():
        if name not in needed:
            wheel.path.unlink()


def _wheels_in(folder: Path) -> dict[NormalizedName, _Wheel]:
    wheels = {}
    for path in sorted(folder.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(path.name)
        wheels[name] = _Wheel(path, version, _requires_dist(path))
    return wheels


def _wheel_names(folder: Path) -> set[NormalizedName]:
    """The projects of the wheels in `folder`, from their file names alone."""
    return {parse_wheel_filename(path.name)[0] for path in folder.glob("*.whl")}


def _requires_dist(wheel: Path) -> tuple[Requirement, ...]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = [
            name
            for name in archive.namelist()
            if name.count("/") == 1 and name.endswith(".dist-info/METADATA")
        ]
        if not metadata:
            raise WheelhouseError(f"{wheel.name} has no .dist-info/METADATA: not a valid wheel")
        headers = email.parser.BytesParser().parsebytes(archive.read(metadata[0]), True)
    try:
        return tuple(Requirement(line) for line in headers.get_all("Requires-Dist", []))
    except InvalidRequirement as error:
        raise WheelhouseError(f"{wheel.name} declares an unreadable dependency: {error}") from error


def _closure(
    wanted: Sequence[Requirement], wheels: Mapping[NormalizedName, _Wheel], platform: Platform
) -> tuple[set[NormalizedName], dict[NormalizedName, list[_Need]]]:
    """The projects the nodes need that `wheels` has, and the requirements it lacks."""
    environments = platform.marker_environments()
    extras_of: dict[NormalizedName, set[str]] = {}
    missing: dict[NormalizedName, list[_Need]] = {}
    queue = [_Need(r, "the job's requirements") for r in wanted if _applies(r, (), environments)]
    while queue:
        need = queue.pop()
        name = canonicalize_name(need.requirement.name)
        wheel = wheels.get(name)
        if wheel is None:
            missing.setdefault(name, []).append(need)
            continue
        if not need.requirement.specifier.contains(wheel.version, prereleases=True):
            raise WheelhouseError(
                f"{need.requirement} (required by {need.needed_by} on the nodes, "
                f"{platform.describe()}) conflicts with {name} {wheel.version}, which the "
                f"wheelhouse resolved; pin a version of {name} that satisfies both in the "
                "job's requirements"
            )
        extras = {canonicalize_name(extra) for extra in need.requirement.extras}
        if name in extras_of and extras <= extras_of[name]:
            continue
        extras_of[name] = extras_of.get(name, set()) | extras
        queue.extend(
            _Need(dependency, f"{name} {wheel.version}")
            for dependency in wheel.requires
            if _applies(dependency, extras_of[name], environments)
        )
    return set(extras_of), missing


def _applies(
    requirement: Requirement, extras: Collection[str], environments: list[dict[str, str]]
) -> bool:
    marker = requirement.marker
    return marker is None or any(
        marker.evaluate({**environment, "extra": extra})
        for environment in environments
        for extra in ("", *sorted(extras))
    )


def _download_missing(
    dest: Path,
    missing: Mapping[NormalizedName, list[_Need]],
    platform: Platform,
    source_args: Sequence[str],
) -> None:
    wanted = {name: _pin_free(name, needs) for name, needs in sorted(missing.items())}
    result = _pip_download(dest, platform, source_args, ["--no-deps", *wanted.values()])
    present = _wheel_names(dest)
    unmet = [name for name in wanted if name not in present]
    if result.returncode != 0 or unmet:
        needs = "; ".join(
            f"{wanted[name]} (required by {_requirers(missing[name])})" for name in unmet or wanted
        )
        raise WheelhouseError(
            f"the nodes ({platform.describe()}) need {needs}, which pip left out here (it "
            "evaluates environment markers for the machine it runs on), and no binary wheel "
            "of it for the nodes can be downloaded: pin a version that publishes one.\n"
            f"pip said:\n{_tail(result.stderr or result.stdout)}"
        )


def _requirers(needs: Sequence[_Need]) -> str:
    return ", ".join(sorted({need.needed_by for need in needs}))


def _pin_free(name: NormalizedName, needs: Sequence[_Need]) -> str:
    """One requirement for every need of a project: its name and all their version ranges."""
    ranges = (need.requirement.specifier for need in needs)
    return f"{name}{functools.reduce(operator.and_, ranges, SpecifierSet())}"


def _tail(output: str, lines: int = 15) -> str:
    return "\n".join(f"  {line}" for line in output.strip().splitlines()[-lines:])


def _pack(requirements_text: str, platform: Platform, wheels: Sequence[Path]) -> bytes:
    """A tar whose bytes depend only on the entries' names and contents."""
    entries = {
        REQUIREMENTS_ENTRY: requirements_text.encode(),
        TARGET_ENTRY: platform.target_env().encode(),
    }
    entries.update({wheel.name: wheel.read_bytes() for wheel in wheels})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(entries):
            info = tarfile.TarInfo(name)
            info.size = len(entries[name])
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(entries[name]))
    return buffer.getvalue()
