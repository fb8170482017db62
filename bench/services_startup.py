"""Start-up cost of the local services (what a test session or `make demo` pays), as a markdown table.

Measures, per round, in a fresh temp state dir on free ports: Kafka's first start (log dir format +
broker start until an AdminClient ``list_topics`` answers), Kafka's restart after SIGKILL (log recovery),
the MongoDB-wire server's start and restart (until ``ping`` answers), and ``down``. Wall time and the
CPU seconds the JVM used until healthy (less sensitive to a busy machine than wall time). Baseline in the
same run: the bare JVM floor, ``java -version``.

    .venv/bin/python bench/services_startup.py --rounds 3 [--jars-dir .tsplatform/jars]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tsplatform.services.manager import ServiceManager
from tsplatform.services.process import find_java


def _jvm_cpu_s(manager: ServiceManager, name: str) -> float:
    record = manager._running_record(name)
    if record is None:
        return float("nan")
    times = psutil.Process(record.pid).cpu_times()
    return times.user + times.system


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def one_round(jars_dir: Path) -> dict[str, tuple[float, float]]:
    """{step: (wall s, JVM CPU s)} for one fresh state dir."""
    state = Path(tempfile.mkdtemp(prefix="tsp-bench-services-"))
    manager = ServiceManager.on_free_ports(state, jars_dir=jars_dir)
    java = str(find_java())
    out: dict[str, tuple[float, float]] = {}
    try:
        out["baseline: java -version"] = (
            _timed(lambda: subprocess.run([java, "-version"], capture_output=True)),
            0.0,
        )
        out["kafka first start (format + start)"] = (
            _timed(lambda: manager.up(["kafka"])),
            _jvm_cpu_s(manager, "kafka"),
        )
        manager.stop("kafka", kill=True)
        out["kafka restart after SIGKILL"] = (
            _timed(lambda: manager.start("kafka")),
            _jvm_cpu_s(manager, "kafka"),
        )
        out["mongo first start"] = (_timed(lambda: manager.start("mongo")), _jvm_cpu_s(manager, "mongo"))
        manager.stop("mongo")
        out["mongo restart (SIGTERM, H2 store kept)"] = (
            _timed(lambda: manager.start("mongo")),
            _jvm_cpu_s(manager, "mongo"),
        )
        out["down (both, SIGTERM)"] = (_timed(manager.down), 0.0)
    finally:
        manager.down()
        shutil.rmtree(state, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jars-dir", type=Path, default=Path(".tsplatform/jars"))
    args = parser.parse_args()
    manager = ServiceManager(Path(tempfile.gettempdir()), jars_dir=args.jars_dir)
    manager.fetch()
    rounds = [one_round(args.jars_dir.resolve()) for _ in range(args.rounds)]
    load = psutil.getloadavg()
    print(
        f"{args.rounds} rounds, {psutil.cpu_count()} CPUs, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
    print()
    print("| step | wall median (s) | wall min-max (s) | JVM CPU median (s) |")
    print("|---|---:|---:|---:|")
    for step in rounds[0]:
        walls = [r[step][0] for r in rounds]
        cpus = [r[step][1] for r in rounds]
        cpu = statistics.median(cpus)
        cpu_text = f"{cpu:.1f}" if cpu > 0 else "-"
        print(f"| {step} | {statistics.median(walls):.1f} | {min(walls):.1f}-{max(walls):.1f} | {cpu_text} |")


if __name__ == "__main__":
    main()
