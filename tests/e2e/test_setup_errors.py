"""What the local run says when it cannot start: a missing Java or Go, a busy port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from kappa_local import cli, stand_ins
from kappa_local.stand_ins import SetupError, free_port


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", free_port()))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_busy_port_names_the_port_and_the_option_to_change_it(busy_port: int) -> None:
    with pytest.raises(SetupError) as raised:
        stand_ins.require_free_port(busy_port, "--moto-port")
    message = str(raised.value)
    assert f"port {busy_port} on 127.0.0.1 is already in use" in message
    assert "--moto-port" in message


def test_the_run_command_stops_with_that_message_and_exit_code_2(
    busy_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["run", "--moto-port", str(busy_port), "--workdir", str(tmp_path / "run")])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("kappa_local: port ")
    assert "--moto-port" in error


def test_a_missing_java_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SetupError, match="apt-get install openjdk-17-jre-headless"):
        stand_ins.require_java()


def test_a_missing_go_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(stand_ins, "_GO_CANDIDATES", ())
    monkeypatch.setattr(stand_ins, "REPO", tmp_path)
    with pytest.raises(SetupError, match=r"Go not found: .*bash jobs/local.sh gcp"):
        stand_ins.build_go_emulator("pubsub", bin_dir=tmp_path / "bin")


def test_a_go_too_old_for_the_emulators_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_go = tmp_path / "go"
    old_go.write_text("#!/bin/sh\necho 'go version go1.19.8 linux/amd64'\n")
    old_go.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(stand_ins, "_GO_CANDIDATES", ())
    monkeypatch.setattr(stand_ins, "REPO", tmp_path)
    with pytest.raises(SetupError, match=r"older than Go 1\.21"):
        stand_ins.build_go_emulator("pubsub", bin_dir=tmp_path / "bin")
