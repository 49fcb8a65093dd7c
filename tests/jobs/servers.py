"""Real local servers for the job's tests: moto, a throwaway PostgreSQL, Google's Go fakes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EMULATORS = REPO / "jobs" / "emulators"
LOCAL_BIN = REPO / ".local" / "bin"
GO = shutil.which("go") or "/usr/local/go/bin/go"
PG_BIN_CANDIDATES = (Path("/usr/local/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin")))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def build_emulator(name: str) -> Path:
    """Build jobs/emulators/<name> with Go once; later calls reuse the binary if it is newer."""
    source = EMULATORS / name
    binary = LOCAL_BIN / f"{name}-emulator"
    newest_source = max(p.stat().st_mtime for p in source.iterdir())
    if binary.exists() and binary.stat().st_mtime >= newest_source:
        return binary
    if not Path(GO).exists():
        raise FileNotFoundError(f"Go toolchain not found (looked for {GO}); needed for {name}")
    LOCAL_BIN.mkdir(parents=True, exist_ok=True)
    subprocess.run([GO, "build", "-o", str(binary), "."], cwd=source, check=True)
    return binary


@contextmanager
def go_emulator(name: str, port: int) -> Iterator[str]:
    binary = build_emulator(name)
    process = subprocess.Popen(
        [str(binary), f"-port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


class ServerMissing(RuntimeError):
    """A server the tests need is not installed; the message says how to install it."""


def postgres_bin() -> Path | None:
    for directory in PG_BIN_CANDIDATES:
        if (directory / "pg_ctl").exists() and (directory / "initdb").exists():
            return directory
    return None


def require_postgres_bin() -> Path:
    """Where PostgreSQL's server programs are. The README's test command (tests/run.sh)
    installs them, so their absence is an error of the machine, not a reason to skip."""
    found = postgres_bin()
    if found is not None:
        return found
    raise ServerMissing(
        "PostgreSQL server programs (initdb, pg_ctl) not found in /usr/local/bin or "
        "/usr/lib/postgresql/*/bin: run `bash tests/run.sh`, which installs them, or "
        "`apt-get install postgresql`"
    )


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    database: str


@contextmanager
def throwaway_postgres(bin_dir: Path) -> Iterator[Postgres]:
    """initdb + pg_ctl in a temporary directory, trust auth on 127.0.0.1, a free port."""
    root = Path(tempfile.mkdtemp(prefix="kappa-pg-"))
    # initdb refuses to run as root: hand the cluster to the postgres (or nobody) account.
    run_as: list[str] = []
    if os.geteuid() == 0:
        account = "postgres" if _user_exists("postgres") else "nobody"
        shutil.chown(root, user=account)
        root.chmod(0o700)
        run_as = ["runuser", "-u", account, "--"]
    data = root / "data"
    port = free_port()
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "kappa",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield Postgres("127.0.0.1", port, "kappa", "postgres")
    finally:
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
