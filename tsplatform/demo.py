"""``tsplatform demo``: the end-to-end walk-through on real CO2 data, against the running local services.

1. publishes one week of real CO2 readings of three office rooms (Brains4Buildings, CC BY 4.0: two
   sensor types per room at 10 min and 1 min / 1 h) to the contract topic as Connect JSON, once;
2. runs the Kafka offset sensor and the ingestion runs it requests on the Dagster instance of
   ``DAGSTER_HOME`` (so ``dagster dev`` shows the materialized day partitions afterwards);
3. profiles every series with the time-series core (sampling period, gaps, anomalies) and records the
   period in the catalog;
4. materializes ``validated_readings`` for those days on Spark (with its asset checks);
5. answers a question with Spark SQL over the Hive tables.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from tsplatform.catalog import Catalog
from tsplatform.errors import BadInput
from tsplatform.ingest.pipeline import end_offsets
from tsplatform.ingest.replay import ColumnMap, prepare_readings, publish
from tsplatform.lake import Lake
from tsplatform.services.health import check_kafka, check_mongo
from tsplatform.settings import Settings, get_settings

DEMO_DATA = Path(__file__).resolve().parent.parent / "demo" / "data" / "b4b_co2_2022-10-24_31.csv"


def demo_readings(path: Path = DEMO_DATA, days: int | None = None) -> pd.DataFrame:
    """The demo CSV as readings: position ``room <id>``, type_name = source, CO2 in ppm, sorted by time.
    ``days``: only the readings of the first ``days`` UTC days (from the earliest reading's day)."""
    if not path.is_file():
        raise BadInput(f"demo data not found at {path} (run from a checkout of the repository)")
    raw = pd.read_csv(path, dtype={"id": str})
    raw["room"] = "room " + raw["id"]
    cmap = ColumnMap(
        time_column="timestamp",
        value_column="co2__ppm",
        position_column="room",
        type_name_column="source",
        constants={"unit": "ppm", "rstart": 0.0, "rend": 10_000.0, "rlev1": 1000.0, "rlev2": 1500.0},
    )
    frame = prepare_readings(raw, cmap).frame
    if days is not None:
        if days < 1:
            raise BadInput(f"--days must be >= 1, got {days}")
        start = frame["event_time"].min().floor("D")
        frame = frame[frame["event_time"] < start + pd.Timedelta(days=days)]
    return frame.sort_values("event_time", kind="stable").reset_index(drop=True)


def _ensure_topic(settings: Settings, topic: str, partitions: int = 2) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(settings.kafka_client_config())
    if topic not in admin.list_topics(timeout=15).topics:
        futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        try:
            futures[topic].result(30)
        except Exception as exc:  # already created concurrently is fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # every partition needs a leader before we read or write it
        meta = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
        if meta is not None and meta.error is None and all(p.leader >= 0 for p in meta.partitions.values()):
            return
        time.sleep(0.2)


def run_sensor_and_runs(instance: Any) -> tuple[int, int]:
    """One Kafka offset sensor tick on ``instance``, then its runs (cursor kept in the instance dir)."""
    import dagster as dg

    from tsplatform.assets.ingest import kafka_offset_sensor
    from tsplatform.definitions import defs
    from tsplatform.resources.kafka import KafkaResource

    cursor_file = Path(instance.root_directory) / "demo_sensor_cursor.json"
    cursor = (cursor_file.read_text() or None) if cursor_file.is_file() else None
    result = kafka_offset_sensor(
        dg.build_sensor_context(instance=instance, cursor=cursor, resources={"kafka": KafkaResource()})
    )
    if isinstance(result, dg.SkipReason):
        return 0, 0
    job = defs.resolve_job_def("ingest_kafka")
    ok = 0
    for request in result.run_requests:
        quiet = {**request.run_config, "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        outcome = job.execute_in_process(run_config=quiet, instance=instance, tags=request.tags)
        ok += int(outcome.success)
    if result.cursor:
        cursor_file.write_text(result.cursor)
    return len(result.run_requests), ok


def _short(delta: pd.Timedelta) -> str:
    """``10min``, ``1h``, ``3.2s``: a compact duration."""
    seconds = delta.total_seconds()
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}min"
    return f"{seconds:.3g}s"


def profile_series(lake: Lake, catalog: Catalog) -> list[dict[str, Any]]:
    """Period, gaps and anomalies of every series in ``raw_readings`` (pure time-series core)."""
    from tsplatform.timeseries import deduplicate, detect_anomalies, detect_gaps, estimate_period

    table = lake.read_days("raw_readings", lake.days("raw_readings"))
    if table is None:
        return []
    frame = table.to_pandas()
    rows = []
    for sid, group in frame.groupby("series_id", sort=True):
        clean, _dups = deduplicate(group)
        series = clean.set_index("event_time")["value"].sort_index()
        estimate = estimate_period(series.index)
        gaps = detect_gaps(series.index, estimate)
        flags = detect_anomalies(series, method="iqr", causal=True)
        catalog.update_series(
            sid,
            {
                "period_s": estimate.period.total_seconds(),
                "period_confidence": float(estimate.confidence),
                "missing_samples": int(gaps.n_missing),
            },
        )
        rows.append(
            {
                "series": f"{group['position'].iloc[0]} / {group['type_name'].iloc[0]}",
                "readings": len(group),
                "dups": len(group) - len(clean),
                "period": _short(estimate.period),
                "conf": f"{estimate.confidence:.2f}",
                "jitter": _short(estimate.jitter),
                "missing": int(gaps.n_missing),
                "IQR flags": int(flags["is_anomaly"].sum()),
            }
        )
    return rows


def validate_days(instance: Any, days: list[str], report: dict[str, Any] | None = None) -> list[str]:
    """Materialize ``validated_readings`` for the raw days it has not validated yet; one line per day.
    ``report`` (when given) gets ``{day: {"valid", "rejected", "checks_passed", "checks"}}`` per day run."""
    import dagster as dg

    from tsplatform.assets.clean import validated_readings
    from tsplatform.resources.lake import LakeResource
    from tsplatform.resources.spark import spark_resource

    done = instance.get_materialized_partitions(dg.AssetKey("validated_readings"))
    todo = [d for d in days if d not in done]
    lines = [f"{len(days) - len(todo)} day(s) already validated"] if len(todo) < len(days) else []
    resources = {"spark": spark_resource(), "lake": LakeResource()}
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    for day in todo:
        result = dg.materialize(
            [validated_readings], partition_key=day, instance=instance, resources=resources, run_config=quiet
        )
        meta = result.asset_materializations_for_node("validated_readings")[0].metadata
        checks = result.get_asset_check_evaluations()
        passed = sum(c.passed for c in checks)
        if report is not None:
            report[day] = {
                "valid": int(meta["dagster/row_count"].value),
                "rejected": int(meta["rejected"].value),
                "checks_passed": int(passed),
                "checks": len(checks),
            }
        lines.append(
            f"{day}: {meta['dagster/row_count'].value} valid, {meta['rejected'].value} rejected "
            f"{meta['reasons'].value}, checks {passed}/{len(checks)} passed"
        )
    return lines


def spark_daily_means(settings: Settings, lake: Lake) -> pd.DataFrame:
    """Hive tables over the lake, then a Spark SQL aggregate (daily mean CO2 per room and sensor)."""
    from pyspark.sql import SparkSession

    from tsplatform.hive import ensure_table
    from tsplatform.ingest.schema import QUARANTINE_SCHEMA, RAW_READINGS_SCHEMA
    from tsplatform.resources.spark import spark_conf

    builder = SparkSession.builder
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        ensure_table(spark, lake, "raw_readings", RAW_READINGS_SCHEMA)
        ensure_table(spark, lake, "quarantine", QUARANTINE_SCHEMA)
        table = ensure_table(spark, lake, "validated_readings", RAW_READINGS_SCHEMA)
        return spark.sql(
            f"SELECT position, type_name, to_date(event_time) AS day, count(*) AS n, "
            f"round(avg(value), 1) AS mean_ppm FROM {table} "
            "GROUP BY position, type_name, to_date(event_time) ORDER BY position, type_name, day"
        ).toPandas()
    finally:
        spark.stop()


def ensure_dagster_home(settings: Settings) -> Path:
    """``$DAGSTER_HOME``, default ``<state>/dagster_home`` holding the repo's dagster.yaml (as make does)."""
    import os
    import shutil

    home = Path(os.environ.get("DAGSTER_HOME") or settings.state_path / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    repo_yaml = Path(__file__).resolve().parent.parent / "dagster.yaml"
    if not (home / "dagster.yaml").exists() and repo_yaml.is_file():
        shutil.copyfile(repo_yaml, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_demo(*, with_spark: bool = True, data: Path = DEMO_DATA, days: int | None = None) -> None:
    """Run the walk-through (module doc) on ``data`` (default: the week of demo CO2 data; ``days``: only its
    first days). What it prints is also written to ``<state>/demo_summary.json``."""
    import dagster as dg

    console = Console(width=max(Console().width, 110))
    settings = get_settings()
    check_kafka(settings.kafka_bootstrap, settings.kafka_security, timeout_s=10)
    check_mongo(settings.mongo_uri)
    topic = settings.topics[0]
    started = time.monotonic()

    console.rule("1. publish real CO2 readings to Kafka (Connect JSON envelope)")
    readings = demo_readings(data, days)
    published = 0
    _ensure_topic(settings, topic)
    already = sum(high - low for low, high, _committed in end_offsets(settings, [topic]).values())
    if already >= len(readings):
        console.print(f"topic {topic} already holds {already} records: not publishing again")
    else:
        result = publish(readings, topic, settings, progress=True)
        published = result.published
        console.print(f"published {result.published} readings of {result.series} series to {topic}")

    console.rule("2. Kafka offset sensor -> ingestion runs (Dagster instance at $DAGSTER_HOME)")
    ensure_dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        requested, ok = run_sensor_and_runs(instance)
        console.print(f"sensor requested {requested} run(s); {ok} succeeded")
        materialized = sorted(instance.get_materialized_partitions(dg.AssetKey("raw_readings")))
    console.print(f"raw_readings materialized for {len(materialized)} day(s): {', '.join(materialized)}")

    lake = Lake(settings.lake_uri)
    catalog = Catalog(settings.mongo_uri, settings.mongo_db)
    try:
        console.rule("3. catalog (MongoDB) and per-series profile (time-series core)")
        rows = profile_series(lake, catalog)
        table = Table(title="series")
        for name in rows[0] if rows else []:
            table.add_column(name, justify="right" if name != "series" else "left")
        for row in rows:
            table.add_row(*[str(v) for v in row.values()])
        console.print(table)
        quarantined = sum(d["rows"] for d in catalog.partitions("quarantine"))
        catalog_series = len(catalog.all_series())
        console.print(f"catalog: {catalog_series} series, quarantine: {quarantined} record(s)")
    finally:
        catalog.close()

    validated: dict[str, Any] = {}
    means = pd.DataFrame()
    if with_spark:
        console.rule("4. validated_readings on Spark (Pandera schema, timestamps, range, duplicates)")
        with dg.DagsterInstance.get() as instance:
            for line in validate_days(instance, materialized, validated):
                console.print(line)
        console.rule("5. Hive tables + Spark SQL: daily mean CO2 of the validated readings")
        means = spark_daily_means(settings, lake)
        pivot = means.pivot_table(index="day", columns=["position", "type_name"], values="mean_ppm")
        console.print(pivot.to_string())

    console.rule("done")
    console.print(
        f"finished in {time.monotonic() - started:.0f}s. Lake: {settings.lake_uri}\n"
        "See it in the Dagster UI:  make dev   (then open http://127.0.0.1:3000)\n"
        "Query with Spark SQL:       SELECT * FROM tsplatform.validated_readings\n"
        "                            WHERE year='2022' AND month='10'"
    )
    summary = {
        "published": published,
        "runs_requested": requested,
        "runs_succeeded": ok,
        "materialized_days": materialized,
        "series": len(rows),
        "profiles": rows,
        "catalog_series": catalog_series,
        "quarantined": quarantined,
        "validated": validated,
        "daily_means": json.loads(means.astype({"day": str}).to_json(orient="records")) if len(means) else [],
        "finished": dt.datetime.now(dt.UTC).isoformat(),
    }
    (settings.state_path / "demo_summary.json").write_text(json.dumps(summary, indent=2))


def register(app: typer.Typer) -> None:
    """Add ``tsplatform demo``."""

    @app.command("demo")
    def demo(
        spark: bool = typer.Option(True, "--spark/--no-spark", help="Finish with Hive tables + Spark SQL."),
        data: Path = typer.Option(DEMO_DATA, help="Readings CSV (columns id, source, timestamp, co2__ppm)."),
        days: int | None = typer.Option(None, min=1, help="Only the first N days of the data (e.g. tests)."),
    ) -> None:
        """End-to-end demo on real CO2 data: Kafka -> Dagster ingestion -> lake + catalog -> Spark SQL."""
        run_demo(with_spark=spark, data=data, days=days)
