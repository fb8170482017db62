"""bench.jfr_profile: Flight Recorder execution samples of Spark's executor tasks, classified by what the task
produces and by the innermost Spark operation (``jfr print`` text, as the JDK 17 tool writes it)."""

from __future__ import annotations

import pytest

from bench.jfr_profile import OTHER, Sample, operation, parse_samples, report, shares, sink

TASK = "Executor task launch worker for task 2.0 in stage 408.0 (TID 832)"
# innermost first, as `jfr print` lists a stack trace
CACHE_BUILD = (
    "org.apache.spark.sql.execution.columnar.BasicColumnBuilder.appendFrom",
    "org.apache.spark.sql.execution.columnar.compression.CompressibleColumnBuilder.appendFrom",
    "org.apache.spark.sql.execution.columnar.DefaultCachedBatchSerializer$$anon$1.next",
    "org.apache.spark.sql.execution.columnar.CachedRDDBuilder$$anon$2.next",
    "org.apache.spark.storage.memory.MemoryStore.putIterator",
    "org.apache.spark.rdd.RDD.iterator",
    "org.apache.spark.scheduler.ResultTask.runTask",
    "java.lang.Thread.run",
)
SHUFFLE_AGG = (
    "org.apache.spark.unsafe.array.ByteArrayMethods.arrayEquals",
    "org.apache.spark.unsafe.map.BytesToBytesMap.safeLookup",
    "org.apache.spark.sql.execution.UnsafeFixedWidthAggregationMap.getAggregationBufferFromUnsafeRow",
    "org.apache.spark.sql.catalyst.expressions.GeneratedClass$GeneratedIteratorForCodegenStage2.processNext",
    "org.apache.spark.shuffle.sort.BypassMergeSortShuffleWriter.write",
    "org.apache.spark.shuffle.ShuffleWriteProcessor.write",
    "org.apache.spark.scheduler.ShuffleMapTask.runTask",
)
PARQUET_WRITE = (
    "org.apache.parquet.column.values.dictionary.DictionaryValuesWriter.writeBytes",
    "org.apache.spark.sql.execution.datasources.parquet.ParquetOutputWriter.write",
    "org.apache.spark.sql.execution.datasources.FileFormatDataWriter.write",
    "org.apache.spark.sql.execution.datasources.FileFormatWriter$.executeTask",
    "org.apache.spark.scheduler.ResultTask.runTask",
)


def _event(thread: str, frames: tuple[str, ...]) -> str:
    stack = "\n".join(f"    {f}(InternalRow, int) line: 74" for f in frames)
    return (
        "jdk.ExecutionSample {\n  startTime = 01:27:05.281\n"
        f'  sampledThread = "{thread}" (javaThreadId = 78)\n  state = "STATE_RUNNABLE"\n'
        f"  stackTrace = [\n{stack}\n  ]\n}}\n\n"
    )


def test_parse_reads_the_thread_and_the_frames_innermost_first() -> None:
    text = _event(TASK, CACHE_BUILD) + _event("dag-scheduler-event-loop", ("java.lang.Object.wait",))
    samples = parse_samples(text)
    assert samples == [
        Sample(TASK, CACHE_BUILD),
        Sample("dag-scheduler-event-loop", ("java.lang.Object.wait",)),
    ]


@pytest.mark.parametrize(
    ("frames", "produced", "innermost"),
    [
        (CACHE_BUILD, "in-memory cache build (and the pandas UDF feeding it)", "cache encode"),
        (SHUFFLE_AGG, "shuffle write", "hash aggregate"),
        (PARQUET_WRITE, "Parquet write", "Parquet encode / write"),
        (("java.lang.Thread.run",), OTHER, OTHER),
    ],
)
def test_a_sample_is_classified_by_its_sink_and_its_innermost_operation(
    frames: tuple[str, ...], produced: str, innermost: str
) -> None:
    sample = Sample(TASK, frames)
    assert sink(sample) == produced
    assert operation(sample) == innermost


def test_a_result_task_without_a_specific_sink_counts_as_a_result() -> None:
    frames = (
        "org.apache.spark.storage.ShuffleBlockFetcherIterator.next",
        "org.apache.spark.scheduler.ResultTask.runTask",
    )
    assert sink(Sample(TASK, frames)) == "result (collect, count, foreach)"
    assert operation(Sample(TASK, frames)) == "shuffle read"


def test_shares_count_only_executor_task_threads() -> None:
    samples = [
        Sample(TASK, CACHE_BUILD),
        Sample(TASK, CACHE_BUILD),
        Sample(TASK, SHUFFLE_AGG),
        Sample("C2 CompilerThread0", SHUFFLE_AGG),  # not a task thread: left out
    ]
    got = shares(samples)
    assert got["sink"] == pytest.approx(
        {"in-memory cache build (and the pandas UDF feeding it)": 2 / 3, "shuffle write": 1 / 3}
    )
    assert got["operation"] == pytest.approx({"cache encode": 2 / 3, "hash aggregate": 1 / 3})
    assert list(got["sink"]) == ["in-memory cache build (and the pandas UDF feeding it)", "shuffle write"]
    assert shares([]) == {"sink": {}, "operation": {}}
    table = report(samples)
    assert "3 executor-task samples of 4" in table
    assert "| shuffle write | 33% | hash aggregate 33% |" in table
