"""Content-addressed artifacts: what the stacks upload for the cluster to run.

An object's key carries a digest of its bytes, so a changed job, spec or script gets a new
key (and a new deployment), while an unchanged one keeps its key and `pulumi preview` shows
no diff. That only holds if building an artifact is deterministic, hence the fixed zip
timestamps and sorted entries below.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
JOBS_DIR = REPO_ROOT / "jobs"
BOOTSTRAP_DIR = REPO_ROOT / "bootstrap"
BUILD_DIR = REPO_ROOT / ".build"

# 1980-01-01 is the earliest time a zip entry can hold.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Artifact:
    """Bytes to upload, and the content-addressed key to upload them under."""

    key: str
    path: Path
    sha256: str


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_key(prefix: str, filename: str, data: bytes) -> str:
    """`prefix/stem-<first 16 hex of sha256>.ext`: changes exactly when the bytes change."""
    stem, dot, extension = filename.partition(".")
    return f"{prefix.strip('/')}/{stem}-{digest(data)[:16]}{dot}{extension}"


def write_artifact(prefix: str, filename: str, data: bytes) -> Artifact:
    """Write bytes under .build/ (Pulumi uploads files) and name them by their content."""
    key = content_key(prefix, filename, data)
    path = BUILD_DIR / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return Artifact(key=key, path=path, sha256=digest(data))


def deterministic_zip(entries: dict[str, bytes]) -> bytes:
    """A zip whose bytes depend only on the entries' names and contents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            entry = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, entries[name])
    return buffer.getvalue()


def job_package_zip(package_dir: Path = JOBS_DIR / "kappa") -> bytes:
    """The job package as a zip for spark-submit --py-files, byte-identical for the same sources."""
    return deterministic_zip(
        {
            str(path.relative_to(package_dir.parent)): path.read_bytes()
            for path in package_dir.rglob("*.py")
            if "__pycache__" not in path.parts
        }
    )


@dataclass(frozen=True)
class JobBundle:
    """The job as the cluster receives it: the package zip and the file spark-submit runs."""

    package: Artifact
    entry_point: Artifact


def build_job_bundle(jobs_dir: Path = JOBS_DIR) -> JobBundle:
    return JobBundle(
        package=write_artifact("jobs", "kappa.zip", job_package_zip(jobs_dir / "kappa")),
        entry_point=write_artifact(
            "jobs", "run_pipeline.py", (jobs_dir / "run_pipeline.py").read_bytes()
        ),
    )


# `source "$(dirname "${BASH_SOURCE[0]}")/lib/x.sh"  # kappa:inline`: the path is group 1.
_INLINE_SOURCE = re.compile(
    rb'^source "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)/([^"]+)"\s+# kappa:inline$'
)


def inline_sources(path: Path) -> bytes:
    """The script with each line ending in `# kappa:inline` replaced by the file it sources.

    A cluster fetches one object per bootstrap script, so files sourced beside it are not
    there; inlining makes the upload self-contained while the repository keeps one copy.
    """
    lines = path.read_bytes().splitlines(keepends=True)
    return b"".join(_inline_line(path, number, line) for number, line in enumerate(lines, 1))


def _inline_line(script: Path, number: int, line: bytes) -> bytes:
    if not line.rstrip().endswith(b"# kappa:inline"):
        return line
    match = _INLINE_SOURCE.match(line.rstrip())
    if match is None:
        raise ValueError(
            f"{script}:{number}: a `# kappa:inline` line must be exactly "
            f'`source "$(dirname "${{BASH_SOURCE[0]}}")/RELATIVE/PATH"  # kappa:inline`'
        )
    sourced = script.parent / match[1].decode()
    if not sourced.is_file():
        raise FileNotFoundError(
            f"{script}:{number} sources {sourced}, which does not exist; restore it or fix "
            "the path (relative to the script) so the uploaded script can be self-contained"
        )
    text = sourced.read_bytes()
    return text if text.endswith(b"\n") else text + b"\n"


def bootstrap_script(filename: str) -> Artifact:
    """The script as the cluster receives it: one object, its `# kappa:inline` files inlined."""
    return write_artifact("bootstrap", filename, inline_sources(BOOTSTRAP_DIR / filename))
