"""Compaction of a closed day's raw files: thousands of small landed files become a few large ones.

A stream landed every ~30 s leaves ~2,880 files in a day partition of ``raw_readings`` (one per run and
wave); every downstream read (Spark, the catalog, the exactly-once lookup of a redelivery) pays per file.
:func:`compact_day` rewrites such a partition as files of at most ``max_rows_per_file`` rows:

1. under the compaction lock (one compactor per lake; leftovers of a killed one are removed first), the
   partition's visible files are streamed into ``<dataset>/_compaction/<day>-<uuid>/`` (a directory
   every reader skips: its name starts with ``_``), in batches of ``ROW_GROUP_ROWS`` rows, with the same
   schema and every column (provenance included) — nothing is dropped, reordered within a file or
   de-duplicated; the row count written is checked against the row count read;
2. under the landing lock (:func:`tsplatform.ingest.landing.lake_lock`, the one every landing holds),
   the partition is listed again: files landed meanwhile (late data) are hard-linked into the new
   directory as they are, a file that vanished aborts the compaction with the partition untouched;
3. the new directory and the partition are swapped with one ``renameat2(RENAME_EXCHANGE)`` — the only
   step readers can observe, and atomic: a reader lists either every old file or the compacted ones,
   never both and never neither;
4. the old files (now in the ``_compaction`` directory) are deleted.

A crash at any point leaves the partition readable and exactly once: before step 3 it is untouched,
after it it is compacted, and what is left under ``_compaction`` is garbage either way (removed by the
next compaction). The exactly-once lookups of later redeliveries read the (topic, partition, offset)
columns of whatever files are visible, so they work on compacted files unchanged; the offset marks
(``_offset_marks.json``) cover offsets, not files, and are not touched.

Limits: local lakes on Linux only (the atomic directory exchange; ext4, xfs, btrfs and tmpfs support it).
A reader that listed the old files but has not opened them yet when the swap happens gets a
file-not-found error and must list again (Spark: re-run the query); files already open stay readable.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from tsplatform.errors import TsplatformError
from tsplatform.ingest.landing import lake_lock
from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
from tsplatform.lake import Lake, day_partition

#: Rows per compacted file (a day of 10,000 series x 144 samples fits in two) and per row group.
MAX_ROWS_PER_FILE = 1_000_000
ROW_GROUP_ROWS = 131_072
#: Compacted files are named ``compacted-<digest of the inputs>-<n>.parquet``.
COMPACTED_PREFIX = "compacted-"
STAGING_DIR = "_compaction"

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class CompactionError(TsplatformError):
    """A partition could not be compacted; it is left exactly as it was."""


@dataclass
class CompactionResult:
    """What :func:`compact_day` did to one day partition."""

    day: dt.date
    compacted: bool
    reason: str = ""  # why nothing was done, when ``compacted`` is False
    files_before: int = 0
    files_after: int = 0
    rows: int = 0  # rows rewritten into the compacted files
    late_files: list[str] = field(default_factory=list)  # landed during the compaction, kept as they are

    def as_metadata(self) -> dict[str, object]:
        return {
            "day": self.day.isoformat(),
            "compacted": self.compacted,
            "reason": self.reason,
            "files_before": self.files_before,
            "files_after": self.files_after,
            "rows": self.rows,
            "late_files": len(self.late_files),
        }


def exchange_directories(a: str, b: str) -> None:
    """Atomically swap two directories of one filesystem (Linux ``renameat2(RENAME_EXCHANGE)``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        renameat2 = libc.renameat2
    except AttributeError as exc:  # glibc < 2.28, or not Linux
        raise CompactionError("atomic directory exchange needs Linux with glibc >= 2.28") from exc
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise CompactionError(f"the filesystem of {b} cannot exchange directories atomically")
        raise OSError(code, os.strerror(code), b)


def _fsync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def needs_compaction(lake: Lake, day: dt.date, *, min_files: int = 2, dataset: str = "raw_readings") -> bool:
    """True when the partition has at least ``min_files`` files and one of them is not compacted."""
    names = [os.path.basename(f) for f in lake.partition_files(dataset, day)]
    return len(names) >= min_files and any(not n.startswith(COMPACTED_PREFIX) for n in names)


def closed_days(
    lake: Lake, today: dt.date, *, after_days: int = 1, dataset: str = "raw_readings"
) -> list[dt.date]:
    """Days of ``dataset`` that closed at least ``after_days`` days before ``today`` (UTC): day D is
    eligible once ``D + 1 + after_days <= today``, i.e. late data had ``after_days`` days to arrive."""
    last = today - dt.timedelta(days=after_days + 1)
    return [d for d in lake.days(dataset) if d <= last]


def clean_compaction_staging(lake: Lake, dataset: str = "raw_readings") -> int:
    """Remove directories left under ``_compaction`` by compactions that died; call under the
    compaction lock. Each is garbage whichever side of the swap the compaction died on."""
    root = Path(lake.dataset_path(dataset)) / STAGING_DIR
    if not root.is_dir():
        return 0
    leftovers = list(root.iterdir())
    for path in leftovers:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return len(leftovers)


def _batches(files: list[str], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The rows of ``files`` in file order, re-batched to ``ROW_GROUP_ROWS`` rows (landed files hold a
    few hundred rows each: written as they come they would make tiny row groups)."""
    dataset = pads.dataset(files, format="parquet", schema=schema)
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in dataset.to_batches(batch_size=ROW_GROUP_ROWS):
        pending.append(batch)
        rows += batch.num_rows
        if rows >= ROW_GROUP_ROWS:
            table = pa.Table.from_batches(pending, schema=schema).combine_chunks()
            for start in range(0, table.num_rows - table.num_rows % ROW_GROUP_ROWS, ROW_GROUP_ROWS):
                yield from table.slice(start, ROW_GROUP_ROWS).to_batches()
            rest = table.slice(table.num_rows - table.num_rows % ROW_GROUP_ROWS)
            pending, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield from pa.Table.from_batches(pending, schema=schema).combine_chunks().to_batches()


def write_compacted(
    files: list[str], target: Path, *, schema: pa.Schema, max_rows_per_file: int
) -> tuple[list[str], int]:
    """Stream ``files`` into new Parquet files under ``target``; returns (names written, rows read).

    Raises :class:`CompactionError` unless the files written hold exactly the rows read.
    """
    digest = hashlib.sha256("\n".join(os.path.basename(f) for f in files).encode()).hexdigest()[:16]
    names: list[str] = []
    writer: pq.ParquetWriter | None = None
    in_file = total = 0
    try:
        for batch in _batches(files, schema):
            while batch.num_rows:
                if writer is None or in_file == max_rows_per_file:
                    if writer is not None:
                        writer.close()
                    names.append(f"{COMPACTED_PREFIX}{digest}-{len(names):04d}.parquet")
                    writer = pq.ParquetWriter(target / names[-1], schema, compression="zstd")
                    in_file = 0
                take = min(batch.num_rows, max_rows_per_file - in_file)
                writer.write_batch(batch.slice(0, take), row_group_size=ROW_GROUP_ROWS)
                batch = batch.slice(take)
                in_file += take
                total += take
    finally:
        if writer is not None:
            writer.close()
    written = sum(pq.ParquetFile(target / name).metadata.num_rows for name in names)
    if written != total:
        raise CompactionError(f"compaction wrote {written} rows of the {total} it read")
    for name in names:
        _fsync(target / name)
    _fsync(target)
    return names, total


def compact_day(
    lake: Lake,
    day: dt.date,
    *,
    dataset: str = "raw_readings",
    schema: pa.Schema = RAW_READINGS_SCHEMA,
    min_files: int = 2,
    max_rows_per_file: int = MAX_ROWS_PER_FILE,
) -> CompactionResult:
    """Compact one day partition of ``dataset`` atomically (see the module docstring).

    Nothing is done (``compacted=False`` with the reason) for a partition with fewer than ``min_files``
    files or whose files are all compacted already. Raises :class:`CompactionError` for a remote lake,
    a filesystem without atomic directory exchange, or a partition that changed in a way compaction
    cannot follow (a file deleted meanwhile); the partition is then untouched.
    """
    if "://" in lake.root:
        raise CompactionError(f"compaction supports local lakes only, not {lake.root}")
    if max_rows_per_file < 1:
        raise ValueError("max_rows_per_file must be >= 1")
    result = CompactionResult(day=day, compacted=False)
    with lake_lock(lake.root, "compaction"):
        clean_compaction_staging(lake, dataset)
        files = lake.partition_files(dataset, day)
        result.files_before = result.files_after = len(files)
        if not needs_compaction(lake, day, min_files=min_files, dataset=dataset):
            result.reason = (
                f"{len(files)} file(s), fewer than {min_files}"
                if len(files) < min_files
                else "already compacted"
            )
            return result
        partition = Path(lake.partition_path(dataset, day))
        staging = Path(lake.dataset_path(dataset)) / STAGING_DIR / f"{day.isoformat()}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            try:
                names, rows = write_compacted(
                    files, staging, schema=schema, max_rows_per_file=max_rows_per_file
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
                raise CompactionError(
                    f"{dataset} {day_partition(day)}: cannot rewrite its files: {exc}"
                ) from exc
            result.rows = rows
            with lake_lock(lake.root, "ingest"):  # no landing between the listing and the swap
                _commit(partition, staging, files, result)
            result.files_after = len(names) + len(result.late_files)
            result.compacted = True
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # the new files before the swap, the old after
    return result


def _commit(partition: Path, staging: Path, compacted_from: list[str], result: CompactionResult) -> None:
    """Carry over files landed since the listing, then swap ``staging`` and ``partition``."""
    now = {p.name: p for p in partition.iterdir()}
    inputs = {os.path.basename(f) for f in compacted_from}
    vanished = inputs - now.keys()
    if vanished:
        raise CompactionError(
            f"{partition}: {len(vanished)} file(s) disappeared during compaction (e.g. {min(vanished)})"
        )
    for name, path in sorted(now.items()):
        if name in inputs:
            continue
        if not path.is_file() or path.is_symlink():
            raise CompactionError(f"{partition}: unexpected entry {name!r}; left untouched")
        os.link(path, staging / name)  # landed meanwhile (or a hidden file): kept as it is
        if name.endswith(".parquet") and not name.startswith(("_", ".")):
            result.late_files.append(name)
    _fsync(staging)
    exchange_directories(str(staging), str(partition))
    _fsync(partition.parent)
