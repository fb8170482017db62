"""Where a Spark application's time went, from its event log: one row per job (its call site in our
code, wall seconds, tasks, summed task run and CPU seconds), slowest first; and how busy the task slots
were (:func:`slot_occupancy`: the time no task ran, and the time a slot idled beside fewer running tasks,
by the call site of the tasks that ran alone).

    .venv/bin/python -m bench.spark_events <event log file or directory> [--top 25] [--slots 2]

Enable the log for a run with ``TSPLATFORM_SPARK_CONF='{"spark.eventLog.enabled": "true",
"spark.eventLog.compress": "false", "spark.eventLog.dir": "file:///tmp/events"}'`` (``bench.graph_day
--event-log DIR`` does this).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Job:
    job_id: int
    call_site: str
    started_ms: int
    ended_ms: int = 0
    tasks: int = 0
    task_run_ms: int = 0
    task_cpu_ns: int = 0

    @property
    def wall_s(self) -> float:
        return max(0, self.ended_ms - self.started_ms) / 1000


@dataclass
class Task:
    launched_ms: int
    finished_ms: int
    call_site: str


@dataclass
class Occupancy:
    """Task-slot time of an application: ``slots`` x its wall time, split into busy slot-seconds, slot-seconds
    with no task running at all (the driver's work: start-up, planning, Python between jobs), and
    slot-seconds idle beside fewer than ``slots`` running tasks, by those tasks' call site (a stage's last
    task, a one-task write)."""

    wall_s: float
    slots: int
    busy_s: float
    no_task_s: float
    beside_s: dict[str, float]


def _log_files(path: Path) -> list[Path]:
    files = [path]
    if path.is_dir():  # a v2 (rolling) log is a directory of events_<n>_<app> files beside appstatus_*
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "appstatus"))
        )
    for file in files:
        if file.suffix in (".zstd", ".lz4", ".snappy", ".lzf"):
            raise ValueError(f"{file}: compressed event log; run with spark.eventLog.compress=false")
    return files


def read_log(path: Path) -> tuple[list[Job], list[Task], tuple[int | None, int | None]]:
    """The jobs and tasks (with their job's call site) of every event log under ``path``, and the
    application's (start, end) in epoch ms (None where the log lacks the event)."""
    jobs: list[Job] = []
    tasks: list[Task] = []
    start: int | None = None
    end: int | None = None
    for file in _log_files(path):
        by_id: dict[int, Job] = {}
        stage_job: dict[int, Job] = {}
        sql: dict[str, str] = {}  # SQL execution id -> its description (DataFrame actions carry no call site)
        with file.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind = event.get("Event")
                if kind == "SparkListenerApplicationStart":
                    start = event["Timestamp"] if start is None else min(start, event["Timestamp"])
                elif kind == "SparkListenerApplicationEnd":
                    end = event["Timestamp"] if end is None else max(end, event["Timestamp"])
                elif kind == "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart":
                    sql[str(event["executionId"])] = str(event.get("description") or "?")
                elif kind == "SparkListenerJobStart":
                    props = event.get("Properties") or {}
                    site = (
                        props.get("spark.job.description")
                        or props.get("callSite.short")
                        or sql.get(str(props.get("spark.sql.execution.id")), "?")
                    )
                    job = Job(event["Job ID"], site, event["Submission Time"])
                    by_id[job.job_id] = job
                    for stage in event.get("Stage IDs", []):
                        stage_job[stage] = job
                elif kind == "SparkListenerJobEnd" and event["Job ID"] in by_id:
                    by_id[event["Job ID"]].ended_ms = event["Completion Time"]
                elif kind == "SparkListenerTaskEnd" and event.get("Stage ID") in stage_job:
                    job = stage_job[event["Stage ID"]]
                    metrics = event.get("Task Metrics") or {}
                    job.tasks += 1
                    job.task_run_ms += int(metrics.get("Executor Run Time", 0))
                    job.task_cpu_ns += int(metrics.get("Executor CPU Time", 0))
                    info = event.get("Task Info") or {}
                    if "Launch Time" in info and "Finish Time" in info:
                        tasks.append(Task(info["Launch Time"], info["Finish Time"], job.call_site))
        jobs += by_id.values()
    return jobs, tasks, (start, end)


def slot_occupancy(tasks: list[Task], slots: int, start_ms: int | None, end_ms: int | None) -> Occupancy:
    """How ``slots`` task slots were used from ``start_ms`` to ``end_ms`` (default: the first launch and
    the last finish): a sweep over task launches and finishes. While n < ``slots`` tasks run, the idle
    ``slots - n`` slot-seconds go to "no task" (n = 0) or are shared among the n running tasks' call sites.
    More tasks than slots at once (not in local mode) count as ``slots`` busy."""
    if not tasks:
        wall = max(0, (end_ms or 0) - (start_ms or 0)) / 1000
        return Occupancy(wall, slots, 0.0, slots * wall, {})
    first = min(t.launched_ms for t in tasks) if start_ms is None else start_ms
    last = max(t.finished_ms for t in tasks) if end_ms is None else end_ms
    changes = sorted(
        [(t.launched_ms, 1, i) for i, t in enumerate(tasks)]
        + [(t.finished_ms, -1, i) for i, t in enumerate(tasks)]
    )
    running: set[int] = set()
    busy = no_task = 0.0
    beside: dict[str, float] = {}
    now = first
    for at, change, index in [*changes, (last, 0, -1)]:
        span = max(0, min(at, last) - max(now, first)) / 1000
        if span:
            busy += min(len(running), slots) * span
            if not running:
                no_task += slots * span
            elif len(running) < slots:
                for other in running:
                    site = tasks[other].call_site
                    beside[site] = beside.get(site, 0.0) + (slots - len(running)) * span / len(running)
        now = max(now, at)
        if change == 1:
            running.add(index)
        elif change == -1:
            running.discard(index)
    return Occupancy((last - first) / 1000, slots, busy, no_task, beside)


def occupancy_report(occupancy: Occupancy, top: int = 10) -> str:
    """Markdown: the slot-seconds of the application, and the call sites whose tasks ran with a slot idle."""
    o = occupancy
    total = o.slots * o.wall_s
    idle_beside = sum(o.beside_s.values())
    lines = [
        f"{o.slots} task slots x {o.wall_s:.1f} s = {total:.1f} slot-s: busy {o.busy_s:.1f} "
        f"({100 * o.busy_s / total if total else 0:.0f} %), idle with no task running {o.no_task_s:.1f}, "
        f"idle beside fewer running tasks {idle_beside:.1f}",
        "",
        "| call site of the tasks running with a slot idle | idle slot-s |",
        "|---|---:|",
    ]
    for site, seconds in sorted(o.beside_s.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"| {site} | {seconds:.1f} |")
    return "\n".join(lines)


def report(jobs: list[Job], top: int) -> str:
    """A markdown table of the ``top`` slowest call sites (jobs with the same call site summed)."""
    sites: dict[str, list[Job]] = {}
    for job in jobs:
        sites.setdefault(job.call_site, []).append(job)
    rows = sorted(sites.items(), key=lambda kv: -sum(j.wall_s for j in kv[1]))
    lines = [
        "| call site | jobs | wall s | tasks | task run s | task JVM CPU s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for site, group in rows[:top]:
        wall, tasks = sum(j.wall_s for j in group), sum(j.tasks for j in group)
        run_s, cpu_s = sum(j.task_run_ms for j in group) / 1000, sum(j.task_cpu_ns for j in group) / 1e9
        lines.append(f"| {site} | {len(group)} | {wall:.1f} | {tasks} | {run_s:.1f} | {cpu_s:.1f} |")
    total = sum(j.wall_s for j in jobs)
    lines.append(f"\n{len(jobs)} jobs, {total:.1f} s of job wall time in all")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--slots", type=int, default=2, help="task slots (local[N]: N)")
    args = parser.parse_args()
    jobs, tasks, (start, end) = read_log(args.path)
    print(report(jobs, args.top))
    print()
    print(occupancy_report(slot_occupancy(tasks, args.slots, start, end)))


if __name__ == "__main__":
    main()
