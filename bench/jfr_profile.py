"""Where a Spark driver JVM's executor tasks spend their CPU, from a Java Flight Recorder recording: the
execution samples of the task threads, counted by what the task produces (its sink: a cache, a shuffle,
Parquet files, or a result; a pandas UDF's Arrow traffic runs inside the task that consumes its output)
and by the innermost Spark operation on the stack.

    .venv/bin/python -m bench.jfr_profile <recording.jfr> [...]

A recording of a Spark Connect server during one run comes from ``bench.graph_day --spark-connect --jfr DIR``
(``jcmd <pid> JFR.start settings=profile`` before the run, ``JFR.stop`` after it). JFR samples running Java
threads every 10-20 ms (``profile`` settings), so a sample count is a share of the task threads' CPU, not
seconds; ``bench.graph_day``'s per-thread table has the seconds. Stacks are cut at 64 frames (JFR's
default depth): the sink is the deepest matching frame that survived, so a deep stack may count under
"other / not on the stack".
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: what a task produces: the deepest frame matching one of these (checked in this order on each frame)
SINKS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern))
    for label, pattern in (
        ("Parquet write", r"FileFormatWriter|FileFormatDataWriter|ParquetOutputWriter"),
        (
            "in-memory cache build (and the pandas UDF feeding it)",
            r"CachedRDDBuilder|MemoryStore\.putIterator",
        ),
        ("shuffle write", r"ShuffleWriteProcessor"),
    )
)
#: else the kind of task (a shuffle map task feeds a shuffle; a result task returns rows or counts)
TASK_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern))
    for label, pattern in (
        ("shuffle write", r"scheduler\.ShuffleMapTask"),
        ("result (collect, count, foreach)", r"scheduler\.ResultTask"),
    )
)
#: the innermost Spark operation on the stack (the first frame from the top that matches one)
OPERATIONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern))
    for label, pattern in (
        ("Arrow to Python", r"ArrowWriter|ArrowFieldWriter|StringWriter|PythonArrowInput|ArrowStreamWriter"),
        ("Arrow from Python", r"PythonArrowOutput|ArrowColumnVector|ArrowStreamReader|ArrowReader"),
        ("Parquet encode / write", r"org\.apache\.parquet\.(column|hadoop|io)|ParquetWriteSupport"),
        ("Parquet read", r"VectorizedParquetRecordReader|VectorizedColumnReader|ParquetRowConverter"),
        ("cache encode", r"ColumnBuilder|DefaultCachedBatchSerializer\$\$anon\$1"),
        ("cache decode", r"ColumnAccessor|GeneratedColumnarIterator|compression\.\w+\$Decoder"),
        ("shuffle write", r"ShuffleWriter|ShuffleExternalSorter|DiskBlockObjectWriter|anon\$1\.writeValue"),
        ("shuffle read", r"ShuffleBlockFetcherIterator|BlockStoreShuffleReader|anon\$3\.(next|readSize)"),
        ("sort", r"UnsafeExternalRowSorter|UnsafeExternalSorter|UnsafeInMemorySorter|addToSorter|RadixSort"),
        ("hash aggregate", r"hashAgg_|HashAggregat|UnsafeFixedWidthAggregationMap|BytesToBytesMap"),
        ("window", r"WindowExec|WindowEvaluator|WindowFunctionFrame"),
        ("generated code (projections, filters)", r"GeneratedClass|SpecificUnsafeProjection"),
    )
)
OTHER = "other / not on the stack"
TASK_THREAD = "Executor task launch worker"
_EVENT = re.compile(r"^jdk\.ExecutionSample \{", re.M)
_THREAD = re.compile(r'sampledThread = "([^"]*)"')
_FRAME = re.compile(r"^\s+([\w.$<>]+)\(", re.M)


@dataclass(frozen=True)
class Sample:
    """One execution sample: the thread's name and its frames, innermost first."""

    thread: str
    frames: tuple[str, ...]


def parse_samples(text: str) -> list[Sample]:
    """The ``jdk.ExecutionSample`` events of ``jfr print`` text output."""
    samples = []
    for event in _EVENT.split(text)[1:]:
        thread = _THREAD.search(event)
        samples.append(Sample(thread.group(1) if thread else "", tuple(_FRAME.findall(event))))
    return samples


def _first_match(frames: Iterable[str], patterns: tuple[tuple[str, re.Pattern[str]], ...]) -> str:
    for frame in frames:
        for label, pattern in patterns:
            if pattern.search(frame):
                return label
    return OTHER


def sink(sample: Sample) -> str:
    """What the sampled task produces: the deepest frame that matches one of ``SINKS``, else its task kind."""
    found = _first_match(reversed(sample.frames), SINKS)
    return found if found != OTHER else _first_match(reversed(sample.frames), TASK_KINDS)


def operation(sample: Sample) -> str:
    """The innermost Spark operation of the sample: the topmost frame that matches one of ``OPERATIONS``."""
    return _first_match(sample.frames, OPERATIONS)


def task_samples(samples: Iterable[Sample]) -> list[Sample]:
    """The samples of executor task threads (in local mode they run in the driver JVM)."""
    return [s for s in samples if s.thread.startswith(TASK_THREAD)]


def jdk_tool(name: str) -> str:
    """A JDK tool (``jcmd``, ``jfr``) beside the ``java`` that runs Spark (``$JAVA_HOME`` or ``PATH``), else
    the one on ``PATH``."""
    from tsplatform.services.process import find_java

    beside_java = find_java().resolve().with_name(name)
    found = str(beside_java) if beside_java.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} (a JDK tool) is neither beside java nor on PATH")
    return found


def read_recording(path: Path) -> list[Sample]:
    """The execution samples of a ``.jfr`` file (``jfr print``, from the JDK that runs Spark)."""
    text = subprocess.run(
        [jdk_tool("jfr"), "print", "--events", "jdk.ExecutionSample", "--stack-depth", "64", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return parse_samples(text)


def shares(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """``{"sink": {label: share}, "operation": {label: share}}`` of the task threads' samples (shares of
    1, largest first); empty when there is none."""
    tasks = task_samples(samples)
    out: dict[str, dict[str, float]] = {}
    for name, classify in (("sink", sink), ("operation", operation)):
        counts = Counter(classify(s) for s in tasks)
        out[name] = {label: n / len(tasks) for label, n in counts.most_common()} if tasks else {}
    return out


def report(samples: list[Sample], top: int = 4) -> str:
    """Markdown: the task threads' samples by sink (with the ``top`` innermost operations inside each) and
    by innermost operation."""
    tasks = task_samples(samples)
    by_sink: dict[str, Counter[str]] = {}
    for s in tasks:
        by_sink.setdefault(sink(s), Counter())[operation(s)] += 1
    got = shares(samples)
    lines = [f"{len(tasks):,} executor-task samples of {len(samples):,}\n"]
    lines += [
        "| what the task produces | share of task samples | innermost operations there |",
        "|---|---:|---|",
    ]
    for label, share in got["sink"].items():
        parts = ", ".join(f"{op} {n / len(tasks):.0%}" for op, n in by_sink[label].most_common(top))
        lines.append(f"| {label} | {share:.0%} | {parts} |")
    lines += ["", "| innermost operation | share of task samples |", "|---|---:|"]
    lines += [f"| {label} | {share:.0%} |" for label, share in got["operation"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recordings", type=Path, nargs="+")
    args = parser.parse_args()
    for path in args.recordings:
        print(f"### {path}\n")
        print(report(read_recording(path)))


if __name__ == "__main__":
    main()
