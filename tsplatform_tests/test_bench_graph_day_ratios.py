"""bench.graph_day_ratios: the idle servers' CPU over processes that come and go, and the rounds' ratios."""

from __future__ import annotations

import subprocess
import sys

from bench.graph_day_ratios import _cpu_by_pid, _idle_cpu, report


def test_idle_cpu_ignores_a_process_that_exited_and_counts_a_new_one_from_zero() -> None:
    before = {1: 10.0, 2: 5.0}  # pid 2 (a retired Python worker) is gone at the second reading
    after = {1: 10.5, 3: 0.25}  # pid 3 started in between
    assert _idle_cpu(before, after) == 0.75


def test_cpu_by_pid_reads_a_live_tree_and_skips_a_dead_pid() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        cpu = _cpu_by_pid([child.pid])
        assert set(cpu) == {child.pid}
        assert cpu[child.pid] >= 0.0
    finally:
        child.kill()
        child.wait()
    assert _cpu_by_pid([child.pid]) == {}


def test_report_gives_each_rounds_ratios_and_their_medians(capsys) -> None:  # type: ignore[no-untyped-def]
    walls = {1: (100.0, 170.0, 150.0), 2: (120.0, 180.0, 160.0), 3: (110.0, 190.0, 140.0)}
    results = [
        {"round": n, "name": name, "wall": wall, "cpu": wall, "load": (1.0, 1.0), "idle": 0.1}
        for n, row in walls.items()
        for name, wall in zip(("local[2]", "local[1]", "peer"), row, strict=True)
    ]
    report(results, 1_000, 3)
    out = capsys.readouterr().out
    assert "| 1 | 1.70x | 1.33x |" in out  # 170 / 100; 100 x 2 / 150
    assert "| 2 | 1.50x | 1.50x |" in out
    assert "| 3 | 1.73x | 1.57x |" in out
    assert "`local[1]` / `local[2]` **1.70x**" in out  # median of 1.70, 1.50, 1.73
    assert "cost per core **1.50x**" in out  # median of 1.33, 1.50, 1.57
