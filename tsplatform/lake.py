"""The lake: Parquet datasets in Hive-style day partitions on any pyarrow filesystem.

Layout: ``<root>/<dataset>/year=YYYY/month=MM/day=DD/<file>.parquet``. The root is a local path or a
Hadoop-compatible URI (``s3://``, ``hdfs://``, ``gs://``; resolved by ``pyarrow.fs.FileSystem.from_uri``).

Writes are atomic: a file is written under ``<root>/<dataset>/_staging/`` and then moved into its
partition, so readers never see a half-written file (a local or HDFS rename is atomic; on object stores
a single-object put is). Readers skip names starting with ``_`` or ``.``. Dataset and file names are
checked against strict patterns; series keys never appear in paths.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tsplatform.errors import LakeWriteError

_DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.parquet$")
_METADATA_NAME = re.compile(r"^_[a-z][a-z0-9_]{0,63}\.json$")  # hidden from Spark/Hive readers ("_")
_PARTITION_DIR = re.compile(r"^year=(\d{4})/month=(\d{2})/day=(\d{2})$")


def day_partition(day: dt.date) -> str:
    """Relative Hive partition path of a UTC day: ``year=YYYY/month=MM/day=DD``."""
    return f"year={day.year:04d}/month={day.month:02d}/day={day.day:02d}"


def parse_day_partition(relative: str) -> dt.date | None:
    """Inverse of :func:`day_partition`; ``None`` for anything else."""
    match = _PARTITION_DIR.match(relative.strip("/"))
    if not match:
        return None
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def check_dataset_name(dataset: str) -> str:
    if not _DATASET_NAME.match(dataset):
        raise ValueError(f"invalid dataset name {dataset!r}: expected {_DATASET_NAME.pattern}")
    return dataset


def check_metadata_name(name: str) -> str:
    if not _METADATA_NAME.match(name):
        raise ValueError(f"invalid lake metadata name {name!r}: expected {_METADATA_NAME.pattern}")
    return name


def check_file_name(name: str) -> str:
    if not _FILE_NAME.match(name) or ".." in name:
        raise ValueError(f"invalid lake file name {name!r}: expected {_FILE_NAME.pattern}")
    return name


def _visible_parquet(name: str) -> bool:
    """A Parquet file readers see (not a hidden or underscore-prefixed staging file)."""
    return name.endswith(".parquet") and not name.startswith(("_", "."))


@dataclass(frozen=True)
class Lake:
    """A lake root. Cheap to construct; all methods are stateless calls on the filesystem."""

    root: str

    @cached_property
    def _fs_and_base(self) -> tuple[pafs.FileSystem, str]:
        """Resolved once per Lake (``from_uri`` may look up credentials for object stores)."""
        if "://" in self.root:
            fs, base = pafs.FileSystem.from_uri(self.root)
        else:
            fs, base = pafs.LocalFileSystem(), self.root
        return fs, base.rstrip("/")

    @property
    def fs(self) -> pafs.FileSystem:
        return self._fs_and_base[0]

    @property
    def base(self) -> str:
        return self._fs_and_base[1]

    # --- paths -------------------------------------------------------------------------------
    def dataset_path(self, dataset: str) -> str:
        return f"{self.base}/{check_dataset_name(dataset)}"

    def partition_path(self, dataset: str, day: dt.date) -> str:
        return f"{self.dataset_path(dataset)}/{day_partition(day)}"

    def uri(self, dataset: str) -> str:
        """The dataset location as a URI (for Spark / Hive ``LOCATION``)."""
        path = self.dataset_path(dataset)
        if "://" in self.root:
            scheme = self.root.split("://", 1)[0]
            return f"{scheme}://{path}"
        return f"file://{path}"

    # --- writing -----------------------------------------------------------------------------
    def write_file(self, dataset: str, day: dt.date, name: str, table: pa.Table) -> str:
        """Atomically write ``table`` as ``<partition>/<name>``, replacing a file of the same name.

        Raises :class:`LakeWriteError` (one line: what, where, the OS's reason) when the storage fails, e.g.
        a full disk; the half-written staged file is removed and nothing new is visible.
        """
        check_file_name(name)
        fs = self.fs
        final_dir = self.partition_path(dataset, day)
        final = f"{final_dir}/{name}"
        with self._writing(f"{dataset}/{day_partition(day)}/{name}") as staged:
            fs.create_dir(final_dir, recursive=True)
            tmp = self._staged(dataset, name)
            staged.append(tmp)
            pq.write_table(table, tmp, filesystem=fs, compression="zstd")
            fs.move(tmp, final)
        return final

    def write_metadata(self, dataset: str, name: str, data: bytes) -> None:
        """Atomically write a small metadata file ``<dataset>/<name>`` (``_name.json``), replacing it."""
        check_metadata_name(name)
        with self._writing(f"{dataset}/{name}") as staged:
            tmp = self._staged(dataset, name)
            staged.append(tmp)
            with self.fs.open_output_stream(tmp) as out:
                out.write(data)
            self.fs.move(tmp, f"{self.dataset_path(dataset)}/{name}")

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[list[str]]:
        """Turn a storage ``OSError`` into one :class:`LakeWriteError`; delete the staged files listed."""
        staged: list[str] = []
        try:
            yield staged
        except OSError as exc:
            for tmp in staged:
                with contextlib.suppress(OSError):  # else clean_staging removes it later
                    self.fs.delete_file(tmp)
            reason = exc.strerror or str(exc).splitlines()[0]
            raise LakeWriteError(
                f"writing {what} into the lake at {self.root} failed: {reason}",
                setting="TSPLATFORM_LAKE_ROOT",
            ) from exc

    def _staging_dir(self, dataset: str) -> str:
        return f"{self.dataset_path(dataset)}/_staging"

    def _staged(self, dataset: str, name: str) -> str:
        """A fresh path under the dataset's ``_staging`` directory for a file to be moved to ``name``."""
        staging = self._staging_dir(dataset)
        self.fs.create_dir(staging, recursive=True)
        return f"{staging}/{uuid.uuid4().hex}-{name}"

    def clean_staging(self, dataset: str) -> int:
        """Delete files left in ``_staging`` by writers that died; call only while no writer is active."""
        fs = self.fs
        staging = self._staging_dir(dataset)
        if fs.get_file_info(staging).type != pafs.FileType.Directory:
            return 0
        orphans = [
            i.path for i in fs.get_file_info(pafs.FileSelector(staging)) if i.type == pafs.FileType.File
        ]
        for path in orphans:
            fs.delete_file(path)
        return len(orphans)

    def delete_partition(self, dataset: str, day: dt.date) -> bool:
        """Delete a day partition; True when it existed."""
        fs = self.fs
        path = self.partition_path(dataset, day)
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            return False
        fs.delete_dir(path)
        return True

    # --- reading -----------------------------------------------------------------------------
    def read_metadata(self, dataset: str, name: str) -> bytes | None:
        """The bytes of a metadata file written by :meth:`write_metadata` (``None`` when absent)."""
        path = f"{self.dataset_path(dataset)}/{check_metadata_name(name)}"
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as src:
            return src.read()

    def partition_files(self, dataset: str, day: dt.date) -> list[str]:
        """Visible Parquet files of a day partition, sorted by name.

        On a local lake the directory is listed through one open handle: a compaction swaps the partition's
        directory with its compacted copy (``renameat2``), and a listing by path that straddles the swap
        (Arrow's: the names read from one directory, each then looked up by path in the other) silently
        dropped the names it no longer found, so a reader could see some of the day's files or none. Now
        a listing is of one directory, old or new; a file of the old one that is gone when it is opened
        raises FileNotFoundError, as any read racing a swap does: a clear error to retry, never part of
        the day."""
        path = self.partition_path(dataset, day)
        if isinstance(self.fs, pafs.LocalFileSystem):
            try:
                handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            except (FileNotFoundError, NotADirectoryError):
                return []
            try:
                names = [e.name for e in os.scandir(handle) if e.is_file() and _visible_parquet(e.name)]
            finally:
                os.close(handle)
            return sorted(f"{path}/{name}" for name in names)
        fs = self.fs
        if fs.get_file_info(path).type != pafs.FileType.Directory:
            return []
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File and _visible_parquet(i.base_name))

    def days(self, dataset: str) -> list[dt.date]:
        """The day partitions present for ``dataset``, ascending."""
        fs = self.fs
        root = self.dataset_path(dataset)
        if fs.get_file_info(root).type != pafs.FileType.Directory:
            return []

        def subdirs(path: str, key: str) -> list[str]:
            infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
            return [
                i.path for i in infos if i.type == pafs.FileType.Directory and i.base_name.startswith(key)
            ]

        found: list[dt.date] = []
        for year in subdirs(root, "year="):
            for month in subdirs(year, "month="):
                for day_dir in subdirs(month, "day="):
                    day = parse_day_partition(day_dir[len(root) + 1 :])
                    if day is not None:
                        found.append(day)
        return sorted(found)

    def read_partition(
        self, dataset: str, day: dt.date, columns: Iterable[str] | None = None
    ) -> pa.Table | None:
        """All rows of a day partition (``None`` when it has no file)."""
        files = self.partition_files(dataset, day)
        if not files:
            return None
        ds = pads.dataset(files, format="parquet", filesystem=self.fs)
        return ds.to_table(columns=list(columns) if columns is not None else None)

    def read_days(
        self, dataset: str, days: Iterable[dt.date], columns: Iterable[str] | None = None
    ) -> pa.Table | None:
        """Rows of several day partitions concatenated (``None`` when none has a file)."""
        cols = list(columns) if columns is not None else None
        tables = [t for d in days if (t := self.read_partition(dataset, d, cols)) is not None]
        if not tables:
            return None
        return pa.concat_tables(tables, promote_options="default")
