"""Run a bootstrap script as it runs on a cluster node, inside a temporary root.

The script run is the one the stack uploads (infra/artifacts.py inlines the files it sources),
not the repository's file, unless a test asks for the latter (`Node.form = "repo"`).

The node's absolute paths live under `root/` (the scripts prefix them with KAPPA_ROOT).
The cloud's tools are stubs on PATH that serve objects from `buckets/` and record each call:
`aws s3 cp`, `gcloud storage cp`, the metadata server's `get_metadata_value` and the server
itself through `curl`, plus `sudo` (runs the command), `sleep` (records the delay, returns at
once) and `logger` (appends to a file standing in for syslog). `dnf` is there only when a test
asks (`Node.provide_dnf`), and `Node.hide` takes tools (python3.11, curl) off the PATH. The
download and metadata stubs also record how long they took, so a run's own time is its wall
time minus theirs: the figure the 30 s budget is for.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from infra.artifacts import Artifact, inline_sources

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = {
    "emr": REPO / "bootstrap" / "emr-bootstrap.sh",
    "dataproc": REPO / "bootstrap" / "dataproc-init.sh",
}

Cloud = Literal["emr", "dataproc"]
Role = Literal["master", "worker"]
# uploaded: the self-contained object a cluster fetches; repo: the file as it is in bootstrap/.
Form = Literal["uploaded", "repo"]

_RECORD = 'printf "%s\\n" "$(printf "%q " "$@")" >>"$KAPPA_STUBS_STATE/calls/$(basename "$0")"'
_TIMED = """started=$(date +%s%N)
finish() { echo $(( $(date +%s%N) - started )) >>"$KAPPA_STUBS_STATE/stub-ns"; }
trap finish EXIT"""
# Fails the first N calls when the file `fail-<tool>` holds N, to exercise retries.
_FLAKY = """fail_file="$KAPPA_STUBS_STATE/fail-$(basename "$0")"
if [[ -s $fail_file && $(<"$fail_file") -gt 0 ]]; then
  echo $(( $(<"$fail_file") - 1 )) >"$fail_file"
  echo "stub: transient failure" >&2
  exit 1
fi"""
_COPY = """object="$KAPPA_STUBS_BUCKETS/${source#*://}"
if [[ ! -f $object ]]; then
  echo "stub: $source: object does not exist (404)" >&2
  exit 1
fi
cp "$object" "$dest"\n"""

STUBS = {
    "aws": f"""{_RECORD}
{_TIMED}
{_FLAKY}
[[ $1 == s3 && $2 == cp ]] || {{ echo "stub aws: unsupported: $*" >&2; exit 2; }}
source=${{*: -2:1}} dest=${{*: -1}}
{_COPY}""",
    "gcloud": f"""{_RECORD}
{_TIMED}
{_FLAKY}
[[ $1 == storage && $2 == cp ]] || {{ echo "stub gcloud: unsupported: $*" >&2; exit 2; }}
source=${{*: -2:1}} dest=${{*: -1}}
{_COPY}""",
    "sudo": f"""{_RECORD}
[[ $1 == -n ]] && shift
exec "$@\"""",
    "sleep": _RECORD,
    "logger": """tag=logger
while (($#)); do
  case $1 in
    -t) tag=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
printf '%s: %s\\n' "$tag" "$*" >>"$KAPPA_STUBS_STATE/syslog"
""",
}
# Like Google's helper, it ends with curl -f's status, 22, when the server answers 404.
METADATA_STUB = f"""{_RECORD}
{_TIMED}
{_FLAKY}
value="$KAPPA_STUBS_STATE/metadata/$1"
[[ -f $value ]] || {{ echo "stub metadata: $1 not found (404)" >&2; exit 22; }}
cat "$value"
"""
METADATA_URL = "http://metadata.google.internal/computeMetadata/v1/instance/"
# The metadata server as curl sees it: 403 without the Metadata-Flavor header, as the real one.
CURL_STUB = f"""{_RECORD}
{_TIMED}
{_FLAKY}
output=/dev/stdout format="" header="" url=""
while (($#)); do
  case $1 in
    -o | --output) output=$2; shift 2 ;;
    -w | --write-out) format=$2; shift 2 ;;
    -H | --header) header=$2; shift 2 ;;
    -m | --max-time | --connect-timeout) shift 2 ;;
    -*) shift ;;
    *) url=$1; shift ;;
  esac
done
prefix={METADATA_URL}
[[ $url == "$prefix"* ]] || {{ echo "stub curl: no such host in $url" >&2; exit 6; }}
value="$KAPPA_STUBS_STATE/metadata/${{url#"$prefix"}}"
if [[ $header != "Metadata-Flavor: Google" ]]; then
  code=403; echo "Missing Metadata-Flavor:Google header." >"$output"
elif [[ -f $value ]]; then
  code=200; cat "$value" >"$output"
else
  code=404; echo "not found" >"$output"
fi
placeholder='%{{http_code}}'
printf '%s' "${{format//"$placeholder"/$code}}"
"""
# Installs python3.X by linking the tests' own interpreter next to this stub, on PATH.
DNF_STUB = f"""{_RECORD}
{_FLAKY}
[[ $1 == install ]] || {{ echo "stub dnf: unsupported: $*" >&2; exit 2; }}
for package in "${{@:2}}"; do
  case $package in
    -*) ;;
    "python$KAPPA_STUBS_PYTHON_VERSION") ln -sf "$KAPPA_STUBS_PYTHON" "${{0%/*}}/$package" ;;
    *) echo "stub dnf: no match for argument: $package" >&2; exit 1 ;;
  esac
done
"""
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
# The Python the tests run on (python3.11), not its venv; then the system's tools.
SYSTEM_PATH = (str(Path(sys.base_prefix) / "bin"), "/usr/bin", "/bin")


@dataclass(frozen=True)
class Wheelhouses:
    """Bundles built by infra/wheelhouse.py, as the stack would upload them."""

    current: Artifact  # kappa-probe 1.0 (and its dependency)
    newer: Artifact  # kappa-probe 2.0
    aarch64: Artifact  # kappa-probe 1.0, for another machine than this one


@dataclass
class Run:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall_seconds: float
    stub_seconds: float

    @property
    def own_seconds(self) -> float:
        """The script's own work: wall time minus the time spent in download/metadata stubs."""
        return self.wall_seconds - self.stub_seconds

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass(frozen=True)
class Timing:
    label: str
    run: Run


TIMINGS: list[Timing] = []


@dataclass
class Node:
    """One cluster node of `cloud` in `role`, its filesystem under `base / "root"`."""

    base: Path
    cloud: Cloud
    role: Role
    env: dict[str, str] = field(default_factory=dict)
    form: Form = "uploaded"
    _args: list[str] = field(default_factory=list)
    _hidden: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for folder in (self.root, self.buckets, self.stubs, self.state / "calls", self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        for name, body in {**STUBS, "curl": CURL_STUB}.items():
            _write_stub(self.stubs / name, body)
        _write_stub(self.metadata_helper, METADATA_STUB)
        if self.cloud == "emr":
            self.instance_info.parent.mkdir(parents=True, exist_ok=True)
            info = {"isMaster": self.role == "master", "isRunningNameNode": False}
            self.instance_info.write_text(json.dumps(info))
        else:
            self.set_metadata("dataproc-role", "Master" if self.role == "master" else "Worker")

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def buckets(self) -> Path:
        return self.base / "buckets"

    @property
    def stubs(self) -> Path:
        return self.base / "stubs"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def tmp(self) -> Path:
        return self.base / "tmp"

    @property
    def venv(self) -> Path:
        return self.root / "opt/kappa/venv"

    @property
    def marker(self) -> Path:
        return self.venv / ".wheelhouse-sha256"

    @property
    def profile(self) -> Path:
        return self.root / "etc/profile.d/kappa-venv.sh"

    @property
    def instance_info(self) -> Path:
        return self.root / "mnt/var/lib/info/instance.json"

    @property
    def metadata_helper(self) -> Path:
        return self.root / "usr/share/google/get_metadata_value"

    @property
    def script(self) -> Path:
        """The script to run: the repository's file, or what the stack uploads written out."""
        if self.form == "repo":
            return SCRIPTS[self.cloud]
        uploaded = self.base / "uploaded" / SCRIPTS[self.cloud].name
        uploaded.parent.mkdir(exist_ok=True)
        uploaded.write_bytes(inline_sources(SCRIPTS[self.cloud]))
        uploaded.chmod(0o755)
        return uploaded

    def uri(self, key: str) -> str:
        """The artifacts bucket's URI for `key`, on this node's cloud."""
        return f"{'s3' if self.cloud == 'emr' else 'gs'}://kappa-artifacts/{key}"

    def publish(self, bundle: Path, sha256: str, key: str = "wheelhouse/wheelhouse.tar") -> str:
        """Put `bundle` in the artifacts bucket and point the node at it, as the stack does."""
        target = self.buckets / "kappa-artifacts" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bundle.read_bytes())
        self.point_at(self.uri(key), sha256)
        return self.uri(key)

    def point_at(self, uri: str, sha256: str) -> None:
        if self.cloud == "emr":
            self._args = [uri, sha256]
        else:
            self.set_metadata("kappa-wheelhouse-uri", uri)
            self.set_metadata("kappa-wheelhouse-sha256", sha256)

    def set_metadata(self, name: str, value: str) -> None:
        path = self.state / "metadata/attributes" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value)

    def delete_metadata(self, name: str) -> None:
        (self.state / "metadata/attributes" / name).unlink()

    def fail_next(self, tool: str, times: int) -> None:
        (self.state / f"fail-{tool}").write_text(str(times))

    def provide_dnf(self) -> None:
        """A `dnf` that can install this Python's python3.X, as on Amazon Linux 2023."""
        _write_stub(self.stubs / "dnf", DNF_STUB)

    def hide(self, *tools: str) -> None:
        """Take `tools` off the node's PATH, stubs and system commands alike."""
        self._hidden.update(tools)
        for tool in tools:
            (self.stubs / tool).unlink(missing_ok=True)

    def _system_path(self) -> list[str]:
        """The system's command folders, or a folder of links to all but the hidden tools."""
        if not self._hidden:
            return list(SYSTEM_PATH)
        visible = self.base / "visible-commands"
        shutil.rmtree(visible, ignore_errors=True)
        visible.mkdir()
        for folder in map(Path, SYSTEM_PATH):
            for command in folder.iterdir() if folder.is_dir() else ():
                link = visible / command.name
                if command.name not in self._hidden and not link.is_symlink():
                    link.symlink_to(command)
        return [str(visible)]

    def run(self, args: Sequence[str] | None = None, *, label: str | None = None) -> Run:
        """Run the script; EMR's arguments are those `point_at` set unless `args` are given."""
        command = [str(self.script), *(self._args if args is None else args)]
        path = [str(self.stubs), *self._system_path()]
        env = {
            "PATH": os.pathsep.join(path),
            "HOME": str(self.base / "home"),
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
            "KAPPA_ROOT": str(self.root),
            "KAPPA_STUBS_STATE": str(self.state),
            "KAPPA_STUBS_BUCKETS": str(self.buckets),
            "KAPPA_STUBS_PYTHON": str(Path(sys.base_prefix) / "bin" / f"python{PYTHON_VERSION}"),
            "KAPPA_STUBS_PYTHON_VERSION": PYTHON_VERSION,
            **self.env,
        }
        stub_time = self.state / "stub-ns"
        stub_time.unlink(missing_ok=True)
        started = time.perf_counter()
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        wall = time.perf_counter() - started
        stub_ns = sum(int(n) for n in stub_time.read_text().split()) if stub_time.exists() else 0
        run = Run(command, done.returncode, done.stdout, done.stderr, wall, stub_ns / 1e9)
        if label:
            TIMINGS.append(Timing(f"{self.cloud} {self.role}: {label}", run))
        return run

    def calls(self, tool: str) -> list[list[str]]:
        log = self.state / "calls" / tool
        return [shlex.split(line) for line in log.read_text().splitlines()] if log.exists() else []

    def syslog(self) -> list[str]:
        log = self.state / "syslog"
        return log.read_text().splitlines() if log.exists() else []

    def venv_python(self, code: str) -> str:
        done = subprocess.run(
            [str(self.venv / "bin/python"), "-c", code], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def staged_leftovers(self) -> list[Path]:
        return list(self.tmp.iterdir())


MakeNode = Callable[[Cloud, Role], Node]


def _write_stub(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/usr/bin/env bash\nset -euo pipefail\n{body}\n")
    path.chmod(0o755)
