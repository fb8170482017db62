"""Landing decoded records in the lake, exactly once, under the landing lock.

Readings go to ``raw_readings/<event day>/`` (:func:`land_readings`), quarantined records to
``quarantine/<ingestion day>/`` (:func:`land_quarantine`), one atomically written Parquet file per day,
skipping every (topic, partition, offset) already landed (looked up only below the offset marks,
:mod:`tsplatform.ingest.offset_marks`). :func:`lake_lock` serializes the processes that change day
partitions; :class:`WaveLanding` lands a run's readings in waves on a background thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import itertools
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

from tsplatform.ingest.offset_marks import (
    above_marks,
    landed_offsets,
    load_offset_marks,
    raise_marks,
    save_marks,
    topic_rows,
)
from tsplatform.ingest.schema import QUARANTINE_SCHEMA, RAW_READINGS_SCHEMA
from tsplatform.lake import Lake
from tsplatform.settings import Settings

MS_PER_DAY = 86_400_000
#: Day partitions checked and written in parallel by one landing.
LANDING_THREADS = 4


def _offset_codes(table: pa.Table) -> np.ndarray:
    """One int64 per row: ``partition << 40 | offset`` (offsets stay below 2^40)."""
    partitions = table["partition"].to_numpy().astype(np.int64)
    return (partitions << 40) | table["offset"].to_numpy().astype(np.int64)


def _offset_keys(table: pa.Table) -> dict[str, np.ndarray]:
    """Per topic, the :func:`_offset_codes` of its rows."""
    codes = _offset_codes(table)
    return {t: codes if rows is None else codes[rows] for t, rows in topic_rows(table).items()}


def _missing_mask(table: pa.Table, existing: list[pa.Table]) -> np.ndarray:
    """True for rows of ``table`` whose (topic, partition, offset) is in none of ``existing``."""
    seen: dict[str, list[np.ndarray]] = defaultdict(list)
    for t in existing:
        for topic, codes in _offset_keys(t).items():
            seen[topic].append(codes)
    codes = _offset_codes(table)
    mask = np.ones(table.num_rows, dtype=bool)
    for topic, rows in topic_rows(table).items():
        if topic not in seen:
            continue
        known = np.concatenate(seen[topic])
        if rows is None:
            mask = np.isin(codes, known, invert=True)
        else:
            mask[rows] = np.isin(codes[rows], known, invert=True)
    return mask


def _file_name(table: pa.Table) -> str:
    """Deterministic name of a landed file from the (topic, partition, offset) set it holds."""
    digest = hashlib.sha256()
    for topic, codes in sorted(_offset_keys(table).items()):
        digest.update(topic.encode())
        digest.update(np.sort(codes).tobytes())
    return f"part-{digest.hexdigest()[:24]}.parquet"


def _new_rows(lake: Lake, dataset: str, day: dt.date, table: pa.Table) -> pa.Table:
    """Rows of ``table`` whose (topic, partition, offset) is not yet in the day partition."""
    existing = landed_offsets(lake, dataset, day)
    if existing is None or existing.num_rows == 0:
        return table
    return table.filter(pa.array(_missing_mask(table, [existing])))


def _event_days(table: pa.Table) -> np.ndarray:
    ms = table["event_time"].cast(pa.int64()).to_numpy()
    return ms // MS_PER_DAY


def land_readings(lake: Lake, readings: pa.Table) -> tuple[dict[dt.date, int], int, int]:
    """Land readings by UTC event day. Returns (readings per touched day, landed, skipped).

    Days are independent files, so they are checked and written by a small thread pool (Parquet encoding
    and file I/O release the GIL). Only days holding a row at or below its offset mark
    (:func:`load_offset_marks`), i.e. a redelivery, read their landed offsets to skip what is already there.
    """
    readings = readings.cast(RAW_READINGS_SCHEMA)
    # one sort by (day, series, time), then zero-copy slices per day
    days = pa.array(_event_days(readings))
    ordered = readings.append_column("_day", days).sort_by(
        [("_day", "ascending"), ("series_id", "ascending"), ("event_time", "ascending")]
    )
    sorted_days = ordered["_day"].to_numpy()
    ordered = ordered.drop_columns(["_day"])
    bounds = [0, *(np.flatnonzero(np.diff(sorted_days)) + 1).tolist(), len(sorted_days)]
    spans = {  # day -> its rows in ``ordered``
        dt.date(1970, 1, 1) + dt.timedelta(days=int(sorted_days[lo])): (lo, hi)
        for lo, hi in itertools.pairwise(bounds)
        if hi > lo
    }
    marks = load_offset_marks(lake, "raw_readings")
    maybe_landed = ~above_marks(ordered, marks)  # only these rows need a look at their day's offsets
    if raise_marks(marks, ordered):
        save_marks(lake, "raw_readings", marks)  # before any data file: the marks never under-estimate

    def land_day(day: dt.date) -> int:
        lo, hi = spans[day]
        new = part = ordered.slice(lo, hi - lo)
        if maybe_landed[lo:hi].any():
            new = _new_rows(lake, "raw_readings", day, part)
        if new.num_rows:
            lake.write_file("raw_readings", day, _file_name(new), new)
        return new.num_rows

    with ThreadPoolExecutor(max_workers=LANDING_THREADS) as pool:
        landed = sum(pool.map(land_day, spans))
    touched = {day: hi - lo for day, (lo, hi) in spans.items()}
    return touched, landed, sum(touched.values()) - landed


def land_quarantine(lake: Lake, quarantine: pa.Table, day: dt.date) -> tuple[int, int]:
    """Land quarantined records under the ingestion day, skipping records already quarantined on any day.

    Only a batch with a record at or below its offset mark (:func:`load_offset_marks`), i.e. a
    redelivery, reads the offsets of the quarantine days; in steady state nothing is read.
    """
    if quarantine.num_rows == 0:
        return 0, 0
    quarantine = quarantine.cast(QUARANTINE_SCHEMA)
    total = quarantine.num_rows
    marks = load_offset_marks(lake, "quarantine")
    if not above_marks(quarantine, marks).all():  # a redelivery: look at every quarantine day
        landed = (landed_offsets(lake, "quarantine", d) for d in lake.days("quarantine"))
        seen = [t for t in landed if t is not None]
        if seen:
            quarantine = quarantine.filter(pa.array(_missing_mask(quarantine, seen)))
    if quarantine.num_rows:
        if raise_marks(marks, quarantine):
            save_marks(lake, "quarantine", marks)  # before the data file: never under-estimates
        lake.write_file("quarantine", day, _file_name(quarantine), quarantine)
    return quarantine.num_rows, total - quarantine.num_rows


@contextlib.contextmanager
def landing_lock(settings: Settings) -> Iterator[None]:
    """Exclusive lock serializing landings into one lake from processes on this machine."""
    with lake_lock(settings.lake_uri):
        yield


@contextlib.contextmanager
def lake_lock(lake_root: str, name: str = "ingest") -> Iterator[None]:
    """Exclusive ``flock`` on ``<lake_root>/_locks/<name>.lock`` (released when the holder dies).

    ``ingest`` is the landing lock: whoever changes the files of ``raw_readings``/``quarantine`` day
    partitions (landings, compaction's swap) holds it. Remote lakes get no lock (a no-op): there Dagster's
    tag concurrency limit serializes ingestion runs.
    """
    if "://" in lake_root:
        yield
        return
    if not name.isidentifier():
        raise ValueError(f"invalid lock name {name!r}")
    path = Path(lake_root) / "_locks"
    path.mkdir(parents=True, exist_ok=True)
    with (path / f"{name}.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class WaveLanding:
    """Readings landed in waves, in order, by one background thread, under the landing lock.

    The lock is taken (and orphaned staging files of killed landings removed) at the first wave; the
    caller's ``stack`` releases it after the thread has finished its last wave. Each wave is an ordinary
    :func:`land_readings` (offset-deduplicated), so a run killed between waves re-executes exactly once.
    """

    def __init__(self, settings: Settings, lake: Lake, stack: contextlib.ExitStack) -> None:
        self.settings, self.lake, self.stack = settings, lake, stack
        self.pool: ThreadPoolExecutor | None = None
        self.waves: list[Future[tuple[dict[dt.date, int], int, int]]] = []

    def _locked(self) -> ThreadPoolExecutor:
        if self.pool is None:
            self.stack.enter_context(landing_lock(self.settings))
            for dataset in ("raw_readings", "quarantine"):  # orphans of a killed landing (none active)
                self.lake.clean_staging(dataset)
            # entered after the lock, so left before it: the last wave is written while the lock is held
            self.pool = self.stack.enter_context(
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="tsplatform-landing")
            )
        return self.pool

    def readings(self, tables: list[pa.Table]) -> None:
        """Land ``tables`` (decoded readings) after the waves before them; re-raise a failed wave."""
        for wave in self.waves:
            if wave.done() and wave.exception() is not None:
                raise wave.exception()  # type: ignore[misc]
        # one contiguous table: sorting and slicing a 100-chunk table costs twice as much
        self.waves.append(
            self._locked().submit(lambda: land_readings(self.lake, pa.concat_tables(tables).combine_chunks()))
        )

    def quarantine(self, table: pa.Table, day: dt.date) -> tuple[int, int]:
        self._locked()
        return land_quarantine(self.lake, table, day)

    def results(self) -> tuple[dict[dt.date, int], int, int]:
        """(readings per touched day, landed, skipped) over every wave; waits for the last one."""
        days: dict[dt.date, int] = defaultdict(int)
        landed = skipped = 0
        for wave in self.waves:
            touched, n_landed, n_skipped = wave.result()
            for day, n in touched.items():
                days[day] += n
            landed, skipped = landed + n_landed, skipped + n_skipped
        return dict(days), landed, skipped
