"""The driver JVM's class archive (``resources.spark.class_archive_options``): a first session writes it
when its JVM exits, a later call promotes it once settled, and a session started with it maps it and
works. Real JVMs, in subprocesses with their own cache directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tsplatform.resources.spark import ARCHIVE_SETTLED_S, _promote_settled, class_archive_options
from tsplatform.settings import Settings

SESSION = """
import json, pathlib
from pyspark.sql import SparkSession
from tsplatform.resources.spark import spark_conf
builder = SparkSession.builder
for key, value in spark_conf().items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
rows = spark.range(100).selectExpr("sum(id) AS s").collect()[0]["s"]
pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
maps = pathlib.Path(f"/proc/{pid}/maps").read_text()
print(json.dumps({"sum": rows, "options": spark.conf.get("spark.driver.extraJavaOptions"), "maps": maps}))
spark.stop()
"""


def _session(tmp_path: Path, cache: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "TSPLATFORM_STATE_DIR": str(tmp_path / "state"),
        "TSPLATFORM_SPARK_CLASS_CACHE_DIR": str(cache),
        "TSPLATFORM_SPARK_MASTER": "local[1]",
    }
    out = subprocess.run(
        [sys.executable, "-c", SESSION], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_settled_partials_are_promoted_and_recent_ones_left_alone(tmp_path: Path) -> None:
    archive = tmp_path / "driver-abc.jsa"
    old, older, recent = (tmp_path / f"driver-abc.{n}.partial" for n in ("1-a", "2-b", "3-c"))
    for path, age in ((old, ARCHIVE_SETTLED_S + 10), (older, ARCHIVE_SETTLED_S + 20), (recent, 1)):
        path.write_bytes(path.name.encode())
        _age(path, age)
    _promote_settled(archive)
    assert archive.read_bytes() == old.name.encode()  # the newest settled one
    assert not old.exists() and not older.exists() and recent.exists()
    _age(recent, ARCHIVE_SETTLED_S + 1)  # written by a JVM started before the archive existed
    _promote_settled(archive)
    assert archive.read_bytes() == old.name.encode() and not recent.exists()  # dropped, not promoted


def test_disabled_or_unwritable_cache_gives_no_options(tmp_path: Path) -> None:
    assert class_archive_options(Settings(spark_class_cache=False)) == ""
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    assert class_archive_options(Settings(spark_class_cache_dir=blocked)) == ""


@pytest.mark.integration
def test_a_session_writes_the_archive_and_the_next_one_maps_it(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _session(tmp_path, cache)
    assert first["sum"] == 4950 and "-XX:ArchiveClassesAtExit=" in first["options"]
    [partial] = (cache / "spark-cds").glob("*.partial")  # written when the first JVM exited
    assert partial.stat().st_size > 1_000_000
    _age(partial, ARCHIVE_SETTLED_S + 1)
    second = _session(tmp_path, cache)
    [archive] = (cache / "spark-cds").glob("*.jsa")
    assert second["sum"] == 4950 and f"-XX:SharedArchiveFile={archive}" in second["options"]
    assert str(archive) in second["maps"]  # the JVM mapped the archive: its classes came from it
