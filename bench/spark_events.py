"""Where a Spark application's time went, from its event log: one row per job (its call site in our
code, wall seconds, tasks, summed task run and CPU seconds), slowest first.

    .venv/bin/python -m bench.spark_events <event log file or directory> [--top 25]

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


def read_jobs(path: Path) -> list[Job]:
    """The jobs of every event log under ``path`` (a file, or a directory of logs)."""
    files = [path]
    if path.is_dir():  # a v2 (rolling) log is a directory of events_<n>_<app> files beside appstatus_*
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "appstatus"))
        )
    for file in files:
        if file.suffix in (".zstd", ".lz4", ".snappy", ".lzf"):
            raise ValueError(f"{file}: compressed event log; run with spark.eventLog.compress=false")
    jobs: list[Job] = []
    for file in files:
        by_id: dict[int, Job] = {}
        stage_job: dict[int, Job] = {}
        sql: dict[str, str] = {}  # SQL execution id -> its description (DataFrame actions carry no call site)
        with file.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind = event.get("Event")
                if kind == "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart":
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
        jobs += by_id.values()
    return jobs


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
    args = parser.parse_args()
    print(report(read_jobs(args.path), args.top))


if __name__ == "__main__":
    main()
