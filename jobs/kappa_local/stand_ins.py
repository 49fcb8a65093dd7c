"""Local stand-ins for the cloud, each a context manager that leaves nothing running.

moto's server (Kinesis, S3, DynamoDB), Google's Pub/Sub fake (pstest) and Bigtable emulator
(bttest), both Go programs in jobs/emulators built with the Go toolchain from the Go module
proxy, and Debian's PostgreSQL. Everything listens on 127.0.0.1 only. Missing tools and busy
ports raise SetupError with a message that says what to do.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EMULATORS = REPO / "jobs" / "emulators"
# Shared with the job's tests (tests/jobs/servers.py builds the same binaries there).
LOCAL_BIN = REPO / ".local" / "bin"
LOOPBACK = "127.0.0.1"
_GO_CANDIDATES = ("/usr/local/go/bin/go",)
# The emulators' go.mod files need a toolchain that understands `toolchain`/`go 1.x.y` lines;
# from 1.21 on, Go fetches a newer toolchain itself (from the module proxy) when go.mod asks.
_GO_MINIMUM = (1, 21)


class SetupError(RuntimeError):
    """A prerequisite is missing or a port is taken; the message says what to do."""


def require_java() -> str:
    """Spark 4 needs Java 17 or newer, found as $JAVA_HOME/bin/java or on PATH."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise SetupError(
            "Java not found: local Spark needs Java 17. Install it (Debian/Ubuntu: "
            "`apt-get install openjdk-17-jre-headless`) or run `bash jobs/local.sh`, which does."
        )
    done = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)', done.stderr)
    if found and int(found.group(1)) < 17:
        raise SetupError(
            f"{java} is Java {found.group(1)}; Spark 4 needs Java 17 or newer: install "
            "openjdk-17-jre-headless and put it first on PATH (or set JAVA_HOME)."
        )
    return java


def require_free_port(port: int, option: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            raise SetupError(
                f"port {port} on {LOOPBACK} is already in use (an earlier run still going, or "
                f"another program: `ss -ltnp 'sport = :{port}'` shows which). Stop it, or "
                f"choose another port with {option}."
            ) from None


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((LOOPBACK, port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def wait_for_port(
    port: int,
    what: str,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    timeout: float = 60.0,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if process is not None and process.poll() is not None:
            raise SetupError(f"{what} exited with code {process.returncode}{_log_hint(log)}")
        time.sleep(0.1)
    raise SetupError(
        f"{what} did not listen on {LOOPBACK}:{port} within {timeout:.0f}s{_log_hint(log)}"
    )


def _log_hint(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").strip().splitlines()[-15:]
    return f"; the end of {log}:\n  " + "\n  ".join(tail) if tail else f" (log: {log})"


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


@contextmanager
def _server(
    command: list[str], port: int, what: str, log: Path, cwd: Path | None = None
) -> Iterator[None]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        # cwd first on the module path: `python -m` finds kappa_local in jobs/. A session of
        # its own: Ctrl-C reaches only the runner, which stops the job before its stand-ins.
        process = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
    try:
        wait_for_port(port, what, process, log)
        yield
    finally:
        stop_process(process)


@contextmanager
def moto_server(port: int, logs: Path) -> Iterator[str]:
    """moto's server (every AWS service it fakes, here Kinesis, S3, DynamoDB) on loopback."""
    require_free_port(port, "--moto-port")
    # moto's own server with Kinesis resharding corrected (see kappa_local/moto_server.py).
    command = [sys.executable, "-m", "kappa_local.moto_server", "-H", LOOPBACK, "-p", str(port)]
    with _server(command, port, "moto's server", logs / "moto.log", cwd=REPO / "jobs"):
        yield f"http://{LOOPBACK}:{port}"


def _go_version(go: str) -> tuple[int, int] | None:
    done = subprocess.run([go, "version"], capture_output=True, text=True, check=False)
    found = re.search(r" go(\d+)\.(\d+)", done.stdout)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _go() -> str:
    """A Go toolchain new enough for the emulators' go.mod: on PATH, the official tarball's
    place, or the one tests/setup.sh fetched from the Go module proxy (.local/go)."""
    found = [
        go
        for go in (shutil.which("go"), *_GO_CANDIDATES, str(REPO / ".local" / "go" / "bin" / "go"))
        if go and Path(go).exists()
    ]
    for go in found:
        version = _go_version(go)
        if version is None or version >= _GO_MINIMUM:
            return go
    if found:
        raise SetupError(
            f"{found[0]} is older than Go 1.21, which building the emulators needs (newer Go "
            "fetches the toolchain their go.mod names by itself): run `bash jobs/local.sh gcp`, "
            "which fetches one, or install Go 1.21+ first on PATH."
        )
    raise SetupError(
        "Go not found: the gcp flavour builds Google's Pub/Sub fake and Bigtable emulator from "
        "jobs/emulators with the Go toolchain. Run `bash jobs/local.sh gcp`, which installs it, "
        "or install Go 1.21 or newer."
    )


def build_go_emulator(name: str, bin_dir: Path = LOCAL_BIN) -> Path:
    """Build jobs/emulators/<name> once; later calls reuse the binary while it is newer."""
    source = EMULATORS / name
    binary = bin_dir / f"{name}-emulator"
    newest_source = max(p.stat().st_mtime for p in source.iterdir())
    if binary.exists() and binary.stat().st_mtime >= newest_source:
        return binary
    go = _go()
    bin_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"building the {name} emulator with Go (modules come from the Go module proxy)...",
        flush=True,
    )
    done = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SetupError(
            f"`go build` of jobs/emulators/{name} failed (is the Go module proxy reachable? "
            f"GOPROXY={os.environ.get('GOPROXY', 'default')}):\n{done.stderr.strip()}"
        )
    return binary


@contextmanager
def go_emulator(name: str, port: int, option: str, logs: Path) -> Iterator[str]:
    """One of Google's fakes (`pubsub` or `bigtable`); yields its host:port."""
    require_free_port(port, option)
    binary = build_go_emulator(name)
    with _server(
        [str(binary), f"-port={port}"], port, f"the {name} emulator", logs / f"{name}-emulator.log"
    ):
        yield f"{LOOPBACK}:{port}"


_ROLE_AND_DATABASE = """\
SELECT format('CREATE ROLE %I LOGIN', :'user')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \\gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'user', :'password') \\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'user')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \\gexec
"""


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    database: str
    user: str
    password: str
    # Whether this run started the cluster (and so stops it again at the end).
    started: bool = False


def _as_postgres(command: list[str]) -> list[str]:
    """Run as the postgres account: root switches to it, anyone else needs sudo rights."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return ["sudo", "-n", "-u", "postgres", *command]


def _as_root(command: list[str]) -> list[str]:
    return command if os.geteuid() == 0 else ["sudo", "-n", *command]


def debian_clusters() -> dict[int, tuple[str, str]]:
    """Port -> (version, name) of every Debian-managed PostgreSQL cluster (pg_lsclusters)."""
    if shutil.which("pg_lsclusters") is None:
        raise SetupError(
            "PostgreSQL is not installed (pg_lsclusters not found): install Debian's "
            "`postgresql` package (or run `bash jobs/local.sh postgres`, which does)."
        )
    done = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    )
    clusters = {}
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2].isdigit():
            clusters[int(fields[2])] = (fields[0], fields[1])
    return clusters


def _run(command: list[str], what: str, stdin: str | None = None) -> None:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        hint = "" if os.geteuid() == 0 else " (run as root, or with passwordless sudo)"
        raise SetupError(f"{what} failed{hint}: {(done.stderr or done.stdout).strip()}")


@contextmanager
def debian_postgres(
    port: int, database: str = "kappa", user: str = "kappa"
) -> Iterator[PostgresServer]:
    """Debian's PostgreSQL cluster on `port`, started when it is not running (and then
    stopped again at the end); a login role and database for the job, a fresh password."""
    started: tuple[str, str] | None = None
    if not port_open(port):
        cluster = debian_clusters().get(port)
        if cluster is None:
            raise SetupError(
                f"no PostgreSQL cluster is configured for port {port} (see `pg_lsclusters`): "
                f"create one with `pg_createcluster <version> main -p {port}`, or choose the "
                "port of an existing one with --postgres-port."
            )
        _run(
            _as_root(["pg_ctlcluster", *cluster, "start"]),
            f"starting PostgreSQL {cluster[0]}/{cluster[1]}",
        )
        started = cluster
        wait_for_port(port, f"PostgreSQL {cluster[0]}/{cluster[1]}")
        print(
            f"started Debian's PostgreSQL {cluster[0]}/{cluster[1]} (stopped again at the end)",
            flush=True,
        )
    try:
        # psql quotes the values itself (:'name'); the password is new every run and goes in on
        # stdin, so it never shows in a process list.
        password = secrets.token_urlsafe(24)
        variables = {"user": user, "database": database, "password": password}
        setup = "".join(f"\\set {k} {v}\n" for k, v in variables.items()) + _ROLE_AND_DATABASE
        _run(
            _as_postgres(["psql", "-p", str(port), "-v", "ON_ERROR_STOP=1", "-q", "-f", "-"]),
            "creating the job's PostgreSQL role and database",
            stdin=setup,
        )
        yield PostgresServer(LOOPBACK, port, database, user, password, started is not None)
    finally:
        if started is not None:
            subprocess.run(
                _as_root(["pg_ctlcluster", *started, "stop"]), capture_output=True, check=False
            )
