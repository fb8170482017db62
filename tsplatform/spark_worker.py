"""PySpark's Python worker daemon, without two costs it adds to every task (one only on CPython 3.10-3.11).

Spark starts ``python -m <spark.python.daemon.module> pyspark.worker`` on each executor; the daemon forks
the workers that run our pandas functions, and a worker runs task after task. Before every task, PySpark's
worker (``pyspark.worker_util.setup_spark_files``) calls ``importlib.invalidate_caches()``. On CPython 3.10
and 3.11 that makes every ``zipimporter`` in ``sys.path_importer_cache`` re-read its archive's whole
directory in pure Python: ``pyspark.zip`` (1,328 entries) once per PySpark package imported from it, plus
the py4j zip and ``spark-core.jar`` (5,358 entries), all of which are on a worker's ``sys.path``. That is
~0.05-0.15 CPU s per task, spent by every task of every pandas function and ``foreachPartition``
(BENCHMARKS.md, issue 9, session 19). CPython 3.12 made the invalidation lazy (python/cpython#103200,
reported by a Spark developer); 3.11 did not get the fix.

:func:`cheap_zip_invalidation` installs an equivalent fix in this process: a ``zipimporter`` re-reads its
archive only when the file's modification time or size changed since it last read it, so a rewritten zip
is still seen, and an unchanged one costs one ``stat``. Run as ``spark.python.daemon.module``
(:func:`tsplatform.resources.spark.server_conf`), this module installs it in the daemon, whose forks
inherit it, then runs PySpark's own daemon unchanged. On CPython 3.12 and later it installs nothing.

A second per-task cost, on every CPython: after each task PySpark's daemon runs a full ``gc.collect()`` in
the worker, which traverses every object the worker holds, the modules that pandas, statsmodels and our
core import included (~0.1 CPU s a task). :func:`freezing_before_each_task` wraps PySpark's worker
``main`` so that each task starts with ``gc.freeze()``: what survived the previous task's collection
(modules, caches) moves to the permanent generation, which later collections skip, and the collection
after a task only traverses what that task created. Frozen objects are still freed by reference
counting; only a cycle that forms among them later stays uncollected.
"""

from __future__ import annotations

import gc
import os
import runpy
import sys
import zipimport
from collections.abc import Callable
from typing import Any

#: The daemon module name for ``spark.python.daemon.module``.
DAEMON_MODULE = __name__
#: archive path -> (mtime ns, size) when its directory was last read by the patched invalidation
_READ_STAMPS: dict[str, tuple[int, int]] = {}
_ORIGINAL_INVALIDATE = zipimport.zipimporter.invalidate_caches


def _stamp(archive: str) -> tuple[int, int] | None:
    try:
        st = os.stat(archive)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _invalidate_if_changed(self: zipimport.zipimporter) -> None:
    """``zipimporter.invalidate_caches``, skipping the re-read when the archive is unchanged since the last
    one (the first call always re-reads, so a change before it is seen too)."""
    stamp = _stamp(self.archive)
    cached: dict[str, Any] | None = zipimport._zip_directory_cache.get(self.archive)  # type: ignore[attr-defined]
    if stamp is not None and cached is not None and _READ_STAMPS.get(self.archive) == stamp:
        self._files = cached  # type: ignore[attr-defined]  # what the re-read would have produced
        return
    _ORIGINAL_INVALIDATE(self)
    if stamp is None:
        _READ_STAMPS.pop(self.archive, None)
    else:
        _READ_STAMPS[self.archive] = stamp


def cheap_zip_invalidation() -> bool:
    """Install the invalidation above in this process (idempotent); False on CPython 3.12+, which has its
    own lazy one."""
    if sys.version_info >= (3, 12):
        return False
    zipimport.zipimporter.invalidate_caches = _invalidate_if_changed  # type: ignore[method-assign]
    return True


def is_installed() -> bool:
    """Whether this process's ``zipimporter`` invalidation is the one installed here."""
    return zipimport.zipimporter.invalidate_caches is _invalidate_if_changed


def freezing_before_each_task(main: Callable[..., Any]) -> Callable[..., Any]:
    """PySpark's worker ``main(infile, outfile)`` (one task), starting with ``gc.freeze()``."""

    def main_after_freeze(*args: Any, **kwargs: Any) -> Any:
        gc.freeze()
        return main(*args, **kwargs)

    main_after_freeze.__wrapped__ = main  # type: ignore[attr-defined]
    return main_after_freeze


if __name__ == "__main__":
    import pyspark.worker

    # installed from the module's importable copy, so that ``is_installed`` answers in the workers too
    from tsplatform import spark_worker

    spark_worker.cheap_zip_invalidation()
    # the daemon takes its worker's main from this module object (``sys.argv[1]``, pyspark.worker)
    pyspark.worker.main = spark_worker.freezing_before_each_task(pyspark.worker.main)
    # PySpark's daemon as the JVM would have started it: its argv (the worker module) is ours
    runpy.run_module("pyspark.daemon", run_name="__main__", alter_sys=True)
