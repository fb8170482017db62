"""Where the benchmarks find the service jars (Kafka, MongoDB-wire) that ``make jars`` resolves."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def jars_dir() -> str:
    """``TSPLATFORM_JARS_DIR`` when set, else the checkout's state dir (``.tsplatform/jars``, where the
    Makefile's setup puts them), as an absolute path."""
    return os.environ.get("TSPLATFORM_JARS_DIR") or str((REPO / ".tsplatform" / "jars").resolve())
