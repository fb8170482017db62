"""Retention: planning over a real lake dir, dry run, real run, logging, failures and resumption."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest

from tsplatform.errors import ConfigError
from tsplatform.ingest.retention import (
    RetentionItem,
    apply_retention,
    expiry_cutoff,
    merge_plans,
    plan_retention,
    unfinished_items,
)
from tsplatform.lake import Lake

TODAY = dt.date(2026, 3, 10)
RETENTION = {"raw_readings": 5, "quarantine": 2}
# raw_readings: kept from TODAY-5 = 03-05 on; quarantine: from 03-08 on; validated_readings: not listed.
LAKE_DAYS = {
    "raw_readings": [dt.date(2026, 2, 27), dt.date(2026, 3, 1), dt.date(2026, 3, 4), dt.date(2026, 3, 5),
                     dt.date(2026, 3, 10)],
    "quarantine": [dt.date(2026, 3, 6), dt.date(2026, 3, 7), dt.date(2026, 3, 8), dt.date(2026, 3, 9)],
    "validated_readings": [dt.date(2025, 1, 1), dt.date(2026, 3, 1)],
}
EXPIRED = {
    ("raw_readings", dt.date(2026, 2, 27)), ("raw_readings", dt.date(2026, 3, 1)),
    ("raw_readings", dt.date(2026, 3, 4)),
    ("quarantine", dt.date(2026, 3, 6)), ("quarantine", dt.date(2026, 3, 7)),
}


def _make_lake(root: Path) -> Lake:
    lake = Lake(str(root))
    for dataset, days in LAKE_DAYS.items():
        for day in days:
            table = pa.table({"day": [day.isoformat()] * 3, "value": [1.0, 2.0, 3.0]})
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
    def __init__(self, lake: Lake, fail_on: set[tuple[str, dt.date]] | None = None,
                 calls: list | None = None) -> None:
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
        plan_retention(lake, RETENTION, TODAY), lake=lake, metastore=metastore,
        catalog=RecordingCatalog(lake, calls=catalog_calls), dry_run=True, log_path=log_path,
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
        plan_retention(lake, RETENTION, TODAY), lake=lake, metastore=RecordingMetastore(calls=calls),
        catalog=RecordingCatalog(lake, calls=calls), dry_run=False, log_path=log_path,
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
            (line["step"], line["status"]))
    assert set(by_partition) == EXPIRED
    for steps in by_partition.values():
        assert steps == [("metastore", "removed"), ("lake", "removed"), ("catalog", "removed"),
                         ("done", "removed")]
    # idempotent: a second run plans nothing
    assert plan_retention(lake, RETENTION, TODAY) == []


def test_a_failing_partition_is_reported_and_the_rest_continue(tmp_path: Path) -> None:
    lake = _make_lake(tmp_path / "lake")
    bad = ("raw_readings", dt.date(2026, 3, 1))
    log_path = tmp_path / "retention.jsonl"
    report = apply_retention(
        plan_retention(lake, RETENTION, TODAY), lake=lake, metastore=RecordingMetastore(fail_on={bad}),
        dry_run=False, log_path=log_path,
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
        plan_retention(lake, RETENTION, TODAY), lake=lake, catalog=RecordingCatalog(lake, fail_on={bad}),
        dry_run=False, log_path=log_path,
    )
    assert [(o.item.dataset, o.item.day, o.done) for o in first.failed] == [(*bad, ("lake",))]
    assert bad not in _present(lake)  # lake files went, catalog entry did not
    assert plan_retention(lake, RETENTION, TODAY) == []  # the lake alone cannot find it again
    pending = unfinished_items(log_path, lake)
    assert [(i.dataset, i.day) for i in pending] == [bad]
    calls: list = []
    second = apply_retention(
        merge_plans(plan_retention(lake, RETENTION, TODAY), pending), lake=lake,
        catalog=RecordingCatalog(lake, calls=calls), dry_run=False, log_path=log_path,
    )
    assert second.failed == []
    assert [(c[1], c[2]) for c in calls] == [bad]
    assert second.outcomes[0].lake_existed is False
    assert unfinished_items(log_path, lake) == []


def test_merge_plans_deduplicates_and_sorts() -> None:
    a = RetentionItem("raw_readings", dt.date(2026, 1, 2), "/l/raw_readings/year=2026/month=01/day=02")
    b = RetentionItem("quarantine", dt.date(2026, 1, 1), "/l/quarantine/year=2026/month=01/day=01")
    assert merge_plans([a, b], [a]) == [b, a]
