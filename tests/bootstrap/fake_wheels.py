"""Small, real wheels made on the spot, so wheelhouses build and install with no index.

A wheel is a zip with a `.dist-info` folder; pip downloads and installs these like any other.
The only wheel not made here is pip's own, which the bootstrap scripts run from: it is the
one bundled with this Python's ensurepip.
"""

from __future__ import annotations

import base64
import ensurepip
import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    tag: str = "py3-none-any",
) -> Path:
    """Write `name`-`version` as a wheel with one module, `import name` giving VERSION."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f'VERSION = "{version}"\n',
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
        ),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: kappa-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ),
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist_info}/RECORD"] = record + f"{dist_info}/RECORD,,\n"
    path = directory / f"{module}-{version}-{tag}.whl"
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name_in_zip, data in files.items():
            archive.writestr(zipfile.ZipInfo(name_in_zip, date_time=_ZIP_EPOCH), data)
    return path


def _record_hash(data: str) -> str:
    digest = hashlib.sha256(data.encode()).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


REPO = Path(__file__).resolve().parents[2]
# Where a pip wheel fetched from the package index is kept between runs (git ignores .build/).
PIP_WHEEL_CACHE = REPO / ".build" / "test-wheels"


def bundled_pip_wheel(bundled_dir: Path | None = None) -> Path:
    """pip's wheel as shipped inside this Python (ensurepip), usable with no network.

    Debian's own python3 strips ensurepip's wheels; then the wheel of the pip this
    interpreter runs is fetched from the package index once, as the rest of set-up fetches
    packages, and kept in PIP_WHEEL_CACHE. Without either the tests fail: a skip would leave
    the bootstrap and wheelhouse tiers silently untested."""
    bundled_dir = bundled_dir or Path(ensurepip.__file__).parent / "_bundled"
    wheels = sorted(bundled_dir.glob("pip-*.whl")) or sorted(PIP_WHEEL_CACHE.glob("pip-*.whl"))
    if wheels:
        return wheels[-1]
    return _fetch_pip_wheel()


def _fetch_pip_wheel() -> Path:
    from importlib.metadata import version

    pin = f"pip=={version('pip')}"
    PIP_WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += ["--only-binary=:all:", "--dest", str(PIP_WHEEL_CACHE), pin]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(PIP_WHEEL_CACHE.glob("pip-*.whl"))
    if done.returncode != 0 or not wheels:
        pytest.fail(
            f"no pip wheel: this Python ships none in ensurepip/_bundled and `pip download "
            f"{pin}` failed ({done.stderr.strip()[-300:]}); the bootstrap and wheelhouse tests "
            "need one, so fix the machine's access to the package index"
        )
    return wheels[-1]


def pip_pin(wheel: Path) -> str:
    """`pip==<version>` for a pip wheel file name."""
    return f"pip=={wheel.name.split('-')[1]}"
