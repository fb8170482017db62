"""What every fault test checks after recovery: the lake equals the produced valid set, the quarantine is
complete, the catalog agrees with the lake, no partial or orphaned file is visible to Spark or Hive."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from tsplatform.catalog import Catalog
from tsplatform.errors import TsplatformError
from tsplatform.lake import Lake
from tsplatform_tests.ingest.workload import Workload, read_dataset, reading_multiset


def visible_files(root: Path) -> list[Path]:
    """Files Spark and Hive would read under ``root``: no path component starting with ``_`` or ``.``."""
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts)
    ]


def assert_no_partial_files(lake: Lake) -> int:
    """Every visible file is a complete Parquet file in a day partition; returns how many there are."""
    root = Path(lake.root)
    files = visible_files(root)
    for path in files:
        assert path.suffix == ".parquet", path
        assert path.parent.name.startswith("day="), path
        pq.read_metadata(path)  # raises on a truncated file (no footer)
    return len(files)


def assert_lake_matches(lake: Lake, workload: Workload) -> None:
    """raw_readings holds each valid message once, the quarantine each malformed one, nothing else."""
    raw = read_dataset(lake, "raw_readings")
    quarantine = read_dataset(lake, "quarantine")
    assert len(raw) == len(workload.valid_offsets)
    assert set(zip(raw["partition"], raw["offset"], strict=True)) == workload.valid_offsets
    assert reading_multiset(raw) == reading_multiset(workload.readings)
    assert len(quarantine) == len(workload.malformed_offsets)
    assert set(zip(quarantine["partition"], quarantine["offset"], strict=True)) == workload.malformed_offsets
    assert quarantine["reason"].str.len().gt(0).all()
    assert_no_partial_files(lake)


def assert_catalog_agrees(catalog: Catalog, lake: Lake) -> None:
    """Per day partition the catalog's row counts equal the lake's, for readings and quarantine."""
    for dataset in ("raw_readings", "quarantine"):
        frame = read_dataset(lake, dataset)
        docs = {d["_id"].split("|")[1]: d["rows"] for d in catalog.partitions(dataset)}
        if dataset == "raw_readings":
            lake_rows = frame.groupby(pd.to_datetime(frame["event_time"], utc=True).dt.date).size()
            assert docs == {day.isoformat(): int(n) for day, n in lake_rows.items()}
        else:
            assert sum(docs.values()) == len(frame)


def assert_clear_error(exc: BaseException) -> None:
    """A failure is one project error with a one-line message naming its cause (not a stack of noise)."""
    assert isinstance(exc, TsplatformError), f"{type(exc).__name__}: {exc}"
    text = exc.one_line() if hasattr(exc, "one_line") else str(exc)
    assert text and "\n" not in text, text
