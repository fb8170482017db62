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


@dataclass
class DagsterProcesses:
    """A ``dagster-webserver`` and a ``dagster-daemon`` (either left out with ``webserver`` / ``daemon``
    False) on the instance of ``env``'s ``DAGSTER_HOME``, run from the repository root with
    ``workspace.yaml`` as ``dagster dev`` runs them, each in its own process group so that stopping them
    leaves nothing behind. Logs go to ``<logs>/dagster-<name>.log``."""

    env: dict[str, str]
    logs: Path
    port: int
    daemon: bool = True
    webserver: bool = True
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Create the instance's storage, then start the processes (they return at once)."""
        self.create_storage()
        bin_dir = Path(sys.executable).parent
        commands: dict[str, list[str]] = {}
        if self.webserver:
            commands["webserver"] = [
                str(bin_dir / "dagster-webserver"),
                *("-h", "127.0.0.1", "-p", str(self.port), "-w", "workspace.yaml"),
            ]
        if self.daemon:
            commands["daemon"] = [str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"]
        self.logs.mkdir(parents=True, exist_ok=True)
        for name, command in commands.items():
            with (self.logs / f"dagster-{name}.log").open("ab") as log:
                self.processes[name] = subprocess.Popen(
                    command,
                    cwd=REPO,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
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
        for process in self.processes.values():
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
