"""``tsplatform <args>`` that stops in the middle of its N-th ``raw_readings`` file write and waits to be
killed: the staged file is complete, its move into the lake has not happened. A test's deterministic
mid-write kill point (instead of polling for a moment that a fast or slow machine may skip).

Usage: ``python -m tsplatform_tests.ingest.paused_ingest N MARKER ingest --once ...``; when it pauses it
writes the staged file's path to ``MARKER``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq


def pause_at_write(n: int, marker: Path) -> None:
    """Make the ``n``-th Parquet write under ``raw_readings/_staging`` block forever once written."""
    original = pq.write_table
    count = 0

    def write_table(table: Any, where: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal count
        original(table, where, *args, **kwargs)
        if isinstance(where, str) and "/raw_readings/_staging/" in where:
            count += 1
            if count == n:
                partial = marker.with_name(marker.name + ".partial")
                partial.write_text(where)
                partial.rename(marker)  # the marker appears complete
                threading.Event().wait()  # until SIGKILL

    pq.write_table = write_table


if __name__ == "__main__":
    pause_at_write(int(sys.argv[1]), Path(sys.argv[2]))
    from tsplatform.cli import main

    main(sys.argv[3:])
