"""Which offsets a dataset has landed, per topic-partition.

``_offset_marks.json`` (:data:`OFFSET_MARKS`) holds an upper bound of the landed offsets, raised before
the data it covers is written (:func:`raise_marks`, :func:`save_marks`), so that only rows at or below
their mark (a redelivery, :func:`above_marks`) need a look at the landed offsets of a day partition
(:func:`landed_offsets`), from which the marks are also rebuilt (:func:`load_offset_marks`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tsplatform.ingest.schema import PROVENANCE_COLUMNS
from tsplatform.lake import Lake

log = logging.getLogger(__name__)

OFFSET_MARKS = "_offset_marks.json"


def topic_rows(table: pa.Table) -> dict[str, np.ndarray | None]:
    """Row mask per topic of ``table`` (``None`` = every row: the common single-topic case)."""
    topics = pc.unique(table["topic"]).to_pylist()
    if len(topics) == 1:
        return {topics[0]: None}
    column = table["topic"]
    return {t: pc.equal(column, t).to_numpy(zero_copy_only=False) for t in topics}


def landed_offsets(lake: Lake, dataset: str, day: dt.date) -> pa.Table | None:
    """The (topic, partition, offset) columns of a landed day partition (``None`` when it has no file)."""
    return lake.read_partition(dataset, day, columns=list(PROVENANCE_COLUMNS))


def load_offset_marks(lake: Lake, dataset: str) -> dict[str, dict[int, int]]:
    """Per topic and partition, an upper bound of the offsets landed in ``dataset``.

    A landing raises the marks before it writes the data they cover, so a mark can over-estimate (a
    landing that died after raising it) but never under-estimate: a row above its mark is surely not
    landed yet and needs no lookup, and a topic or partition without a mark has nothing landed. When the
    file is absent (a lake landed before marks existed) or unreadable, the marks are rebuilt once by
    reading the offsets of every day partition.
    """
    raw = lake.read_metadata(dataset, OFFSET_MARKS)
    if raw is not None:
        try:
            data = json.loads(raw)
            return {str(t): {int(p): int(o) for p, o in parts.items()} for t, parts in data.items()}
        except (ValueError, TypeError, AttributeError):
            log.warning("unreadable %s in %s: rebuilding it from the landed offsets", OFFSET_MARKS, dataset)
    marks: dict[str, dict[int, int]] = {}
    for day in lake.days(dataset):
        landed = landed_offsets(lake, dataset, day)
        if landed is not None:
            raise_marks(marks, landed)
    save_marks(lake, dataset, marks)
    return marks


def raise_marks(marks: dict[str, dict[int, int]], table: pa.Table) -> bool:
    """Raise ``marks`` to cover every row of ``table``; True when one changed."""
    top = (
        table.select(list(PROVENANCE_COLUMNS)).group_by(["topic", "partition"]).aggregate([("offset", "max")])
    )
    changed = False
    columns = (top[c].to_pylist() for c in ("topic", "partition", "offset_max"))
    for topic, partition, offset in zip(*columns, strict=True):
        parts = marks.setdefault(topic, {})
        if offset > parts.get(partition, -1):
            parts[partition] = offset
            changed = True
    return changed


def save_marks(lake: Lake, dataset: str, marks: dict[str, dict[int, int]]) -> None:
    data = {t: {str(p): o for p, o in sorted(parts.items())} for t, parts in sorted(marks.items())}
    lake.write_metadata(dataset, OFFSET_MARKS, json.dumps(data).encode())


def above_marks(table: pa.Table, marks: dict[str, dict[int, int]]) -> np.ndarray:
    """True for rows whose offset is above the mark of their (topic, partition): surely not landed."""
    above = np.ones(table.num_rows, dtype=bool)
    partitions = table["partition"].to_numpy()
    offsets = table["offset"].to_numpy()
    for topic, rows in topic_rows(table).items():
        parts = marks.get(topic)
        if not parts:
            continue
        where = slice(None) if rows is None else rows
        limit = np.full(offsets[where].shape, -1, dtype=np.int64)
        for partition, mark in parts.items():
            limit[partitions[where] == partition] = mark
        above[where] = offsets[where] > limit
    return above
