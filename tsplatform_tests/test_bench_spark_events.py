"""bench.spark_events: the jobs of a Spark event log by call site, and how busy its task slots were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.spark_events import Task, occupancy_report, read_log, slot_occupancy


def _task(stage: int, launched: int, finished: int, cpu_s: int) -> dict:
    return {
        "Event": "SparkListenerTaskEnd",
        "Stage ID": stage,
        "Task Info": {"Launch Time": launched, "Finish Time": finished},
        "Task Metrics": {"Executor Run Time": finished - launched, "Executor CPU Time": cpu_s * 10**9},
    }


def _job(job: int, submitted: int, site: str) -> dict:
    return {
        "Event": "SparkListenerJobStart",
        "Job ID": job,
        "Submission Time": submitted,
        "Stage IDs": [job],
        "Properties": {"callSite.short": site},
    }


def _log(path: Path) -> Path:
    """An application from t=0 to t=10 s on 2 slots: job 0 (stage 0) runs two tasks over 0-4 s and 1-3 s,
    job 1 (stage 1) one task over 6-9 s; nothing runs over 4-6 s and 9-10 s."""
    events = [
        {"Event": "SparkListenerApplicationStart", "Timestamp": 0},
        _job(0, 0, "count at x.py:1"),
        _task(0, 0, 4000, 3),
        _task(0, 1000, 3000, 2),
        {"Event": "SparkListenerJobEnd", "Job ID": 0, "Completion Time": 4000},
        _job(1, 6000, "parquet at y.py:2"),
        _task(1, 6000, 9000, 1),
        {"Event": "SparkListenerJobEnd", "Job ID": 1, "Completion Time": 9000},
        {"Event": "SparkListenerApplicationEnd", "Timestamp": 10000},
    ]
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return path


def test_slot_occupancy_splits_idle_time_into_no_task_and_beside_a_lone_task(tmp_path: Path) -> None:
    jobs, tasks, (start, end) = read_log(_log(tmp_path / "app"))
    assert [(j.call_site, j.tasks, j.wall_s) for j in jobs] == [
        ("count at x.py:1", 2, 4.0),
        ("parquet at y.py:2", 1, 3.0),
    ]
    assert (start, end) == (0, 10000)
    occupancy = slot_occupancy(tasks, 2, start, end)
    assert occupancy.wall_s == 10.0
    assert occupancy.busy_s == pytest.approx(4.0 + 2.0 + 3.0)  # task-seconds, none beyond 2 at once
    assert occupancy.no_task_s == pytest.approx(2 * (2.0 + 1.0))  # 4-6 s and 9-10 s, both slots
    # 0-1 s and 3-4 s: the first task of job 0 alone; 6-9 s: the write alone
    assert occupancy.beside_s == pytest.approx({"count at x.py:1": 2.0, "parquet at y.py:2": 3.0})
    total = occupancy.busy_s + occupancy.no_task_s + sum(occupancy.beside_s.values())
    assert total == pytest.approx(2 * occupancy.wall_s)  # every slot-second accounted for once
    report = occupancy_report(occupancy)
    assert "busy 9.0 (45 %)" in report and "| parquet at y.py:2 | 3.0 |" in report


def test_without_application_events_the_span_is_the_tasks_own() -> None:
    tasks = [Task(1000, 3000, "a"), Task(2000, 5000, "b")]
    occupancy = slot_occupancy(tasks, 1, None, None)
    assert occupancy.wall_s == 4.0 and occupancy.busy_s == pytest.approx(4.0)  # one slot, never idle
    assert occupancy.no_task_s == 0 and occupancy.beside_s == {}
