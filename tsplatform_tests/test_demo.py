"""``tsplatform demo`` end to end on its first three days of data, run by a real Dagster webserver and daemon
on the session's Kafka and MongoDB-wire servers: what it reports (stdout and ``demo_summary.json``) is checked
against the lake, the catalog and the Dagster instance, and it leaves no process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tsplatform.catalog import Catalog
from tsplatform.lake import Lake
from tsplatform.services.process import free_port, port_is_free
from tsplatform_tests.ingest.workload import read_dataset

REPO = Path(__file__).resolve().parents[1]
DAYS = 3  # 2022-10-23 (the 2 h after local midnight, UTC+2), 2022-10-24 and 2022-10-25: enough for a model


@pytest.mark.integration
@pytest.mark.timeout(2700)  # the whole graph and a model search by the daemon: minutes on 2 cores
def test_demo_runs_the_graph_by_the_daemon_and_reports_what_the_lake_holds(
    services: Any, fresh_topic: Any, tmp_path: Path
) -> None:
    import dagster as dg

    topic = fresh_topic(partitions=2, prefix="demo")
    state, lake_root, db = tmp_path / "state", tmp_path / "lake", f"demo_{uuid.uuid4().hex[:10]}"
    home = tmp_path / "dagster_home"
    port = free_port()
    env = {
        **os.environ,
        "TSPLATFORM_TOPICS": topic,
        "TSPLATFORM_STATE_DIR": str(state),
        "TSPLATFORM_LAKE_ROOT": str(lake_root),
        "TSPLATFORM_MONGO_DB": db,
        "TSPLATFORM_CONSUMER_GROUP": f"demo-{topic}",
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    cli = str(Path(sys.executable).with_name("tsplatform"))
    done = subprocess.run(
        [cli, "demo", "--days", str(DAYS), "--port", str(port), "--timeout", "2400"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=2700,
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    out = done.stdout
    summary = json.loads((state / "demo_summary.json").read_text())

    # it used the session's services (reachable), and stopped its webserver and daemon
    assert "using Kafka at" in out
    assert port_is_free(port)

    lake = Lake(str(lake_root))
    raw = read_dataset(lake, "raw_readings")
    quarantine = read_dataset(lake, "quarantine")
    days = [d.isoformat() for d in lake.days("raw_readings")]
    assert days == summary["days"] == ["2022-10-23", "2022-10-24", "2022-10-25"]

    # everything published landed once: the readings in raw_readings, the malformed records in quarantine
    assert summary["published"] == len(raw) > 0
    assert summary["malformed"] == len(quarantine) == sum(summary["quarantine"].values()) == 4
    assert f"published {summary['published']} readings of 6 series and 4 malformed records to {topic}" in out

    # the daemon materialized every day-partitioned asset for both days, and every other asset once
    os.environ["DAGSTER_HOME"], saved = str(home), os.environ.get("DAGSTER_HOME")
    try:
        from tsplatform.demo import MODEL_ASSETS, daily_assets, unpartitioned_assets

        with dg.DagsterInstance.get() as instance:
            for key in daily_assets():
                # the data stages for every day; the models and forecasts for the last day (a backfill)
                wanted = days[-1:] if key.to_user_string() in MODEL_ASSETS else days
                assert set(wanted) <= set(instance.get_materialized_partitions(key)), key
            for key in unpartitioned_assets():
                assert instance.get_latest_materialization_event(key) is not None, key
            runs = instance.get_run_records()
            assert runs and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            assert summary["asset_days"] == summary["asset_days_expected"] > len(days) * 3
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = saved
    assert [d.isoformat() for d in lake.days("validated_readings")] == days

    # the catalog knows the six series with their row counts
    catalog = Catalog(services.mongo_uri, db)
    try:
        docs = catalog.all_series()
        assert {d["_id"]: d["rows"] for d in docs} == raw.groupby("series_id").size().to_dict()
        assert len(docs) == 6
    finally:
        catalog.close()

    # the report covers the six series
    report = Path(summary["report"])
    assert report.is_file() and summary["series"] == 6 and summary["figures"] >= 6
    assert report.read_text(encoding="utf-8").count('class="plotly-graph-div"') == summary["figures"]
