"""A process tree sampled with psutil (CPU and RSS by role) and a JVM's CPU by thread kind (Linux ``/proc``),
for ``bench.graph_day`` and ``bench.reliability_load``."""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field

import psutil


@dataclass
class Sampled:
    """What psutil saw of one process tree."""

    cpu: dict[int, float] = field(default_factory=dict)  # pid -> last user+system CPU s
    role: dict[int, str] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)  # role -> peak of the role's summed RSS
    peak_single: dict[str, int] = field(default_factory=dict)  # role -> largest single process
    peak_total: int = 0  # peak of the whole tree's summed RSS
    #: the driver JVM's threads: (pid, tid) -> (kind, CPU s at its last sample)
    jvm_threads: dict[tuple[int, int], tuple[str, float]] = field(default_factory=dict)

    @property
    def cpu_s(self) -> float:
        """User + system CPU of every process seen, each at its last sample (at most one interval of a
        process's last moments missed): processes nobody waits for (the Spark JVM, workers) count too."""
        return sum(self.cpu.values())


SPARK_ROLES = ("driver JVM", "python workers")


def process_role(proc: psutil.Process) -> str:
    """``driver JVM``, ``python workers`` (PySpark's daemon and its forks), ``python driver`` or ``other``."""
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    if "java" in os.path.basename(proc.cmdline()[0] if proc.cmdline() else ""):
        return "driver JVM"
    if "pyspark.daemon" in cmd or "pyspark/daemon" in cmd or "pyspark.worker" in cmd:
        return "python workers"
    if "python" in cmd:
        return "python driver"
    return "other"


def tree_cpu(root: psutil.Process) -> dict[int, float]:
    """User + system CPU s of ``root`` and its descendants now, by pid."""
    out = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        out[proc.pid] = times.user + times.system
    return out


#: what a driver JVM's threads are, by the start of their (15-character) Linux thread name
JVM_THREAD_KINDS = (
    ("C1 Compiler", "JIT compilers"),
    ("C2 Compiler", "JIT compilers"),
    ("Executor task", "executor tasks"),
    ("GC Thread", "garbage collector"),
    ("VM Thread", "garbage collector"),
)
JVM_KINDS = ("executor tasks", "JIT compilers", "garbage collector", "other threads")


def _thread_kind(name: str) -> str:
    return next((kind for prefix, kind in JVM_THREAD_KINDS if name.startswith(prefix)), "other threads")


def jvm_thread_cpu(pid: int) -> dict[tuple[int, int], tuple[str, float]]:
    """User + system CPU s of each live thread of process ``pid`` now, with its kind (Linux ``/proc``; empty
    elsewhere or once the process is gone)."""
    out: dict[tuple[int, int], tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    name = f.read().strip()
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                out[(pid, int(tid))] = (_thread_kind(name), (int(fields[11]) + int(fields[12])) / tick)
    return out


def record_jvm_threads(seen: Sampled, pid: int, before: dict[tuple[int, int], float]) -> None:
    """The JVM ``pid``'s threads now into ``seen.jvm_threads``, less the CPU s each had used ``before``."""
    for key, (kind, cpu) in jvm_thread_cpu(pid).items():
        seen.jvm_threads[key] = (kind, cpu - before.get(key, 0.0))


def jvm_cpu_by_kind(seen: Sampled) -> dict[str, float]:
    """The driver JVM's CPU s by thread kind (``JVM_KINDS``) and ``not attributed``: what threads that ended
    between two samples used (the JVM's total minus its threads' last samples)."""
    out = dict.fromkeys(JVM_KINDS, 0.0)
    for kind, cpu in seen.jvm_threads.values():
        out[kind] += cpu
    total = sum(c for pid, c in seen.cpu.items() if seen.role.get(pid) == "driver JVM")
    out["not attributed"] = max(0.0, total - sum(out.values()))
    return out


def sample_tree(
    roots: list[psutil.Process],
    seen: Sampled,
    stop: threading.Event,
    interval_s: float = 0.2,
    baseline: dict[int, float] | None = None,
    thread_baseline: dict[tuple[int, int], float] | None = None,
    threads_every: int = 5,
) -> None:
    """Until ``stop``: every ``interval_s``, CPU and RSS of ``roots`` and their descendants into ``seen``, and
    every ``threads_every`` samples the driver JVM's CPU per thread; ``baseline`` / ``thread_baseline``: CPU
    s a process / thread had already used before (a long-lived server's), not counted."""
    baseline, thread_baseline = baseline or {}, thread_baseline or {}
    samples = 0
    while not stop.is_set():
        samples += 1
        procs = []
        for root in roots:
            with contextlib.suppress(psutil.Error):
                procs += [root, *root.children(recursive=True)]
        by_role: dict[str, int] = {}
        for proc in procs:
            try:
                times = proc.cpu_times()
                rss = proc.memory_info().rss
                # what the process is now (a launcher script execs java, a JVM's fork execs the Python
                # daemon); a daemon's forks look like any python and keep the role their parent gave them;
                # an exited process not yet reaped has no command line ("other"): it keeps its role
                role = process_role(proc)
                cached = seen.role.get(proc.pid)
                if (role not in SPARK_ROLES and cached in SPARK_ROLES) or (role == "other" and cached):
                    role = cached
            except psutil.Error:
                continue
            if role == "python driver" and proc not in roots:  # forks of the pyspark daemon
                parent = proc.parent()
                if parent is not None and seen.role.get(parent.pid) == "python workers":
                    role = "python workers"
            seen.role[proc.pid] = role
            seen.cpu[proc.pid] = times.user + times.system - baseline.get(proc.pid, 0.0)
            if role == "driver JVM" and samples % threads_every == 1:
                record_jvm_threads(seen, proc.pid, thread_baseline)
            by_role[role] = by_role.get(role, 0) + rss
            seen.peak_single[role] = max(seen.peak_single.get(role, 0), rss)
        for role, rss in by_role.items():
            seen.peak_rss[role] = max(seen.peak_rss.get(role, 0), rss)
        seen.peak_total = max(seen.peak_total, sum(by_role.values()))
        stop.wait(interval_s)
