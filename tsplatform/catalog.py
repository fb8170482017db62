"""The metadata catalog in MongoDB: one document per series, per series-day and per dataset partition.

Collections (database ``TSPLATFORM_MONGO_DB``):

* ``series`` — ``_id`` = ``series_id``; identity (position, type_name), ss_id, unit, sensor range
  (rstart, rend) and alert levels (rlev1..8), ``schema_id``, ``first_event_time``, ``last_event_time``,
  ``rows`` (sum over ``series_days``), ``days``, ``updated_at``; later stages add their own fields
  (latest period estimate, quality rates, chosen methods, champion model).
* ``series_days`` — ``_id`` = ``<series_id>|<dataset>|<YYYY-MM-DD>``; rows, first/last event time of that
  series in that day partition.
* ``partitions`` — ``_id`` = ``<dataset>|<YYYY-MM-DD>``; rows, series, files, a checksum of the partition's
  content and the Kafka offset ranges (per topic-partition min/max offset) it holds.

Every write is an upsert of figures recomputed from the lake, so re-running a sync is idempotent. Calls
retry with exponential backoff while MongoDB is unreachable and then raise :class:`CatalogUnavailable`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pymongo import ASCENDING, MongoClient, UpdateOne
from pymongo.database import Database
from pymongo.errors import AutoReconnect, ConnectionFailure, OperationFailure, ServerSelectionTimeoutError

from tsplatform.errors import ServiceUnavailable
from tsplatform.lake import Lake
from tsplatform.services.health import redact_uri

log = logging.getLogger(__name__)
T = TypeVar("T")


class CatalogUnavailable(ServiceUnavailable):
    """MongoDB could not be reached after the retries."""


_RETRYABLE = (AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError)
#: MongoDB error codes of a refused login or a missing privilege (AuthenticationFailed, Unauthorized).
_AUTH_CODES = frozenset({18, 13})
_ATTRIBUTES = ("position", "type_name", "ss_id", "unit", "rstart", "rend", *[f"rlev{i}" for i in range(1, 9)])


def _day_key(day: dt.date) -> str:
    return day.isoformat()


def _py(value: Any) -> Any:
    """numpy / pandas scalars -> BSON-friendly Python values (NaN/NA -> None)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class Catalog:
    """Typed access to the catalog collections. ``retries`` x exponential backoff from ``backoff_s``."""

    def __init__(
        self,
        uri: str,
        db_name: str,
        *,
        timeout_ms: int = 5000,
        retries: int = 5,
        backoff_s: float = 0.5,
    ) -> None:
        self.uri = uri
        self.db_name = db_name
        self.retries = retries
        self.backoff_s = backoff_s
        self._client: MongoClient = MongoClient(
            uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True
        )
        self._indexes_ready = False

    @property
    def db(self) -> Database:
        return self._client[self.db_name]

    def close(self) -> None:
        self._client.close()

    # --- plumbing ----------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, retried while MongoDB is unreachable; errors name the URI without its password."""
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except OperationFailure as exc:
                if exc.code in _AUTH_CODES or "saslStart" in str(exc):
                    why = (exc.details or {}).get("errmsg") or type(exc).__name__
                    raise CatalogUnavailable(
                        f"MongoDB at {redact_uri(self.uri)} refused the credentials during {what}: {why}",
                        setting="TSPLATFORM_MONGO_URI",
                    ) from exc
                raise
            except _RETRYABLE as exc:
                if attempt == self.retries:
                    raise CatalogUnavailable(
                        f"MongoDB at {redact_uri(self.uri)} unreachable during {what} after "
                        f"{self.retries + 1} attempts: {type(exc).__name__}",
                        setting="TSPLATFORM_MONGO_URI",
                    ) from exc
                log.warning("catalog %s failed (%s); retrying in %.1fs", what, type(exc).__name__, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def ensure_indexes(self) -> None:
        """Create the catalog's indexes (idempotent; done on first use)."""
        if self._indexes_ready:
            return

        def create() -> None:
            self.db.series.create_index([("position", ASCENDING), ("type_name", ASCENDING)], unique=True)
            self.db.series_days.create_index([("series_id", ASCENDING), ("day", ASCENDING)])
            self.db.series_days.create_index([("dataset", ASCENDING), ("day", ASCENDING)])
            self.db.partitions.create_index([("dataset", ASCENDING), ("day", ASCENDING)], unique=True)

        self._call("create_index", create)
        self._indexes_ready = True

    # --- sync from the lake ------------------------------------------------------------------
    def sync_partition(self, lake: Lake, dataset: str, day: dt.date) -> dict[str, Any]:
        """Recompute the catalog documents of one day partition from the lake; returns the partition doc."""
        self.ensure_indexes()
        files = lake.partition_files(dataset, day)
        table = lake.read_partition(dataset, day)
        if table is None or table.num_rows == 0:
            self.forget_partition(dataset, day)
            return {"_id": f"{dataset}|{_day_key(day)}", "rows": 0}
        now = dt.datetime.now(dt.UTC)
        part_doc = {
            "dataset": dataset,
            "day": _day_key(day),
            "rows": table.num_rows,
            "files": len(files),
            "checksum": partition_checksum(table),
            "offset_ranges": offset_ranges(table),
            "updated_at": now,
        }
        if "series_id" in table.column_names:
            part_doc["series"] = len(pc.unique(table["series_id"]))
        self._call(
            "upsert partition",
            lambda: self.db.partitions.update_one(
                {"_id": f"{dataset}|{_day_key(day)}"}, {"$set": part_doc}, upsert=True
            ),
        )
        if "series_id" in table.column_names and "event_time" in table.column_names:
            self._sync_series(table, dataset, day, now)
        return {"_id": f"{dataset}|{_day_key(day)}", **part_doc}

    def _sync_series(self, table: pa.Table, dataset: str, day: dt.date, now: dt.datetime) -> None:
        cols = [c for c in ("series_id", "event_time", "schema_id", *_ATTRIBUTES) if c in table.column_names]
        frame = table.select(cols).to_pandas()
        grouped = frame.groupby("series_id", sort=True)
        stats = grouped["event_time"].agg(["count", "min", "max"])
        latest = grouped.tail(1).set_index("series_id")  # attributes of each series' last row
        day_ops = []
        series_ops = []
        for sid, row in stats.iterrows():
            day_ops.append(
                UpdateOne(
                    {"_id": f"{sid}|{dataset}|{_day_key(day)}"},
                    {
                        "$set": {
                            "series_id": sid,
                            "dataset": dataset,
                            "day": _day_key(day),
                            "rows": int(row["count"]),
                            "first_event_time": _py(row["min"]),
                            "last_event_time": _py(row["max"]),
                        }
                    },
                    upsert=True,
                )
            )
            if dataset == "raw_readings":
                attrs = {
                    c: _py(latest.at[sid, c]) for c in (*_ATTRIBUTES, "schema_id") if c in latest.columns
                }
                series_ops.append(
                    UpdateOne(
                        {"_id": sid},
                        {
                            "$set": {**attrs, "updated_at": now},
                            "$min": {"first_event_time": _py(row["min"])},
                            "$max": {"last_event_time": _py(row["max"])},
                        },
                        upsert=True,
                    )
                )
        if day_ops:
            self._call("upsert series_days", lambda: self.db.series_days.bulk_write(day_ops, ordered=False))
        if series_ops:
            self._call("upsert series", lambda: self.db.series.bulk_write(series_ops, ordered=False))
            self.refresh_series_totals(list(stats.index))

    def refresh_series_totals(self, series_ids: Iterable[str]) -> None:
        """Set ``rows`` and ``days`` of each series from its ``raw_readings`` series-day documents."""
        ids = list(series_ids)
        if not ids:
            return

        def run() -> None:
            totals = {
                d["_id"]: d
                for d in self.db.series_days.aggregate(
                    [
                        {"$match": {"series_id": {"$in": ids}, "dataset": "raw_readings"}},
                        {"$group": {"_id": "$series_id", "rows": {"$sum": "$rows"}, "days": {"$sum": 1}}},
                    ]
                )
            }
            ops = [
                UpdateOne(
                    {"_id": sid},
                    {
                        "$set": {
                            "rows": int(totals.get(sid, {}).get("rows", 0)),
                            "days": int(totals.get(sid, {}).get("days", 0)),
                        }
                    },
                )
                for sid in ids
            ]
            self.db.series.bulk_write(ops, ordered=False)

        self._call("refresh series totals", run)

    def forget_partition(self, dataset: str, day: dt.date) -> None:
        """Remove a partition's documents (retention, or an emptied partition) and refresh series totals."""
        key = _day_key(day)

        def run() -> list[str]:
            affected = self.db.series_days.distinct("series_id", {"dataset": dataset, "day": key})
            self.db.series_days.delete_many({"dataset": dataset, "day": key})
            self.db.partitions.delete_one({"_id": f"{dataset}|{key}"})
            return affected

        affected = self._call("forget partition", run)
        if dataset == "raw_readings":
            self.refresh_series_totals(affected)

    # --- reads -------------------------------------------------------------------------------
    def series(self, series_id: str) -> dict[str, Any] | None:
        return self._call("find series", lambda: self.db.series.find_one({"_id": series_id}))

    def all_series(self) -> list[dict[str, Any]]:
        return self._call("list series", lambda: list(self.db.series.find({}).sort("_id", ASCENDING)))

    def partition(self, dataset: str, day: dt.date) -> dict[str, Any] | None:
        return self._call(
            "find partition", lambda: self.db.partitions.find_one({"_id": f"{dataset}|{_day_key(day)}"})
        )

    def partitions(self, dataset: str) -> list[dict[str, Any]]:
        return self._call(
            "list partitions",
            lambda: list(self.db.partitions.find({"dataset": dataset}).sort("day", ASCENDING)),
        )

    def update_series(self, series_id: str, fields: dict[str, Any]) -> None:
        """``$set`` extra fields on a series document (later stages: period, methods, champion...)."""
        self._call(
            "update series",
            lambda: self.db.series.update_one({"_id": series_id}, {"$set": fields}, upsert=True),
        )

    def update_series_many(self, docs: list[dict[str, Any]]) -> None:
        """``$set`` the fields of each ``{"_id": series_id, ...}`` document on its series (upsert)."""
        ops = [
            UpdateOne(
                {"_id": d["_id"]}, {"$set": {k: _py(v) for k, v in d.items() if k != "_id"}}, upsert=True
            )
            for d in docs
        ]
        if ops:
            self._call("update series", lambda: self.db.series.bulk_write(ops, ordered=False))

    def series_fields(self, fields: list[str], ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """``series_id -> {field: value}`` of every series document (of ``ids`` if given) that has any of
        ``fields``."""
        docs = self._call("read series fields", lambda: list(self._find_series_fields(fields, ids)))
        return {d.pop("_id"): d for d in docs}

    def iter_series_fields(self, fields: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(series_id, {field: value})`` of every series document that has any of ``fields``, streamed
        from the cursor (for reducing them without holding them all)."""
        for doc in self._call("read series fields", lambda: self._find_series_fields(fields)):
            yield doc.pop("_id"), doc

    def _find_series_fields(
        self, fields: list[str], ids: Iterable[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The series documents (of ``ids`` if given) with any of ``fields``, projected to them. The "has any
        of the fields" filter runs here, not as an ``$or`` of ``$exists`` on the server: the local server
        (mongo-java-server) then scans the collection for each query, 8x slower for 1,000 ids by ``_id``
        (BENCHMARKS.md "Asset graph on Spark", session 13); a real MongoDB scans for ``$exists`` too."""
        query: dict[str, Any] = {} if ids is None else {"_id": {"$in": list(ids)}}
        for doc in self.db.series.find(query, dict.fromkeys(fields, 1)):
            if len(doc) > 1:  # more than _id: it has one of the fields
                yield doc


def partition_checksum(table: pa.Table) -> str:
    """Order-independent SHA-256 of a partition's readings (provenance and values), 16 hex digits."""
    cols = [
        c
        for c in ("topic", "partition", "offset", "series_id", "event_time", "value")
        if c in table.column_names
    ]
    frame = table.select(cols).to_pandas()
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    hashed.sort()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def offset_ranges(table: pa.Table) -> list[dict[str, Any]]:
    """Per (topic, partition): min and max offset and row count present in ``table``."""
    if not {"topic", "partition", "offset"} <= set(table.column_names):
        return []
    grouped = table.group_by(["topic", "partition"]).aggregate(
        [("offset", "min"), ("offset", "max"), ("offset", "count")]
    )
    return [
        {
            "topic": r["topic"],
            "partition": int(r["partition"]),
            "min_offset": int(r["offset_min"]),
            "max_offset": int(r["offset_max"]),
            "rows": int(r["offset_count"]),
        }
        for r in grouped.sort_by([("topic", "ascending"), ("partition", "ascending")]).to_pylist()
    ]
