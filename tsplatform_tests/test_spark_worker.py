"""``tsplatform.spark_worker``: an unchanged zip on ``sys.path`` is not re-read by every
``importlib.invalidate_caches()`` (PySpark calls it before each task), a rewritten one still is, and Spark's
Python workers run with it."""

from __future__ import annotations

import sys
import zipfile
import zipimport
from pathlib import Path

import pandas as pd
import pytest

from tsplatform import spark_worker


def _write_zip(path: Path, modules: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, source in modules.items():
            archive.writestr(f"{name}.py", source)


def test_an_unchanged_zip_is_read_once_and_a_rewritten_one_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # restored after the test: the class attribute the installer replaces, and the directory reader counted
    monkeypatch.setattr(zipimport.zipimporter, "invalidate_caches", zipimport.zipimporter.invalidate_caches)
    reads: list[str] = []
    read_directory = zipimport._read_directory  # type: ignore[attr-defined]

    def counted(archive: str) -> object:
        reads.append(archive)
        return read_directory(archive)

    monkeypatch.setattr(zipimport, "_read_directory", counted)
    if sys.version_info >= (3, 12):  # CPython's own invalidation is lazy there: nothing to install
        assert not spark_worker.cheap_zip_invalidation()
        return
    assert spark_worker.cheap_zip_invalidation() and spark_worker.is_installed()

    path = tmp_path / "lib.zip"
    _write_zip(path, {"first_module": "X = 1\n"})
    importer = zipimport.zipimporter(str(path))
    other = zipimport.zipimporter(str(path))  # a second importer of the same archive (a subpackage's)
    assert len(reads) == 1  # the constructor's read
    for _ in range(5):
        importer.invalidate_caches()
        other.invalidate_caches()
    assert len(reads) == 2  # the first invalidation reads (the file may have changed before it), no other
    assert importer.find_spec("first_module") is not None and importer.find_spec("second_module") is None

    _write_zip(path, {"first_module": "X = 1\n", "second_module": "Y = 2\n"})
    importer.invalidate_caches()
    other.invalidate_caches()
    assert len(reads) == 3  # rewritten: read again, once for both importers
    assert importer.find_spec("second_module") is not None and other.find_spec("second_module") is not None


def _installed(rows: pd.DataFrame) -> pd.DataFrame:
    import gc

    from tsplatform import spark_worker as in_worker

    return pd.DataFrame(
        {"installed": [in_worker.is_installed()], "frozen": [gc.get_freeze_count()], "rows": [len(rows)]}
    )


@pytest.mark.integration
def test_spark_python_workers_run_with_it() -> None:
    from tsplatform.resources.spark import hive_session_builder, spark_conf

    assert spark_conf()["spark.python.daemon.module"] == spark_worker.DAEMON_MODULE
    spark = hive_session_builder().getOrCreate()
    frame = spark.range(0, 160).selectExpr("id % 16 AS key", "id")
    schema = "installed boolean, frozen long, rows long"
    out = frame.groupBy("key").applyInPandas(_installed, schema).toPandas()
    assert out["rows"].sum() == 160 and len(out) == 16
    assert out["installed"].all() == (sys.version_info < (3, 12))
    # tasks run one after another in each worker (2 cores, one task per shuffle partition): every task but
    # a worker's first starts with what the earlier ones left frozen
    assert (out["frozen"] > 0).any()


def test_each_task_starts_with_the_previous_tasks_survivors_frozen() -> None:
    import gc

    seen: list[int] = []

    def task(*_: object) -> None:
        seen.append(gc.get_freeze_count())

    gc.unfreeze()
    try:
        main = spark_worker.freezing_before_each_task(task)
        main(None, None)
        survivor = [object()]  # something the "task" left behind
        main(None, None)
        assert seen[0] > 0 and seen[1] > 0
        # the survivor is frozen: in no collected generation. (Comparing the two freeze counts was flaky in a
        # shared test process: frozen objects freed by refcount between the calls lower the second count.)
        assert not any(o is survivor for generation in (0, 1, 2) for o in gc.get_objects(generation))
        assert gc.is_tracked(survivor)  # frozen objects stay alive and tracked
    finally:
        gc.unfreeze()


def test_what_the_executors_import_leaves_dagster_out() -> None:
    """The graph's functions that run on the executors live outside ``tsplatform.assets``: unpickling them
    imports the core, the Spark plumbing and the catalog client, not Dagster (~0.4 CPU s less for each
    Python worker process, and executors need no Dagster installed)."""
    import subprocess

    modules = ["tsplatform.timeseries.stages", "tsplatform.timeseries.validate", "tsplatform.spark_io"]
    modules += ["tsplatform.catalog"]
    code = (
        f"import sys, {', '.join(modules)}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'dagster_pyspark')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
