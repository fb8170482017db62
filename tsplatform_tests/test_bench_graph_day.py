"""bench.graph_day's accounting of the driver JVM's CPU by thread kind (Linux ``/proc``; this process's own
threads stand in for a JVM's)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psutil
import pytest

from bench.process_tree import (
    JVM_KINDS,
    Sampled,
    _thread_kind,
    jvm_cpu_by_kind,
    jvm_thread_cpu,
    sample_tree,
)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("C2 CompilerThre", "JIT compilers"),
        ("C1 CompilerThre", "JIT compilers"),
        ("Executor task l", "executor tasks"),
        ("GC Thread#0", "garbage collector"),
        ("VM Thread", "garbage collector"),
        ("dag-scheduler-e", "other threads"),
    ],
)
def test_thread_kind_from_the_linux_thread_name(name: str, kind: str) -> None:
    assert _thread_kind(name) == kind


def test_thread_cpu_of_a_live_process_sees_its_busy_thread() -> None:
    spun, done = threading.Event(), threading.Event()

    def spin() -> None:
        # CPU time, not wall time: on a loaded machine (the suite's other worker) 0.5 s of wall time gave
        # the thread 0.15 s of CPU. It spins until it has used 0.3 s, then idles until sampled.
        while time.thread_time() < 0.3:
            sum(range(10_000))
        spun.set()
        done.wait()

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        assert spun.wait(60), "the spinning thread never got 0.3 s of CPU"
        threads = jvm_thread_cpu(os.getpid())
    finally:
        done.set()
        worker.join()
    assert (os.getpid(), os.getpid()) in threads  # the main thread's tid is the pid
    assert (os.getpid(), worker.native_id) in threads
    assert threads[(os.getpid(), worker.native_id)][1] >= 0.28  # /proc counts in clock ticks (0.01 s)
    assert jvm_thread_cpu(2**22 + 1) == {}  # no such process: nothing, no error


def test_jvm_cpu_by_kind_puts_what_ended_threads_used_apart() -> None:
    seen = Sampled()
    seen.role = {10: "driver JVM", 11: "python workers"}
    seen.cpu = {10: 50.0, 11: 30.0}
    seen.jvm_threads = {(10, 1): ("JIT compilers", 12.0), (10, 2): ("executor tasks", 30.0)}
    by_kind = jvm_cpu_by_kind(seen)
    assert set(by_kind) == {*JVM_KINDS, "not attributed"}
    assert by_kind["JIT compilers"] == 12.0 and by_kind["executor tasks"] == 30.0
    assert by_kind["not attributed"] == pytest.approx(8.0)  # the workers' 30 s are not the JVM's


def test_a_finished_process_keeps_its_role_until_it_is_reaped() -> None:
    # the dagster CLI exits before the bench reaps it: as a zombie it has no command line, and its CPU
    # used to move from "python driver" to "other" in the report
    child = subprocess.Popen([sys.executable, "-c", "sum(range(3_000_000))"])
    seen, stop = Sampled(), threading.Event()
    sampler = threading.Thread(target=sample_tree, args=([psutil.Process(child.pid)], seen, stop, 0.05))
    sampler.start()
    try:
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            threading.Event().wait(0.05)
        threading.Event().wait(0.3)  # a few samples of the zombie
    finally:
        stop.set()
        sampler.join()
        child.wait()
    assert seen.role[child.pid] == "python driver"
    assert seen.cpu[child.pid] > 0
