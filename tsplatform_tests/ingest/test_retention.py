"""Retention: planning over a real lake dir, dry run, real run, logging, failures and resumption."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tsplatform.catalog import Catalog
from tsplatform.errors import ConfigError
from tsplatform.ids import series_id
from tsplatform.ingest.retention import (
    RetentionItem,
    apply_retention,
    expiry_cutoff,
    merge_plans,
    plan_retention,
    unfinished_items,
)
from tsplatform.ingest.schema import UTC_MS
from tsplatform.lake import Lake
from tsplatform.settings import get_settings

TODAY = dt.date(2026, 3, 10)
RETENTION = {"raw_readings": 5, "quarantine": 2}
# raw_readings: kept from TODAY-5 = 03-05 on; quarantine: from 03-08 on; validated_readings: not listed.
LAKE_DAYS = {
    "raw_readings": [
        dt.date(2026, 2, 27),
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 4),
        dt.date(2026, 3, 5),
        dt.date(2026, 3, 10),
    ],
    "quarantine": [dt.date(2026, 3, 6), dt.date(2026, 3, 7), dt.date(2026, 3, 8), dt.date(2026, 3, 9)],
    "validated_readings": [dt.date(2025, 1, 1), dt.date(2026, 3, 1)],
}
EXPIRED = {
    ("raw_readings", dt.date(2026, 2, 27)),
    ("raw_readings", dt.date(2026, 3, 1)),
    ("raw_readings", dt.date(2026, 3, 4)),
    ("quarantine", dt.date(2026, 3, 6)),
    ("quarantine", dt.date(2026, 3, 7)),
}


SERIES = [("광 주 A", "C02"), ("room 1", "temp")]


def _make_lake(root: Path) -> Lake:
    """Every partition holds 3 readings: two of the first series, one of the second."""
    lake = Lake(str(root))
    for dataset, days in LAKE_DAYS.items():
        for day in days:
            keys = [SERIES[0], SERIES[0], SERIES[1]]
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            table = pa.table(
                {
                    "position": [k[0] for k in keys],
                    "type_name": [k[1] for k in keys],
                    "series_id": [series_id(*k) for k in keys],
                    "event_time": pa.array([start + dt.timedelta(hours=h) for h in (1, 2, 3)], UTC_MS),
                    "value": [1.0, 2.0, 3.0],
                }
            )
            lake.write_file(dataset, day, "part-0.parquet", table)
    return lake


def _present(lake: Lake) -> set[tuple[str, dt.date]]:
    return {(ds, d) for ds in LAKE_DAYS for d in lake.days(ds)}


def _log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class RecordingMetastore:
    """Stand-in for the Hive wrapper (a pure-orchestration check): records calls, fails on chosen days."""

    def __init__(self, fail_on: set[tuple[str, dt.date]] | None = None, calls: list | None = None) -> None:
        self.fail_on = fail_on or set()
        self.calls = calls if calls is not None else []

    def drop_partition(self, dataset: str, day: dt.date) -> None:
        self.calls.append(("metastore", dataset, day))
        if (dataset, day) in self.fail_on:
            raise RuntimeError(f"metastore down for {dataset} {day}")


class RecordingCatalog:
    def __init__(
        self, lake: Lake, fail_on: set[tuple[str, dt.date]] | None = None, calls: list | None = None
    ) -> None:
        self.lake = lake
        self.fail_on = fail_on or set()
        self.calls = calls if calls is not None else []

    def forget_partition(self, dataset: str, day: dt.date) -> None:
        # Observe the order: by the time the catalog is told, the lake partition must be gone.
        self.calls.append(("catalog", dataset, day, day in self.lake.days(dataset)))
        if (dataset, day) in self.fail_on:
            raise ConnectionError("catalog unreachable")


def test_expiry_rule_is_strictly_before_today_minus_days() -> None:
    assert expiry_cutoff(dt.date(2026, 11, 26), 400) == dt.date(2025, 10, 22)
    assert expiry_cutoff(TODAY, 0) == TODAY


def test_plan_lists_exactly_the_expired_partitions_of_listed_datasets(tmp_path: Path) -> None:
    lake = _make_lake(tmp_path / "lake")
    plan = plan_retention(lake, RETENTION, TODAY)
    assert {(i.dataset, i.day) for i in plan} == EXPIRED
    assert plan == sorted(plan)
    for item in plan:
        assert item.path == lake.partition_path(item.dataset, item.day)
        assert Path(item.path).is_dir()
    assert plan_retention(lake, {}, TODAY) == []
    assert plan_retention(lake, {"forecasts": 1}, TODAY) == []  # dataset with no partitions


@pytest.mark.parametrize(
    ("retention", "cause"),
    [({"raw_readings": -1}, "must be an integer >= 0"), ({"../etc": 3}, "invalid dataset name")],
)
def test_plan_rejects_bad_settings(tmp_path: Path, retention: dict, cause: str) -> None:
    with pytest.raises(ConfigError, match=cause) as info:
        plan_retention(Lake(str(tmp_path)), retention, TODAY)
    assert info.value.setting == "TSPLATFORM_RETENTION_DAYS"


def test_dry_run_removes_nothing_and_reports_and_logs_the_plan(tmp_path: Path) -> None:
    lake = _make_lake(tmp_path / "lake")
    before = _present(lake)
    metastore, catalog_calls = RecordingMetastore(), []
    log_path = tmp_path / "logs" / "retention.jsonl"
    report = apply_retention(
        plan_retention(lake, RETENTION, TODAY),
        lake=lake,
        metastore=metastore,
        catalog=RecordingCatalog(lake, calls=catalog_calls),
        dry_run=True,
        log_path=log_path,
    )
    assert _present(lake) == before
    assert metastore.calls == [] and catalog_calls == []
    assert report.dry_run
    assert {(i.dataset, i.day) for i in report.removed} == EXPIRED
    assert report.failed == []
    lines = _log_lines(log_path)
    assert {line["status"] for line in lines} == {"would_remove"}
    assert all(line["dry_run"] for line in lines)
    assert {(line["dataset"], dt.date.fromisoformat(line["day"])) for line in lines} == EXPIRED
    assert unfinished_items(log_path, lake) == []  # dry-run lines never count as unfinished work


def test_real_run_removes_exactly_the_expired_partitions_in_order_and_logs_them(tmp_path: Path) -> None:
    lake = _make_lake(tmp_path / "lake")
    before = _present(lake)
    calls: list = []
    log_path = tmp_path / "logs" / "retention.jsonl"
    report = apply_retention(
        plan_retention(lake, RETENTION, TODAY),
        lake=lake,
        metastore=RecordingMetastore(calls=calls),
        catalog=RecordingCatalog(lake, calls=calls),
        dry_run=False,
        log_path=log_path,
    )
    assert _present(lake) == before - EXPIRED
    for dataset, day in before - EXPIRED:  # kept partitions keep their rows
        assert lake.read_partition(dataset, day).num_rows == 3
    assert {(i.dataset, i.day) for i in report.removed} == EXPIRED
    assert all(o.done == ("metastore", "lake", "catalog") and o.lake_existed for o in report.outcomes)
    # metastore before lake before catalog, per partition; the catalog is told after the files are gone
    for dataset, day in EXPIRED:
        mine = [c for c in calls if c[1:3] == (dataset, day)]
        assert [c[0] for c in mine] == ["metastore", "catalog"]
        assert mine[1][3] is False
    lines = _log_lines(log_path)
    assert not any(line["dry_run"] for line in lines)
    by_partition: dict = {}
    for line in lines:
        by_partition.setdefault((line["dataset"], dt.date.fromisoformat(line["day"])), []).append(
            (line["step"], line["status"])
        )
    assert set(by_partition) == EXPIRED
    for steps in by_partition.values():
        assert steps == [
            ("metastore", "removed"),
            ("lake", "removed"),
            ("catalog", "removed"),
            ("done", "removed"),
        ]
    # idempotent: a second run plans nothing
    assert plan_retention(lake, RETENTION, TODAY) == []


def test_a_failing_partition_is_reported_and_the_rest_continue(tmp_path: Path) -> None:
    lake = _make_lake(tmp_path / "lake")
    bad = ("raw_readings", dt.date(2026, 3, 1))
    log_path = tmp_path / "retention.jsonl"
    report = apply_retention(
        plan_retention(lake, RETENTION, TODAY),
        lake=lake,
        metastore=RecordingMetastore(fail_on={bad}),
        dry_run=False,
        log_path=log_path,
    )
    assert [(o.item.dataset, o.item.day) for o in report.failed] == [bad]
    failed = report.failed[0]
    assert failed.done == () and failed.error is not None
    assert failed.error.startswith("metastore: RuntimeError: metastore down")
    assert bad in _present(lake)  # the metastore step failed: the data stays
    assert {(i.dataset, i.day) for i in report.removed} == EXPIRED - {bad}
    assert _present(lake) & EXPIRED == {bad}
    errors = [line for line in _log_lines(log_path) if line["status"] == "error"]
    assert [(e["dataset"], e["day"], e["step"]) for e in errors] == [
        ("raw_readings", "2026-03-01", "metastore")
    ]


def test_partition_left_half_done_is_finished_by_the_next_run(tmp_path: Path) -> None:
    lake = _make_lake(tmp_path / "lake")
    bad = ("quarantine", dt.date(2026, 3, 6))
    log_path = tmp_path / "retention.jsonl"
    first = apply_retention(
        plan_retention(lake, RETENTION, TODAY),
        lake=lake,
        catalog=RecordingCatalog(lake, fail_on={bad}),
        dry_run=False,
        log_path=log_path,
    )
    assert [(o.item.dataset, o.item.day, o.done) for o in first.failed] == [(*bad, ("lake",))]
    assert bad not in _present(lake)  # lake files went, catalog entry did not
    assert plan_retention(lake, RETENTION, TODAY) == []  # the lake alone cannot find it again
    pending = unfinished_items(log_path, lake)
    assert [(i.dataset, i.day) for i in pending] == [bad]
    calls: list = []
    second = apply_retention(
        merge_plans(plan_retention(lake, RETENTION, TODAY), pending),
        lake=lake,
        catalog=RecordingCatalog(lake, calls=calls),
        dry_run=False,
        log_path=log_path,
    )
    assert second.failed == []
    assert [(c[1], c[2]) for c in calls] == [bad]
    assert second.outcomes[0].lake_existed is False
    assert unfinished_items(log_path, lake) == []


def test_merge_plans_deduplicates_and_sorts() -> None:
    a = RetentionItem("raw_readings", dt.date(2026, 1, 2), "/l/raw_readings/year=2026/month=01/day=02")
    b = RetentionItem("quarantine", dt.date(2026, 1, 1), "/l/quarantine/year=2026/month=01/day=01")
    assert merge_plans([a, b], [a]) == [b, a]


# --- with the real catalog (MongoDB-wire server), the CLI and the Dagster job ----------------------
@pytest.fixture()
def catalog(services: Any, mongo_db: Any) -> Iterator[Catalog]:
    cat = Catalog(services.mongo_uri, mongo_db.name)
    yield cat
    cat.close()


def _synced(lake: Lake, catalog: Catalog) -> None:
    for dataset, days in LAKE_DAYS.items():
        for day in days:
            catalog.sync_partition(lake, dataset, day)


def _catalog_partitions(catalog: Catalog) -> set[tuple[str, dt.date]]:
    return {(ds, dt.date.fromisoformat(p["day"])) for ds in LAKE_DAYS for p in catalog.partitions(ds)}


@pytest.mark.integration
def test_real_catalog_forgets_exactly_the_expired_partitions(tmp_path: Path, catalog: Catalog) -> None:
    lake = _make_lake(tmp_path / "lake")
    _synced(lake, catalog)
    everything = _present(lake)
    assert _catalog_partitions(catalog) == everything
    sid = series_id(*SERIES[0])
    assert catalog.series(sid)["rows"] == 2 * len(LAKE_DAYS["raw_readings"])

    dry = apply_retention(
        plan_retention(lake, RETENTION, TODAY), lake=lake, catalog=catalog, dry_run=True, log_path=None
    )
    assert {(i.dataset, i.day) for i in dry.removed} == EXPIRED
    assert _catalog_partitions(catalog) == everything  # dry run: untouched

    report = apply_retention(
        plan_retention(lake, RETENTION, TODAY),
        lake=lake,
        catalog=catalog,
        dry_run=False,
        log_path=tmp_path / "retention.jsonl",
    )
    assert report.failed == []
    assert _catalog_partitions(catalog) == everything - EXPIRED == _present(lake)
    days_left = catalog.db.series_days.distinct("day", {"dataset": "raw_readings"})
    assert sorted(days_left) == ["2026-03-05", "2026-03-10"]
    assert catalog.series(sid)["rows"] == 2 * 2  # series totals follow the remaining raw partitions


@pytest.mark.integration
def test_cli_dry_run_then_real_run(
    tmp_path: Path, services: Any, mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from tsplatform.cli import app

    state = tmp_path / "state"
    lake = _make_lake(state / "lake")
    monkeypatch.setenv("TSPLATFORM_STATE_DIR", str(state))
    monkeypatch.setenv("TSPLATFORM_MONGO_DB", mongo_db.name)
    monkeypatch.setenv("TSPLATFORM_RETENTION_DAYS", json.dumps(RETENTION))
    monkeypatch.delenv("TSPLATFORM_LAKE_ROOT", raising=False)
    get_settings.cache_clear()
    try:
        catalog = Catalog(services.mongo_uri, mongo_db.name)
        _synced(lake, catalog)
        runner = CliRunner()
        dry = runner.invoke(app, ["retention", "--dry-run", "--today", TODAY.isoformat()])
        assert dry.exit_code == 0, dry.output
        assert "5 partitions would be removed, 0 failed" in dry.output
        assert _present(lake) == {(ds, d) for ds, days in LAKE_DAYS.items() for d in days}
        real = runner.invoke(app, ["retention", "--today", TODAY.isoformat()])
        assert real.exit_code == 0, real.output
        assert "5 partitions removed, 0 failed" in real.output
        assert "2026-03-04" in real.output and "quarantine" in real.output
        assert _present(lake) & EXPIRED == set()
        assert _catalog_partitions(catalog) == _present(lake)
        log = _log_lines(state / "logs" / "retention.jsonl")
        assert {(x["dataset"], x["day"]) for x in log if x["step"] == "done" and not x["dry_run"]} == {
            (ds, d.isoformat()) for ds, d in EXPIRED
        }
        bad = runner.invoke(app, ["retention", "--today", "2026-13-01"])
        assert bad.exit_code != 0 and "is not a YYYY-MM-DD date" in str(bad.exception)
        catalog.close()
    finally:
        get_settings.cache_clear()


class RecordingCatalogResource:
    """Stand-in for ``CatalogResource``: ``catalog()`` hands out a :class:`RecordingCatalog`."""

    def __init__(self, lake: Lake, calls: list) -> None:
        self.lake, self.calls, self.closed = lake, calls, 0

    def catalog(self) -> RecordingCatalog:
        catalog = RecordingCatalog(self.lake, calls=self.calls)
        catalog.close = self._closed  # type: ignore[attr-defined]
        return catalog

    def _closed(self) -> None:
        self.closed += 1


def test_dagster_job_orchestrates_metastore_lake_and_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's wiring (config, settings, resources, order of the steps), with stand-ins for the metastore
    and the catalog: a unit test. The real metastore and catalog: the integration tests around it."""
    from tsplatform.assets.retention import retention_job, retention_schedule
    from tsplatform.resources.lake import LakeResource

    monkeypatch.setenv("TSPLATFORM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TSPLATFORM_RETENTION_DAYS", json.dumps(RETENTION))
    get_settings.cache_clear()
    try:
        lake = _make_lake(tmp_path / "lake")
        calls: list = []
        catalog = RecordingCatalogResource(lake, calls)
        resources = {
            "lake": LakeResource(root=str(tmp_path / "lake")),
            "catalog": catalog,
            "spark": RecordingMetastore(calls=calls),
        }
        config = {"ops": {"retention_op": {"config": {"dry_run": True, "today": TODAY.isoformat()}}}}
        dry = retention_job.execute_in_process(run_config=config, resources=resources)
        assert dry.success
        assert len(dry.output_for_node("retention_op")["removed"]) == len(EXPIRED)
        assert calls == [] and len(_present(lake)) == 11

        config["ops"]["retention_op"]["config"]["dry_run"] = False
        real = retention_job.execute_in_process(run_config=config, resources=resources)
        assert real.success
        assert sorted(real.output_for_node("retention_op")["removed"]) == sorted(
            f"{ds}/{d.isoformat()}" for ds, d in EXPIRED
        )
        # per partition: the metastore first, then the catalog once the lake partition is gone
        metastore = [(c[1], c[2]) for c in calls if c[0] == "metastore"]
        forgotten = [(c[1], c[2]) for c in calls if c[0] == "catalog"]
        assert set(metastore) == set(forgotten) == EXPIRED and len(calls) == 2 * len(EXPIRED)
        assert all(not c[3] for c in calls if c[0] == "catalog")
        for item in EXPIRED:
            assert calls.index(("metastore", *item)) < min(
                i for i, c in enumerate(calls) if c[0] == "catalog" and (c[1], c[2]) == item
            )
        assert _present(lake) & EXPIRED == set() and len(_present(lake)) == 11 - len(EXPIRED)
        assert catalog.closed == 2  # one catalog per run, closed
        assert (tmp_path / "state" / "logs" / "retention.jsonl").is_file()
    finally:
        get_settings.cache_clear()
    assert retention_schedule.cron_schedule == "0 3 * * *"
    assert retention_schedule.execution_timezone == "UTC"
    assert retention_schedule.job_name == "retention_job"


@pytest.mark.integration
def test_hive_metastore_partitions_follow_the_lake_via_job_and_cli(
    tmp_path: Path, services: Any, mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real Spark with the embedded Hive metastore. The Dagster job (metastore = the project's
    PySparkResource) handles ``quarantine``, then ``tsplatform retention --hive`` handles ``raw_readings``."""
    from typer.testing import CliRunner

    from tsplatform.assets.retention import retention_job
    from tsplatform.cli import app
    from tsplatform.hive import ensure_table
    from tsplatform.ingest.retention import _open_metastore
    from tsplatform.resources.catalog import CatalogResource
    from tsplatform.resources.lake import LakeResource
    from tsplatform.resources.spark import spark_resource

    state = tmp_path / "state"
    lake = _make_lake(state / "lake")
    monkeypatch.setenv("TSPLATFORM_STATE_DIR", str(state))
    monkeypatch.setenv("TSPLATFORM_MONGO_DB", mongo_db.name)
    monkeypatch.delenv("TSPLATFORM_LAKE_ROOT", raising=False)
    get_settings.cache_clear()
    from pyspark.sql import SparkSession

    # a session left by another test (test_clean's step) has that test's metastore and warehouse, which a
    # getOrCreate would reuse (static confs): stop it so this test's state dir is the one used, in any order
    if (existing := SparkSession.getActiveSession() or SparkSession._instantiatedSession) is not None:
        existing.stop()
    spark = _open_metastore().spark
    tables = {
        ds: ensure_table(spark, lake, ds, lake.read_partition(ds, LAKE_DAYS[ds][-1]).schema)
        for ds in ("raw_readings", "quarantine")
    }

    def hive_days(dataset: str) -> set[dt.date]:
        rows = spark.sql(f"SHOW PARTITIONS {tables[dataset]}").collect()
        parts = [dict(kv.split("=") for kv in r[0].split("/")) for r in rows]
        return {dt.date(int(p["year"]), int(p["month"]), int(p["day"])) for p in parts}

    def lake_days(dataset: str) -> set[dt.date]:
        return {d for ds, d in _present(lake) if ds == dataset}

    try:
        assert {ds: hive_days(ds) for ds in tables} == {ds: set(LAKE_DAYS[ds]) for ds in tables}
        monkeypatch.setenv("TSPLATFORM_RETENTION_DAYS", json.dumps({"quarantine": RETENTION["quarantine"]}))
        get_settings.cache_clear()
        job = retention_job.execute_in_process(
            run_config={"ops": {"retention_op": {"config": {"today": TODAY.isoformat()}}}},
            resources={"lake": LakeResource(), "catalog": CatalogResource(), "spark": spark_resource()},
        )
        assert job.success
        kept_quarantine = {dt.date(2026, 3, 8), dt.date(2026, 3, 9)}
        assert hive_days("quarantine") == lake_days("quarantine") == kept_quarantine
        assert hive_days("raw_readings") == set(LAKE_DAYS["raw_readings"])  # not in this retention

        monkeypatch.setenv("TSPLATFORM_RETENTION_DAYS", json.dumps(RETENTION))
        get_settings.cache_clear()
        args = ["retention", "--hive", "--no-catalog", "--today", TODAY.isoformat()]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "3 partitions removed, 0 failed" in result.output
        assert hive_days("raw_readings") == lake_days("raw_readings") == {dt.date(2026, 3, 5), TODAY}
        assert spark.sql(f"SELECT count(*) FROM {tables['raw_readings']}").collect()[0][0] == 3 * 2
    finally:
        for name in tables.values():
            spark.sql(f"DROP TABLE IF EXISTS {name}")
        get_settings.cache_clear()
