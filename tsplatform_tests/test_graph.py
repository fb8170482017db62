"""The asset graph on a real Spark session and a real Dagster instance, against the core on pandas.

14 days x 24 series derived from the shipped real extracts (tsplatform_tests/graph_data.py) with gaps,
duplicates and spikes are published to a real Kafka broker; a Dagster daemon (its Kafka sensor, the
automation sensor and backfills) ingests them and takes them through the graph, each asset's day range in
one run; then late data for an old day is published, and the daemon re-materializes exactly that day and the
days whose lookback windows include it. Every dataset written by the executors must equal the pure functions
(:mod:`tsplatform.timeseries.stages`, which call the core) run on pandas over the same input: strings,
booleans, counts and timestamps exactly, floats within 1e-9 (relative and absolute). Checks pass on this
data; a series id the ingestion would never produce fails a blocking schema check and stops the graph.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from tsplatform.assets.analyse import period_estimates
from tsplatform.assets.clean import validated_readings
from tsplatform.assets.decompose import decompositions
from tsplatform.assets.denoise import denoised_readings
from tsplatform.assets.regularize import regularized_readings
from tsplatform.assets.summarize import correlations, hourly_readings, series_profiles
from tsplatform.datasets import DATASETS
from tsplatform.instance import new_dagster_home
from tsplatform.lake import Lake
from tsplatform.partitions import (
    ANOMALY_LOOKBACK_DAYS,
    DECOMPOSITION_LOOKBACK_DAYS,
    PERIOD_LOOKBACK_DAYS,
)
from tsplatform.resources.catalog import CatalogResource
from tsplatform.resources.lake import LakeResource
from tsplatform.resources.spark import spark_resource
from tsplatform.timeseries import stages
from tsplatform.timeseries.decompose import seasons_of_periods
from tsplatform.timeseries.validate import EVENT_TIME_DTYPE, validate_series
from tsplatform_tests.graph_data import DEFECTS, build, land
from tsplatform_tests.test_graph_automation import late_requests

START = dt.date(2024, 3, 1)
DAYS = 14
GRAPH = [
    validated_readings,
    period_estimates,
    regularized_readings,
    denoised_readings,
    decompositions,
    hourly_readings,
    series_profiles,
    correlations,
]
FLOAT_TOLERANCE = 1e-9
REPO = Path(__file__).resolve().parents[1]
#: How long the test waits for the daemon to take the days through the graph (seconds).
DAEMON_WAIT_S = 1200.0


def materialize_range(lake: Lake, db: str, first: dt.date, last: dt.date) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        return dg.materialize(
            GRAPH,
            instance=instance,
            resources={
                "spark": spark_resource(),
                "lake": LakeResource(root=lake.root),
                "catalog": CatalogResource(db=db),
            },
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
            raise_on_error=False,
        )


def read(lake: Lake, dataset: str, days: list[dt.date]) -> pd.DataFrame:
    table = lake.read_days(dataset, days)
    assert table is not None, dataset
    return table.to_pandas()


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str], dataset: str) -> None:
    """Same rows and values (floats within FLOAT_TOLERANCE) regardless of row order."""
    columns = [c for c in expected.columns if c != "_day"]
    assert set(columns) <= set(actual.columns), (dataset, set(columns) - set(actual.columns))

    def normal(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[columns].copy()
        if "event_time" in out:
            out["event_time"] = pd.to_datetime(out["event_time"], utc=True).dt.as_unit("ns")
        return out.sort_values(keys, kind="stable").reset_index(drop=True)

    a, e = normal(actual), normal(expected)
    assert len(a) == len(e), (dataset, len(a), len(e))
    for column in columns:
        left, right = a[column], e[column]
        if pd.api.types.is_float_dtype(right) or pd.api.types.is_float_dtype(left):
            ok = np.isclose(
                left.to_numpy(float),
                right.to_numpy(float),
                rtol=FLOAT_TOLERANCE,
                atol=FLOAT_TOLERANCE,
                equal_nan=True,
            )
            assert ok.all(), (dataset, column, int((~ok).sum()))
        else:
            same = left.astype(object).where(left.notna(), None) == right.astype(object).where(
                right.notna(), None
            )
            same |= left.isna().to_numpy() & right.isna().to_numpy()
            assert same.all(), (
                dataset,
                column,
                a.loc[~same, column].head(3).tolist(),
                e.loc[~same, column].head(3).tolist(),
            )


#: The datasets derived from validated_readings and their row keys (default: series and grid time).
DERIVED_KEYS = {
    "period_estimates": ["series_id", "date"],
    "regularized_readings": ["series_id", "event_time"],
    "denoised_readings": ["series_id", "event_time"],
    "decompositions": ["series_id", "event_time"],
    "hourly_readings": ["series_id", "event_time"],
    "correlations": ["position", "date", "series_a", "series_b"],
}


def assert_derived_same(lake: Lake, expected: dict[str, pd.DataFrame], days: list[dt.date]) -> None:
    """Every derived dataset in ``lake`` equals ``expected`` (:func:`reference`) on ``days``."""
    for dataset, keys in DERIVED_KEYS.items():
        assert_same(read(lake, dataset, days), expected[dataset], keys, dataset)


def per(frame: pd.DataFrame, key: str = "series_id") -> dict[str, pd.DataFrame]:
    return {k: g for k, g in frame.groupby(key, sort=True)} if len(frame) else {}


def reference(raw: pd.DataFrame, days: list[dt.date]) -> dict[str, pd.DataFrame]:
    """Every dataset computed on pandas by the same per-series functions, from the raw readings."""
    now = pd.Timestamp.now(tz="UTC")
    parts = []
    raw = raw.sort_values("offset", kind="stable")
    for (_sid, day), rows in raw.groupby(["series_id", raw["event_time"].dt.date], sort=True):
        rows = rows.copy()
        rows["event_time"] = rows["event_time"].astype(EVENT_TIME_DTYPE)
        parts.append(validate_series(rows, day, now))
    checked = pd.concat(parts, ignore_index=True)
    valid = checked[checked["reason"].isna()].drop(columns="reason")
    out = {"validated_readings": valid, "validation_rejects": checked[checked["reason"].notna()]}
    empty = valid.iloc[0:0]

    def run(fn, *frames: dict[str, pd.DataFrame], key: str = "series_id") -> pd.DataFrame:  # type: ignore[no-untyped-def]
        names = sorted(set().union(*frames))
        results = [fn(*(f.get(n, empty) for f in frames)) for n in names]
        return pd.concat([r for r in results if len(r)], ignore_index=True)

    pe = run(lambda r: stages.estimate_periods(r, days, PERIOD_LOOKBACK_DAYS), per(valid))
    reg = run(
        lambda r, e: stages.regularize_series(
            r, e, days, None, lookback_days=PERIOD_LOOKBACK_DAYS, max_gap_s=86_400.0, reselect_days=7
        ),
        per(valid),
        per(pe),
    )
    den = run(lambda r: stages.denoise_series(r, days, ANOMALY_LOOKBACK_DAYS), per(reg))
    seasons = seasons_of_periods(pe["period_s"])
    dec = run(
        lambda r, e: stages.decompose_series(r, e, days, seasons, lookback_days=DECOMPOSITION_LOOKBACK_DAYS),
        per(den),
        per(pe),
    )
    hourly = run(lambda r: stages.hourly_series(r, days), per(den))
    corr = run(lambda r: stages.correlate_position(r, days), per(den, "position"))
    out.update(
        period_estimates=pe,
        regularized_readings=reg,
        denoised_readings=den,
        decompositions=dec,
        hourly_readings=hourly,
        correlations=corr,
    )
    return out


def instance_env(tmp_path: Path, topic: str, db: str) -> dict[str, str]:
    """The environment of a daemon on its own instance, state dir (lake, Spark metastore) and catalog."""
    home = new_dagster_home(tmp_path / "dagster_home")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "TSPLATFORM_STATE_DIR": str(tmp_path / "state"),
        "TSPLATFORM_LAKE_ROOT": str(tmp_path / "lake"),
        "TSPLATFORM_TOPICS": topic,
        "TSPLATFORM_CONSUMER_GROUP": f"graph-{topic}",
        "TSPLATFORM_MONGO_DB": db,
        "TSPLATFORM_START_DATE": START.isoformat(),
        "TSPLATFORM_AUTOMATION_INTERVAL_S": "10",  # the default 30 s between hops adds minutes here
        "TSPLATFORM_KAFKA_SENSOR_INTERVAL_S": "10",
        # the data are of 2024: the 03:00 UTC retention run would delete their raw days under a test that
        # runs past 03:00 (it did, beside a graph run, before retention joined the spark pool)
        "TSPLATFORM_RETENTION_DAYS": "{}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }


def published(frame: pd.DataFrame, topic: str) -> int:
    """Publish the readings (Connect JSON envelopes, in row order) to ``topic``; returns how many."""
    from tsplatform.ingest.replay import publish
    from tsplatform.settings import get_settings

    columns = ["position", "type_name", "event_time", "value", "unit", "ss_id", "rstart", "rend"]
    result = publish(frame[columns], topic, get_settings(), progress=False)
    assert result.failed == 0 and result.published == len(frame), result
    return result.published


def first_runs(instance: dg.DagsterInstance, asset: str) -> dict[str, str]:
    """Day -> the run that first materialized ``asset`` for that day."""
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000, ascending=True).records
    out: dict[str, str] = {}
    for record in records:
        out.setdefault(str(record.partition_key), record.run_id)
    return out


@pytest.mark.integration
@pytest.mark.timeout(1800)  # ingestion, the graph twice (the late batch) by the daemon: minutes on 2 cores
def test_the_daemon_runs_the_graph_and_every_dataset_equals_the_core_on_pandas(  # type: ignore[no-untyped-def]
    tmp_path, services, fresh_topic
) -> None:
    """Kafka -> the Kafka sensor's ingestion -> the automation sensor and the daemon, twice: the 14 days,
    then a late batch for an old day. Nothing is materialized by the test itself."""
    from tsplatform.dagster_processes import DagsterProcesses
    from tsplatform.demo import (
        GraphProgress,
        backfills_in_progress,
        day_through_the_graph,
        materializations_since,
        wait_for_graph,
    )

    data = build(START, DAYS)
    days = data.day_list
    late_day = START + dt.timedelta(days=DEFECTS["late"][1])
    topic = fresh_topic(partitions=1, prefix="graph")  # one partition: offsets in publishing order
    db = f"graph_{uuid.uuid4().hex[:8]}"
    env = instance_env(tmp_path, topic, db)
    lake = Lake(env["TSPLATFORM_LAKE_ROOT"])
    published(data.readings, topic)  # before the daemon starts: its first Kafka sensor tick sees them all
    daemon = DagsterProcesses(env=env, logs=tmp_path / "logs", port=0, webserver=False)
    since = time.time()
    daemon.start()
    try:
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:

            def quiet() -> bool:
                return not backfills_in_progress(instance)

            wait_for_graph(
                instance, days, since, DAEMON_WAIT_S, lambda *_: None, daemon.check_alive,
                until=lambda p: p.data_done and p.settled and quiet(),
            )  # fmt: skip
            # a range of days runs as one run per asset (its one Spark job reads the whole range)
            for asset in GRAPH:
                runs = first_runs(instance, asset.key.path[0])
                assert set(runs) == {d.isoformat() for d in days}, asset.key
                assert len(set(runs.values())) == 1, (asset.key, runs)

            late_since = time.time()
            published(data.late, topic)  # a later ingestion run lands a second file for an old day

            def late_done(p: GraphProgress) -> bool:
                return p.settled and quiet() and day_through_the_graph(instance, late_day, late_since)

            wait_for_graph(
                instance, days, since, DAEMON_WAIT_S, lambda *_: None, daemon.check_alive,
                until=late_done,
            )  # fmt: skip
            again = materializations_since(instance, late_since)
            expected_again = {a: sorted(d) for a, d in late_requests(late_day, days[-1]).items()}
            assert again == {"raw_readings": [late_day.isoformat()], **expected_again}

            runs = instance.get_run_records()
            assert runs and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            evaluations = [
                entry.dagster_event.asset_check_evaluation_data
                for record in runs
                for entry in instance.all_logs(
                    record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
                )
                if entry.dagster_event is not None
            ]
            checked = {(e.asset_key.path[0], e.check_name) for e in evaluations}
            wanted = {(k.asset_key.path[0], k.name) for a in GRAPH for k in a.check_keys}
            assert wanted <= checked, wanted - checked
            assert all(e.passed for e in evaluations), [
                (e.asset_key, e.check_name) for e in evaluations if not e.passed
            ]
    finally:
        daemon.stop()

    raw = read(lake, "raw_readings", days)
    assert len(raw) == len(data.readings) + len(data.late)
    expected = reference(raw, days)
    assert_same(
        read(lake, "validated_readings", days),
        expected["validated_readings"],
        ["series_id", "event_time"],
        "validated",
    )
    assert_same(
        read(lake, "validation_rejects", days),
        expected["validation_rejects"],
        ["series_id", "event_time", "offset"],
        "rejects",
    )
    assert_derived_same(lake, expected, days)

    # what the injected defects must have produced
    reg = read(lake, "regularized_readings", days)
    assert reg["is_imputed"].sum() > 0
    assert reg["note"].fillna("").str.contains("gaps longer than").any()  # the 30-hour gap is left missing
    den = read(lake, "denoised_readings", days)
    assert den["is_anomaly"].sum() > 0
    rejects = read(lake, "validation_rejects", days)
    assert {"exact_duplicate", "same_timestamp"} <= set(rejects["reason"])
    profiles = read(lake, "series_profiles", days)
    assert len(profiles) == len(
        expected["validated_readings"].groupby(
            ["series_id", expected["validated_readings"]["event_time"].dt.date]
        )
    )
    assert profiles["duplicates"].sum() == rejects["reason"].isin(["exact_duplicate", "same_timestamp"]).sum()
    assert DATASETS["series_profiles"][1].validate(profiles) is not None

    # Hive tables over the datasets, partitions registered by the daemon's runs: `tsplatform sql` on its
    # metastore (the daemon is stopped: the embedded Derby metastore admits one JVM)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("tsplatform")), "sql", "--format", "json",
         "SELECT count(*) AS n FROM tsplatform.denoised_readings WHERE year='2024' AND month='03'"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [{"n": len(den)}]

    # catalog: per-series state of the latest day
    from pymongo import MongoClient

    docs = {d["_id"]: d for d in MongoClient(services.mongo_uri)[db].series.find({})}
    assert set(docs) == set(raw["series_id"])
    some = docs[raw["series_id"].iloc[0]]
    assert {
        "period_s",
        "period_confidence",
        "imputation_method",
        "imputation_selected",
        "processing",
        "missing_rate",
        "last_processed_day",
    } <= set(some)
    assert some["last_processed_day"] == days[-1].isoformat()
    # the selection history after the late batch's re-run is the one of a run with every reading from the
    # start: the re-run redid the selections made on or after the late day, and only those
    chosen = expected["regularized_readings"].dropna(subset=["imputation_selected"])
    for sid, rows in chosen.groupby("series_id"):
        used = sorted(set(zip(rows["imputation_selected"], rows["imputation_method"], strict=True)))
        assert [tuple(e) for e in docs[sid]["imputation_history"]] == used, sid
        assert (docs[sid]["imputation_selected"], docs[sid]["imputation_method"]) == used[-1], sid
    assert chosen["imputation_selected"].nunique() > 1  # selections on several days, not only the first


@pytest.mark.integration
def test_a_failing_blocking_check_stops_the_graph_below_it(tmp_path, services) -> None:  # type: ignore[no-untyped-def]
    lake = Lake(str(tmp_path / "lake"))
    data = build(START, 2)
    raw = data.readings[data.readings["position"].isin(["ec2 825cc2", "ec2 latency"])].copy()
    raw.loc[raw["position"] == "ec2 latency", "series_id"] = "Not An Id"  # not what the ingestion produces
    land(lake, raw, "run-1.parquet")
    result = materialize_range(lake, f"graph_{uuid.uuid4().hex[:8]}", START, START + dt.timedelta(days=1))
    assert not result.success
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert [(c.asset_key.path[0], c.check_name) for c in failed] == [("period_estimates", "matches_schema")]
    done = {m.asset_key.path[0] for m in result.get_asset_materialization_events()}
    assert done == {"validated_readings", "period_estimates"}  # nothing below the failed blocking check
