"""``tsplatform services ...`` as a user runs it: a subprocess of the installed script, own state dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tsplatform.cli import main
from tsplatform.services.manager import ServiceManager
from tsplatform.services.process import find_java, free_ports
from tsplatform.settings import get_settings

TSPLATFORM = Path(sys.executable).parent / "tsplatform"
CLIENT_SETTINGS = ("TSPLATFORM_KAFKA_BOOTSTRAP", "TSPLATFORM_MONGO_URI", "TSPLATFORM_MONGO_DB")

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a CLI run: own state dir, shared jar cache, free ports, no client settings."""
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_SETTINGS}
    kafka_port, controller_port, mongo_port = free_ports(3)
    env.update(
        {
            "TSPLATFORM_STATE_DIR": str(tmp_path / "state"),
            "TSPLATFORM_JARS_DIR": os.environ["TSPLATFORM_JARS_DIR"],  # the shared cache (root conftest)
            "TSPLATFORM_KAFKA_PORT": str(kafka_port),
            "TSPLATFORM_KAFKA_CONTROLLER_PORT": str(controller_port),
            "TSPLATFORM_MONGO_PORT": str(mongo_port),
        }
    )
    return env


@pytest.fixture
def run(cli_env: dict[str, str]) -> Run:
    def _run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TSPLATFORM), "services", *args],
            env=env or cli_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return _run


def assert_one_error_line(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit code 2, exactly one ``error: ...`` line on stderr containing ``fragments``, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _our_processes(state_dir: Path) -> list[psutil.Process]:
    marker = f"-Dtsplatform.state={state_dir.resolve()}"
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.mark.integration
def test_up_status_up_again_env_down(run: Run, cli_env: dict[str, str]) -> None:
    state = Path(cli_env["TSPLATFORM_STATE_DIR"])
    (state / "run").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    foreign = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        (state / "run" / "kafka.pid").write_text(f"{dead.pid}\n")  # stale: PID is dead
        (state / "run" / "mongo.pid").write_text(
            f'{{"pid": {foreign.pid}, "ports": {{"port": 1}}}}'
        )  # not ours

        up = run("up")
        assert up.returncode == 0, up.stderr
        assert up.stdout.count("removed stale PID file") == 2 and up.stdout.count(" started on ") == 2
        assert foreign.poll() is None  # the foreign process was not touched

        status = run("status")
        assert status.returncode == 0, status.stderr
        lines = {line.split()[0]: line.split() for line in status.stdout.splitlines()}
        assert lines["kafka"][1] == "healthy" and lines["mongo"][1] == "healthy", status.stdout
        assert lines["kafka"][4] == f"127.0.0.1:{cli_env['TSPLATFORM_KAFKA_PORT']}"
        pids = [int(lines[name][3]) for name in ("kafka", "mongo")]
        assert {p.pid for p in _our_processes(state)} == set(pids)

        again = run("up")
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("already running") == 2

        env = run("env")
        assert f"export TSPLATFORM_KAFKA_BOOTSTRAP=127.0.0.1:{cli_env['TSPLATFORM_KAFKA_PORT']}" in env.stdout
        assert env.stdout.splitlines() == (state / "services.env").read_text().splitlines()[1:]

        down = run("down")
        assert down.returncode == 0, down.stderr
        assert down.stdout.count("stopped (pid") == 2
        assert _our_processes(state) == []
        assert not any(
            psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids
        )
        assert not (state / "services.env").exists() and not list((state / "run").glob("*.pid"))
        assert foreign.poll() is None
    finally:
        foreign.kill()
        foreign.wait()
        ServiceManager(state).down()  # no-op when the test passed


@pytest.mark.integration  # needs Java and the jars
def test_port_held_by_a_foreign_socket_is_one_clear_error(run: Run, cli_env: dict[str, str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = run("up", "--kafka-port", str(port))
    assert_one_error_line(proc, f"port {port}", "TSPLATFORM_KAFKA_PORT")
    assert _our_processes(Path(cli_env["TSPLATFORM_STATE_DIR"])) == []


@pytest.mark.integration
def test_check_unreachable_kafka_and_wrong_mongo_uri(
    run: Run, cli_env: dict[str, str], services: ServiceManager
) -> None:
    bad_kafka = run(
        "check",
        "--timeout",
        "5",
        env={
            **cli_env,
            "TSPLATFORM_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "TSPLATFORM_MONGO_URI": services.mongo_uri,
        },
    )
    assert_one_error_line(bad_kafka, "127.0.0.1:1", "(setting: TSPLATFORM_KAFKA_BOOTSTRAP)")
    assert bad_kafka.stdout.startswith("mongo  ok")

    bad_mongo = run(
        "check",
        "--timeout",
        "3",
        env={
            **cli_env,
            "TSPLATFORM_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
            "TSPLATFORM_MONGO_URI": "mongodb://127.0.0.1:1/?directConnection=true",
        },
    )
    assert_one_error_line(bad_mongo, "MongoDB at mongodb://127.0.0.1:1/", "(setting: TSPLATFORM_MONGO_URI)")
    assert bad_mongo.stdout.startswith("kafka  ok")


def test_missing_java_is_one_clear_error(run: Run, cli_env: dict[str, str], tmp_path: Path) -> None:
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    no_java = {k: v for k, v in cli_env.items() if k != "JAVA_HOME"} | {"PATH": str(empty_bin)}
    assert_one_error_line(run("up", env=no_java), "java not found", "(setting: JAVA_HOME)")


# The same error path in-process (tsplatform.cli.main), without paying a subprocess start per case.
@pytest.fixture
def main_env(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for key in CLIENT_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    for key, value in cli_env.items():
        if key.startswith("TSPLATFORM_"):
            monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _main_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    assert exited.value.code == 2, (captured.out, captured.err)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_main_reports_invalid_settings_and_java_problems_in_one_line(
    main_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    java = find_java()  # resolved before PATH changes below
    main_env.setenv("TSPLATFORM_MONGO_PORT", "70000")
    line = _main_error(capsys, "services", "status")
    assert "70000" in line and line.endswith("(setting: TSPLATFORM_MONGO_PORT)")
    main_env.delenv("TSPLATFORM_MONGO_PORT")
    get_settings.cache_clear()

    main_env.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    line = _main_error(capsys, "services", "up")
    assert "has no executable bin/java" in line and line.endswith("(setting: JAVA_HOME)")

    main_env.delenv("JAVA_HOME")
    main_env.setenv("PATH", str(tmp_path))
    main_env.setenv("TSPLATFORM_JARS_DIR", str(tmp_path / "no-jars"))
    get_settings.cache_clear()
    assert "java not found" in _main_error(capsys, "services", "fetch")

    java_only = tmp_path / "java-only-bin"
    java_only.mkdir()
    (java_only / "java").symlink_to(java)
    main_env.setenv("PATH", str(java_only))
    assert "mvn (Apache Maven 3.8+) not found" in _main_error(capsys, "services", "fetch")


def _main_ok(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    assert exited.value.code == 0, (captured.out, captured.err)
    return captured.out


def test_status_and_down_never_signal_a_foreign_pid(
    main_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli_env: dict[str, str]
) -> None:
    state = Path(cli_env["TSPLATFORM_STATE_DIR"])
    (state / "run").mkdir(parents=True)
    foreign = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        (state / "run" / "kafka.pid").write_text(f"{foreign.pid}\n")
        status = _main_ok(capsys, "services", "status")
        assert "kafka  stopped" in status and f"removed stale PID file (pid {foreign.pid})" in status
        assert not (state / "run" / "kafka.pid").exists()

        (state / "run" / "kafka.pid").write_text(f"{foreign.pid}\n")
        assert "kafka  not running" in _main_ok(capsys, "services", "down")
        assert foreign.poll() is None
    finally:
        foreign.kill()
        foreign.wait()
