"""``tsplatform demo`` end to end on its first two days of data (real Kafka, MongoDB-wire, Dagster, Spark):
what it reports (stdout and ``demo_summary.json``) is checked against the lake and the catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tsplatform.catalog import Catalog
from tsplatform.lake import Lake
from tsplatform_tests.ingest.workload import read_dataset

REPO = Path(__file__).resolve().parents[1]
DAYS = 2  # 2022-10-23 (the 2 h after local midnight, UTC+2) and 2022-10-24


@pytest.mark.integration
def test_demo_reports_what_the_lake_holds(services: Any, fresh_topic: Any, tmp_path: Path) -> None:
    topic = fresh_topic(partitions=2, prefix="demo")
    state, lake_root, db = tmp_path / "state", tmp_path / "lake", f"demo_{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "TSPLATFORM_TOPICS": topic,
        "TSPLATFORM_STATE_DIR": str(state),
        "TSPLATFORM_LAKE_ROOT": str(lake_root),
        "TSPLATFORM_MONGO_DB": db,
        "TSPLATFORM_CONSUMER_GROUP": f"demo-{topic}",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    cli = str(Path(sys.executable).with_name("tsplatform"))
    done = subprocess.run(
        [cli, "demo", "--days", str(DAYS)], env=env, cwd=REPO, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    out = done.stdout
    summary = json.loads((state / "demo_summary.json").read_text())

    lake = Lake(str(lake_root))
    raw = read_dataset(lake, "raw_readings")
    quarantine = read_dataset(lake, "quarantine")
    days = [d.isoformat() for d in lake.days("raw_readings")]
    assert days == ["2022-10-23", "2022-10-24"]

    # 1-2: everything published landed, once; the days it lists are the lake's
    assert summary["published"] == len(raw) + len(quarantine) > 0
    assert f"published {summary['published']} readings of 6 series to {topic}" in out
    assert summary["runs_requested"] == summary["runs_succeeded"] >= 1
    assert summary["materialized_days"] == days
    assert f"raw_readings materialized for 2 day(s): {', '.join(days)}" in out

    # 3: one profile row per series of the lake, with its reading count; the catalog agrees
    per_series = raw.groupby(["position", "type_name"]).size()
    assert summary["series"] == len(per_series) == 6
    assert {row["series"]: row["readings"] for row in summary["profiles"]} == {
        f"{p} / {t}": n for (p, t), n in per_series.items()
    }
    catalog = Catalog(services.mongo_uri, db)
    try:
        docs = catalog.all_series()
        assert summary["catalog_series"] == len(docs) == 6
        assert {d["_id"]: d["rows"] for d in docs} == raw.groupby("series_id").size().to_dict()
        assert all(d["period_s"] > 0 for d in docs)  # the profile step recorded each series' period
    finally:
        catalog.close()
    assert summary["quarantined"] == len(quarantine)
    assert f"catalog: 6 series, quarantine: {len(quarantine)} record(s)" in out

    # 4: the per-day validation counts are the lake's validated_readings / validation_rejects partitions
    valid = read_dataset(lake, "validated_readings")
    rejects = read_dataset(lake, "validation_rejects")
    assert sorted(summary["validated"]) == days
    for day, report in summary["validated"].items():
        on_day = pd.to_datetime(valid["event_time"], utc=True).dt.date.astype(str) == day
        n_valid = int(on_day.sum())
        n_rejected = len(lake.read_partition("validation_rejects", pd.Timestamp(day).date()))
        assert (report["valid"], report["rejected"]) == (n_valid, n_rejected), day
        assert report["checks_passed"] == report["checks"] >= 1
        assert f"{day}: {n_valid} valid, {n_rejected} rejected" in out
    assert len(valid) + len(rejects) <= len(raw)  # (duplicates are neither)

    # 5: the Spark SQL daily means are those of the validated readings
    valid["day"] = pd.to_datetime(valid["event_time"], utc=True).dt.date.astype(str)
    expected = valid.groupby(["position", "type_name", "day"])["value"].agg(["size", "mean"]).reset_index()
    got = pd.DataFrame(summary["daily_means"])
    assert len(got) == len(expected)
    merged = got.merge(expected, on=["position", "type_name", "day"], validate="one_to_one")
    assert (merged["n"] == merged["size"]).all()
    assert ((merged["mean_ppm"] - merged["mean"]).abs() <= 0.05 + 1e-9).all()  # rounded to 0.1 ppm
