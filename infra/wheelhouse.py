"""The job's Python dependencies as one file the cluster nodes install from, offline.

Cluster nodes have no internet egress, so they cannot reach a package index. Instead the
stack uploads a wheelhouse built here: every wheel that `jobs/requirements.txt` resolves to
on the nodes' platform, a `pip` wheel to install them with, the requirements file, and a
`target.env` naming the Python version and machine the wheels are for. The bootstrap
scripts (`bootstrap/emr-bootstrap.sh`, `bootstrap/dataproc-init.sh`) verify its sha256,
unpack it and run `pip install --no-index --find-links <wheelhouse> -r requirements.txt`.

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

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from infra.artifacts import BUILD_DIR, JOBS_DIR, Artifact, content_key, digest

# Where the init scripts install the wheelhouse on every node: the job's interpreter.
NODE_PYTHON = "/opt/kappa/venv/bin/python"

# Bump when the bundle's layout changes, so cached bundles of the old layout are not reused.
_LAYOUT_VERSION = 1
BUNDLE_NAME = "wheelhouse.tar"
REQUIREMENTS_ENTRY = "requirements.txt"
TARGET_ENTRY = "target.env"

# The nodes run pip from this wheel (`python pip-*.whl/pip install ...`): no ensurepip is
# needed on the node (Debian's python3 lacks it without python3-venv, which an offline node
# cannot install), and the installer's version is pinned with everything else.
DEFAULT_PIP = "pip==26.3"

# Lines that make pip read other files; the nodes receive only the requirements file and
# the wheels, so these would break there (at cluster start), not here. Index options are
# fine: they steer the download here and the nodes' --no-index overrides them.
_UNSHIPPABLE_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-e", "--editable")


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
    text = _shippable_requirements(requirements)
    bundle = cache_root / _cache_key(text, platform, pip_requirement) / BUNDLE_NAME
    if not bundle.exists():
        _build_bundle(bundle, requirements, text, platform, pip_requirement, source_args)
    data = bundle.read_bytes()
    key = content_key("wheelhouse", BUNDLE_NAME, data)
    return Artifact(key=key, path=bundle, sha256=digest(data))


def _shippable_requirements(requirements: Path) -> str:
    try:
        text = requirements.read_text(encoding="utf-8")
    except OSError as error:
        raise WheelhouseError(f"cannot read the job's requirements: {error}") from error
    for number, line in enumerate(text.splitlines(), start=1):
        option = line.strip().split("=", 1)[0].split(" ", 1)[0]
        if option in _UNSHIPPABLE_OPTIONS:
            raise WheelhouseError(
                f"{requirements}:{number}: '{line.strip()}' cannot be shipped to the cluster, "
                "which receives only this file and the wheels; list the packages themselves"
            )
    return text


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
    platform: Platform,
    pip_requirement: str,
    source_args: Sequence[str],
) -> None:
    bundle.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=bundle.parent, prefix=".download-") as scratch:
        wheels = Path(scratch)
        _download(wheels, requirements, platform, pip_requirement, source_args)
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
    platforms = [arg for tag in platform.pip_platforms() for arg in ("--platform", tag)]
    command = [
        sys.executable, "-m", "pip", "download",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "--only-binary=:all:", "--implementation", "cp",
        "--python-version", platform.python_version, *platforms,
        "--dest", str(dest), *source_args,
        "-r", str(requirements), pip_requirement,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise WheelhouseError(
            f"pip download could not resolve the job's requirements ({requirements} and "
            f"{pip_requirement}) for CPython {platform.python_version} on "
            f"{platform.machine} (glibc <= {platform.glibc[0]}.{platform.glibc[1]}). Every "
            "package and dependency needs a binary wheel for that platform: pin a version "
            "that publishes one, or check the package name.\n"
            f"pip said:\n{_tail(result.stderr or result.stdout)}"
        )


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
