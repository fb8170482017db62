"""Smoke tests of the local Dagster setup: the repo-root ``dagster.yaml`` and ``workspace.yaml``.

The integration tests run the real ``dagster-webserver`` (from the repo root, as ``dagster dev`` would)
and ``dagster definitions validate`` in subprocesses, each with a temporary ``DAGSTER_HOME`` holding the
repo's ``dagster.yaml`` and a temporary ``TSPLATFORM_STATE_DIR``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tsplatform.dagster_processes import DagsterProcesses
from tsplatform.errors import ServiceUnavailable
from tsplatform.instance import new_dagster_home
from tsplatform.services.process import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
#: The assets of tsplatform/definitions.py; the test also checks against the loaded definitions.
EXPECTED_ASSETS = {"raw_readings", "quarantine"}
DAILY_PARTITIONED_ASSETS = {"raw_readings"}

GRAPHQL_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
  assetNodes { assetKey { path } isPartitioned partitionDefinition { type } }
  instance {
    runQueuingSupported
    runQueueConfig { maxConcurrentRuns tagConcurrencyLimitsYaml }
  }
}
"""


def _dagster_env(tmp_path: Path) -> dict[str, str]:
    """The test process's environment with a fresh DAGSTER_HOME (the repo's dagster.yaml) and state dir."""
    home = new_dagster_home(tmp_path / "dagster_home")
    # Settings come from defaults and the fresh state dir; only the shared jar cache is kept.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TSPLATFORM_") or key == "TSPLATFORM_JARS_DIR"
    }
    env.update(
        DAGSTER_HOME=str(home),
        TSPLATFORM_STATE_DIR=str(tmp_path / "state"),
        DAGSTER_DISABLE_TELEMETRY="1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
    )
    return env


def _live_group_members(pgid: int) -> list[int]:
    """PIDs of the non-zombie processes in process group ``pgid`` (from /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _log_tail(log: Path, chars: int = 6000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def _graphql(base_url: str, query: str) -> dict[str, Any]:
    response = requests.post(f"{base_url}/graphql", json={"query": query}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, f"GraphQL errors: {body['errors']}"
    return body["data"]


@pytest.fixture()
def webserver(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path, Path]]:
    """A running ``dagster-webserver -w workspace.yaml`` from the repo root: (url, process, log, home)."""
    env = _dagster_env(tmp_path)
    # the repo's workspace.yaml itself (its own code server), as `make dev` / `dagster dev` read it
    dagster = DagsterProcesses(
        env=env, logs=tmp_path, port=free_port(), daemon=False, shared_code_server=False
    )
    log = tmp_path / "dagster-webserver.log"
    try:
        dagster.start()
        try:
            dagster.wait_until_serving(STARTUP_TIMEOUT_S)
        except ServiceUnavailable as exc:
            pytest.fail(f"{exc}; log:\n{_log_tail(log)}")
        yield dagster.url, dagster.processes["webserver"], log, Path(env["DAGSTER_HOME"])
    finally:
        dagster.stop()


def _loaded_workspace(base_url: str, log: Path) -> dict[str, Any]:
    """The GraphQL answer once the code location finished loading (fails with its error otherwise)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        data = _graphql(base_url, GRAPHQL_QUERY)
        workspace = data["workspaceOrError"]
        assert workspace["__typename"] == "Workspace", f"workspace error: {workspace}"
        entries = {entry["name"]: entry for entry in workspace["locationEntries"]}
        assert set(entries) == {"tsplatform"}, f"unexpected code locations {sorted(entries)}"
        entry = entries["tsplatform"]
        if entry["loadStatus"] == "LOADED":
            location = entry["locationOrLoadError"]
            if location["__typename"] != "RepositoryLocation":
                pytest.fail(
                    f"code location tsplatform failed to load: {location.get('message')}\n"
                    f"{''.join(location.get('stack') or [])}\nwebserver log:\n{_log_tail(log)}"
                )
            return data
        if time.monotonic() > deadline:
            pytest.fail(f"code location still {entry['loadStatus']}; log:\n{_log_tail(log)}")
        time.sleep(1)


def _definitions_asset_keys() -> set[str]:
    """Asset names of the loaded ``tsplatform.definitions`` (single-segment keys)."""
    from tsplatform.definitions import defs

    return {"/".join(key.path) for key in defs.resolve_asset_graph().get_all_asset_keys()}


@pytest.mark.integration
def test_webserver_serves_the_asset_graph_and_stops_cleanly(
    webserver: tuple[str, subprocess.Popen[bytes], Path, Path],
) -> None:
    base_url, process, log, home = webserver
    data = _loaded_workspace(base_url, log)

    nodes = {"/".join(node["assetKey"]["path"]): node for node in data["assetNodes"]}
    missing = EXPECTED_ASSETS - nodes.keys()
    assert not missing, f"assets missing from the webserver's graph: {sorted(missing)}"
    assert nodes.keys() == _definitions_asset_keys()
    for name in DAILY_PARTITIONED_ASSETS:
        assert nodes[name]["isPartitioned"] and nodes[name]["partitionDefinition"]["type"] == "TIME_WINDOW"

    # The webserver runs on the repo's dagster.yaml: queued runs with its limits, SQLite in DAGSTER_HOME.
    instance = data["instance"]
    assert instance["runQueuingSupported"]
    assert instance["runQueueConfig"]["maxConcurrentRuns"] == 2
    limits = yaml.safe_load(instance["runQueueConfig"]["tagConcurrencyLimitsYaml"])
    assert {"key": "tsplatform/ingest", "limit": 1} in limits
    assert (home / "history" / "runs.db").is_file()

    # Stop the whole process group (the webserver and its code-server subprocess) and check it is gone.
    pgid = os.getpgid(process.pid)
    assert pgid == process.pid
    os.killpg(pgid, signal.SIGTERM)
    try:
        returncode = process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"dagster-webserver ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s; log:\n{_log_tail(log)}")
    assert returncode == 0, f"dagster-webserver exited with {returncode} on SIGTERM; log:\n{_log_tail(log)}"
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while (left := _live_group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"processes of the webserver's group still running: {left}"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base_url}/server_info", timeout=5)


@pytest.mark.integration
def test_dagster_definitions_validate_succeeds_from_the_repo_root(tmp_path: Path) -> None:
    # Plain `dagster definitions validate` finds the module through pyproject.toml's [tool.dagster];
    # workspace.yaml is exercised by the webserver test.
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate"],
        cwd=REPO,
        env=_dagster_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"definitions validate failed ({result.returncode}):\n{output[-6000:]}"
    assert "Validation successful for code location tsplatform" in output


# --- the config files themselves (no server) -------------------------------------------------------
def test_root_workspace_loads_the_definitions_module_from_the_repo_root() -> None:
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text(encoding="utf-8"))
    (location,) = workspace["load_from"]
    module = location["python_module"]
    assert module["module_name"] == "tsplatform.definitions"
    assert module["location_name"] == "tsplatform"
    assert (REPO / module["working_directory"]).resolve() == REPO
    assert (REPO / "tsplatform" / "definitions.py").is_file()


def test_root_dagster_yaml_gives_a_queued_sqlite_instance_without_telemetry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._core.storage.runs import SqliteRunStorage

    home = new_dagster_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        assert not instance.telemetry_enabled
        assert isinstance(instance.run_storage, SqliteRunStorage)
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, QueuedRunCoordinator)
        concurrency = instance.get_concurrency_config()  # what the run-queue daemon reads
        queue = concurrency.run_queue_config
        assert queue is not None
        assert 1 <= queue.max_concurrent_runs <= 2  # SQLite: "database is locked" under concurrency
        assert {"key": "tsplatform/ingest", "limit": 1} in queue.tag_concurrency_limits
        assert concurrency.pool_config.default_pool_limit == 1  # the "spark" pool: one Spark step at a time
    assert (home / "history" / "runs.db").is_file()  # storage lives under DAGSTER_HOME


def test_makefile_installs_the_repo_dagster_yaml_into_dagster_home(tmp_path: Path) -> None:
    make = shutil.which("make")
    assert make, "make is required"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dh")}
    command = [make, "-s", "dagster-home"]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    installed = tmp_path / "dh" / "dagster.yaml"
    assert installed.read_bytes() == (REPO / "dagster.yaml").read_bytes()
    # A different, older file there is replaced and kept as a numbered backup, not lost.
    installed.write_text("telemetry:\n  enabled: true\n")
    os.utime(installed, (0, 0))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert installed.read_bytes() == (REPO / "dagster.yaml").read_bytes()
    assert (tmp_path / "dh" / "dagster.yaml.~1~").read_text() == "telemetry:\n  enabled: true\n"
