"""The Dagster webserver and daemon as child processes: what ``tsplatform demo`` runs, and the tests that
drive the UI."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tsplatform.errors import ServiceUnavailable

REPO = Path(__file__).resolve().parent.parent
#: The code location's name (as in ``workspace.yaml``).
LOCATION = "tsplatform"
#: Environment defaults for the long-lived processes and the runs they launch (a value in ``env`` wins).
#: glibc gives each thread that allocates its own malloc arena; with librdkafka's and Arrow's threads
#: the freed pages stay scattered over the arenas and a process that runs ingestion again and again
#: grows ~7 MB a run with a flat Python heap and no live Arrow memory. With two arenas it stays level
#: (``bench/ingest_rss_repeat.py``, BENCHMARKS.md "Reliability").
PROCESS_ENV_DEFAULTS = {"MALLOC_ARENA_MAX": "2"}


@dataclass
class DagsterProcesses:
    """A ``dagster-webserver`` and a ``dagster-daemon`` (either left out with ``webserver`` / ``daemon``
    False) on the instance of ``env``'s ``DAGSTER_HOME``, run from the repository root as ``dagster dev``
    runs them: both on one ``dagster code-server`` of ``tsplatform.definitions`` (location ``tsplatform``,
    as in ``workspace.yaml``), each process in its own process group so that stopping them leaves nothing
    behind. Logs go to ``<logs>/dagster-<name>.log``."""

    env: dict[str, str]
    logs: Path
    port: int
    daemon: bool = True
    webserver: bool = True
    #: One ``dagster code-server`` for both (what ``dagster dev`` does): without it each process starts its
    #: own, and the daemon replaces its own every minute (a reload costs seconds of CPU each time).
    shared_code_server: bool = True
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, code_server_timeout_s: float = 300.0) -> None:
        """Create the instance's storage, start the code server and wait until it has loaded the
        definitions, then start the webserver and the daemon (they return at once)."""
        self.create_storage()
        self.logs.mkdir(parents=True, exist_ok=True)
        bin_dir = Path(sys.executable).parent
        workspace = "workspace.yaml"
        if self.shared_code_server:
            from tsplatform.services.process import free_port

            code_port = free_port()
            self._spawn("code-server", [
                str(bin_dir / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(code_port),
                "-m", "tsplatform.definitions", "-d", str(REPO), "--location-name", LOCATION,
            ])  # fmt: skip
            workspace = str(self.logs / "workspace.yaml")
            Path(workspace).write_text(
                "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
                f"      port: {code_port}\n      location_name: {LOCATION}\n"
            )
            self._wait_for_code_server(code_port, code_server_timeout_s)
        if self.webserver:
            self._spawn("webserver", [
                str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.port), "-w", workspace,
            ])  # fmt: skip
        if self.daemon:
            self._spawn("daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", workspace])

    def _spawn(self, name: str, command: list[str]) -> None:
        with (self.logs / f"dagster-{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=REPO,
                env={**PROCESS_ENV_DEFAULTS, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_for_code_server(self, port: int, timeout_s: float) -> None:
        """Until the code server answers with the loaded repository (its import takes seconds)."""
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                client.list_repositories()
                return
            except Exception:  # not listening yet, or still loading the definitions
                time.sleep(1)
        raise ServiceUnavailable(
            f"the Dagster code server did not load the definitions in {timeout_s:.0f} s "
            f"(log: {self.logs / 'dagster-code-server.log'})"
        )

    def create_storage(self) -> None:
        """Open the instance of ``DAGSTER_HOME`` once, in this process, before the webserver and the daemon
        start: on a new home each of them would create the SQLite databases, and two processes creating
        one at once can stamp its schema version twice (alembic: "more than one head present")."""
        import dagster as dg

        home = self.env.get("DAGSTER_HOME")
        if home:
            with dg.DagsterInstance.from_config(home):
                pass

    def wait_until_serving(self, timeout_s: float = 300.0) -> None:
        import requests

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/server_info", timeout=5).ok:
                    return
            time.sleep(1)
        raise ServiceUnavailable(
            f"the Dagster webserver did not answer in {timeout_s:.0f} s (log: {self.logs})"
        )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = self.logs / f"dagster-{name}.log"
                raise ServiceUnavailable(f"dagster {name} exited with {process.returncode} (log: {log})")

    def stop(self) -> None:
        """SIGTERM to each process group (the webserver and the daemon before the code server their runs
        were launched by), SIGKILL after 20 s."""
        for process in reversed(self.processes.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()
