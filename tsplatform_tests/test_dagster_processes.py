"""The environment the Dagster processes (and the runs they launch) start with."""

from __future__ import annotations

import os
from pathlib import Path

from tsplatform.dagster_processes import DagsterProcesses


def _child_sees(env: dict[str, str], tmp_path: Path) -> str:
    processes = DagsterProcesses(env=env, logs=tmp_path, port=0)
    tmp_path.mkdir(parents=True, exist_ok=True)
    processes._spawn("probe", ["sh", "-c", 'echo "arenas=$MALLOC_ARENA_MAX"'])
    assert processes.processes["probe"].wait(30) == 0
    return (tmp_path / "dagster-probe.log").read_text().strip()


def test_children_get_two_malloc_arenas_by_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _child_sees(env, tmp_path / "default") == "arenas=2"


def test_a_value_in_env_wins(tmp_path: Path) -> None:
    assert _child_sees({**os.environ, "MALLOC_ARENA_MAX": "8"}, tmp_path / "set") == "arenas=8"
