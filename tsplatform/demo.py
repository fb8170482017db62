"""``tsplatform demo``: the whole platform on real CO2 data, run by Dagster's own daemon.

1. starts the local services (Kafka, MongoDB-wire) if they are not up, and a Dagster webserver and daemon
   on an instance whose day partitions start where the data starts;
2. publishes one week of real CO2 readings of three office rooms (Brains4Buildings, CC BY 4.0: two sensor
   types per room) to the contract topic in the Kafka Connect envelope, with a few malformed records (they
   go to the quarantine) and, once the first pass through the data assets is done, a late batch for an old
   day (the automation re-materializes that day and the days with readings whose lookback window covers it);
3. waits while the Kafka offset sensor starts ingestion runs and declarative automation materializes the
   whole asset graph — validated, regularized, denoised, decomposed, profiled series, training sets,
   tuned models and forecasts — printing progress (asset-days materialized, runs in flight);
4. prints a summary (series, periods, gaps filled, anomalies handled, champions against seasonal naive),
   writes the HTML report, and says where to look.

Ctrl-C stops the Dagster processes and the services the demo started, leaving nothing behind;
``--keep-running`` leaves the UI (and the services) up for exploring. Spark's and Hive's warnings go to
``<state>/logs/spark.log``; the Dagster processes' output to ``<state>/logs/dagster-*.log``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from tsplatform.dagster_processes import DagsterProcesses
from tsplatform.errors import BadInput, ServiceUnavailable
from tsplatform.instance import ensure_dagster_home
from tsplatform.lake import Lake
from tsplatform.settings import Settings, get_settings
from tsplatform.timeseries.impute import IMPUTATION_METHODS

REPO = Path(__file__).resolve().parent.parent
DEMO_DATA = REPO / "demo" / "data" / "b4b_co2_2022-10-24_31.csv"
#: The day held back and published late, and the series it is held back for.
LATE_DAY = dt.date(2022, 10, 26)
LATE_POSITION = "room 917810"
#: Records that are not readings: each lands in the quarantine with its reason.
MALFORMED_RECORDS: tuple[bytes, ...] = (
    b'{"schema": {"type": "struct"}, "payload": ',  # truncated JSON
    b'{"position": "room 917810", "type_name": "CO2-meter-SCD4x", "input_data": 412.0}',  # no event_time
    b'{"position": "room 917810", "type_name": "CO2-meter-SCD4x", "event_time": 1666600000000, '
    b'"input_data": NaN}',  # not a finite value
    b"\xff\xfe not utf-8",
)
#: The demo's model search: small, so that the whole demo fits in minutes on 2 cores.
DEMO_TUNING = {
    "TSPLATFORM_TUNE_NUM_SAMPLES": "4",
    "TSPLATFORM_TUNE_MAX_EPOCHS": "8",
    "TSPLATFORM_TUNE_TIME_BUDGET_S": "90",
}
#: The demo's cadence: its sensors tick every 10 s rather than 30 s, so that the hops between runs do not
#: dominate a demo of a few minutes (explicit settings win).
DEMO_CADENCE = {
    "TSPLATFORM_AUTOMATION_INTERVAL_S": "10",
    "TSPLATFORM_KAFKA_SENSOR_INTERVAL_S": "10",
}
#: The demo replays readings of 2022: the daily retention schedule (03:00 UTC; raw readings kept 400 days by
#: the wall clock) would delete them under a demo that runs past 03:00. The demo keeps every day.
DEMO_RETENTION = {"TSPLATFORM_RETENTION_DAYS": "{}"}
#: A failed run with nothing else running or queued for this long ends the wait (seconds).
STALLED_AFTER_FAILURE_S = 60.0
#: Nothing running, queued or backfilling for this long while assets are missing ends the wait (seconds):
#: longer than the sensors' and the backfill daemon's intervals (30 s) together.
STALLED_IDLE_S = 180.0
#: How long the demo waits for the graph before giving up (seconds).
DEFAULT_TIMEOUT_S = 25 * 60
PROGRESS_EVERY_S = 15.0


def demo_readings(path: Path = DEMO_DATA, days: int | None = None) -> pd.DataFrame:
    """The demo CSV as readings: position ``room <id>``, type_name = source, CO2 in ppm, sorted by time.
    ``days``: only the readings of the first ``days`` UTC days (from the earliest reading's day)."""
    from tsplatform.ingest.replay import ColumnMap, prepare_readings

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


def split_late(readings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(on time, late): the late part is ``LATE_POSITION``'s readings of ``LATE_DAY`` (UTC)."""
    day = pd.to_datetime(readings["event_time"], utc=True).dt.date
    late = (day == LATE_DAY) & (readings["position"] == LATE_POSITION)
    return readings[~late].reset_index(drop=True), readings[late].reset_index(drop=True)


def data_days(readings: pd.DataFrame) -> list[dt.date]:
    """The UTC days the readings cover, in order."""
    return sorted(set(pd.to_datetime(readings["event_time"], utc=True).dt.date))


def ensure_topic(settings: Settings, topic: str, partitions: int = 2) -> None:
    """Create ``topic`` if missing and wait until every partition has a leader."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(settings.kafka_client_config())
    if topic not in admin.list_topics(timeout=15).topics:
        futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        try:
            futures[topic].result(30)
        except Exception as exc:  # created concurrently is fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
        if meta is not None and meta.error is None and all(p.leader >= 0 for p in meta.partitions.values()):
            return
        time.sleep(0.2)
    raise ServiceUnavailable(f"topic {topic} has no leader for every partition after 30 s")


def publish_malformed(settings: Settings, topic: str) -> int:
    """Publish :data:`MALFORMED_RECORDS`; returns how many the broker acknowledged."""
    from confluent_kafka import Producer

    producer = Producer(settings.kafka_client_config())
    acked = 0

    def delivered(err: Any, _msg: Any) -> None:
        nonlocal acked
        acked += err is None

    for value in MALFORMED_RECORDS:
        producer.produce(topic, value=value, key=b"demo-malformed", on_delivery=delivered)
    producer.flush(30)
    return acked


#: The model stages: the demo's data is history (2022), while their automation (weekly retraining on a
#: cron, forecasts for the newest day) looks at the present, so the demo launches them as a backfill of
#: the data's last day through the webserver, as a user would from the UI; the daemon runs it.
MODEL_ASSETS = ("training_sets", "tuned_models", "forecasts", "forecast_accuracy")

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on InvalidSubsetError { message }
  }
}
"""


def launch_model_backfill(url: str, day: dt.date) -> str:
    """Ask the webserver (GraphQL) for a backfill of :data:`MODEL_ASSETS` on ``day``; its backfill id.

    Each asset's day is given explicitly (``partitionsByAssets``): with a plain asset selection Dagster
    maps the day down the dependencies, and ``forecasts``' last-partition mapping on ``tuned_models``
    maps a past day to nothing, so the forecasts would silently drop out of the backfill."""
    import requests

    key = day.isoformat()
    params = {
        "partitionsByAssets": [
            {"assetKey": {"path": [name]}, "partitions": {"range": {"start": key, "end": key}}}
            for name in MODEL_ASSETS
            if name in _asset_names()
        ],
        "title": "demo: models and forecasts",
        # one global model per sensor type (2 searches instead of one per series)
        "runConfigData": {"ops": {"tuned_models": {"config": {"scope": "global"}}}},
    }
    response = requests.post(
        f"{url}/graphql", json={"query": LAUNCH_BACKFILL, "variables": {"params": params}}, timeout=120
    )
    response.raise_for_status()
    body = response.json()
    result = (body.get("data") or {}).get("launchPartitionBackfill") or {}
    if result.get("__typename") != "LaunchBackfillSuccess":
        raise ServiceUnavailable(f"the model backfill was refused: {result or body.get('errors')}")
    return str(result["backfillId"])


def _asset_names() -> set[str]:
    from tsplatform.definitions import defs

    return {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}


def daily_assets() -> list[Any]:
    """Asset keys of the graph's daily-partitioned assets (what the demo waits for), in graph order."""
    import dagster as dg

    from tsplatform.definitions import defs
    from tsplatform.partitions import daily_partitions

    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.toposorted_asset_keys if graph.get(k).partitions_def == daily_partitions]
    return [k for k in keys if k != dg.AssetKey("quarantine")]


def unpartitioned_assets() -> list[Any]:
    """Asset keys of the graph's assets that are not day-partitioned (e.g. the tuned models)."""
    from tsplatform.definitions import defs

    graph = defs.resolve_asset_graph()
    return [k for k in graph.toposorted_asset_keys if not graph.get(k).is_partitioned]


@dataclass
class GraphProgress:
    """What the instance shows: asset-days materialized out of the expected ones, runs in flight."""

    done: int
    expected: int
    in_flight: int
    queued: int
    failed_runs: int
    #: The assets not yet materialized where expected, as ``name (N days)`` for the day-partitioned ones.
    missing: list[str]
    #: Their names.
    missing_assets: set[str]

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def data_done(self) -> bool:
        """Only the model stages (:data:`MODEL_ASSETS`) are missing, if anything."""
        return self.missing_assets <= set(MODEL_ASSETS)

    @property
    def settled(self) -> bool:
        """Nothing running or queued."""
        return not self.in_flight and not self.queued


def graph_progress(instance: Any, days: list[dt.date], since: float) -> GraphProgress:
    """Look at the instance: which expected (asset, day) pairs and unpartitioned assets are materialized."""
    import dagster as dg

    done, missing, missing_assets, expected = 0, [], set(), 0
    for key in daily_assets():
        model = key.to_user_string() in MODEL_ASSETS
        wanted = {days[-1].isoformat()} if model else {d.isoformat() for d in days}
        have = wanted & set(instance.get_materialized_partitions(key))
        expected += len(wanted)
        done += len(have)
        if len(have) < len(wanted):
            missing.append(f"{key.to_user_string()} ({len(wanted) - len(have)} days)")
            missing_assets.add(key.to_user_string())
    for key in unpartitioned_assets():
        expected += 1
        event = instance.get_latest_materialization_event(key)
        if event is not None and event.timestamp >= since:
            done += 1
        else:
            missing.append(key.to_user_string())
            missing_assets.add(key.to_user_string())
    records = instance.get_run_records(dg.RunsFilter(created_after=dt.datetime.fromtimestamp(since, dt.UTC)))
    statuses = [r.dagster_run.status for r in records]
    return GraphProgress(
        done=done,
        expected=expected,
        in_flight=sum(s in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING) for s in statuses),
        queued=sum(s in (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED) for s in statuses),
        failed_runs=sum(s == dg.DagsterRunStatus.FAILURE for s in statuses),
        missing=missing,
        missing_assets=missing_assets,
    )


def backfills_in_progress(instance: Any) -> int:
    """Backfills the daemon is still working on (it starts their runs between its ticks)."""
    from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus

    return len(instance.get_backfills(filters=BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED])))


def wait_for_graph(
    instance: Any,
    days: list[dt.date],
    since: float,
    timeout_s: float,
    report: Callable[[GraphProgress, float], None],
    check: Callable[[], None],
    until: Callable[[GraphProgress], bool] | None = None,
) -> GraphProgress:
    """Poll the instance until every expected asset-day is materialized (or ``until`` holds); ``report``
    gets the progress every :data:`PROGRESS_EVERY_S`; ``check`` raises if a Dagster process died."""
    started = time.monotonic()
    last = -PROGRESS_EVERY_S
    stalled_since: float | None = None
    idle_since: float | None = None
    while True:
        check()
        progress = graph_progress(instance, days, since)
        elapsed = time.monotonic() - started
        idle = progress.settled and not backfills_in_progress(instance)
        idle_since = (elapsed if idle_since is None else idle_since) if idle else None
        stalled_since = (
            (elapsed if stalled_since is None else stalled_since) if idle and progress.failed_runs else None
        )
        if stalled_since is not None and elapsed - stalled_since > STALLED_AFTER_FAILURE_S:
            raise ServiceUnavailable(
                f"{progress.failed_runs} run(s) failed and nothing else is running; still missing "
                f"{', '.join(progress.missing)} (see the runs in the Dagster UI)"
            )
        done = until(progress) if until else progress.complete
        if idle_since is not None and elapsed - idle_since > STALLED_IDLE_S and not done:
            raise ServiceUnavailable(
                f"nothing has run or been queued for {STALLED_IDLE_S:.0f} s and the graph is not "
                f"complete: still missing {', '.join(progress.missing)} (see the runs and the automation "
                "sensor's ticks in the Dagster UI)"
            )
        if elapsed - last >= PROGRESS_EVERY_S:
            report(progress, elapsed)
            last = elapsed
        if done:
            report(progress, elapsed)
            return progress
        if elapsed > timeout_s:
            missing = ", ".join(progress.missing)
            raise ServiceUnavailable(
                f"the graph was not complete after {timeout_s:.0f} s: still missing {missing}"
            )
        time.sleep(3)


def summary_tables(lake: Lake, days: list[dt.date]) -> list[Table]:
    """Per-series summary (period, gaps filled, anomalies, methods) and the champions' table."""

    def frame(dataset: str, columns: list[str] | None = None) -> pd.DataFrame:
        table = lake.read_days(dataset, days, columns)
        return table.to_pandas() if table is not None else pd.DataFrame()

    validated = frame("validated_readings", ["series_id", "position", "type_name"])
    series = (
        validated.drop_duplicates("series_id").set_index("series_id").sort_values(["position", "type_name"])
    )
    periods = frame("period_estimates")
    regular = frame("regularized_readings", ["series_id", "is_imputed", "imputation_method"])
    denoised = frame("denoised_readings", ["series_id", "is_anomaly", "processing"])
    rows = Table(title="series")
    for column in ("series", "readings", "period", "gaps filled", "method", "anomalies", "processing"):
        rows.add_column(column, justify="left" if column in ("series", "method", "processing") else "right")
    counts = validated.groupby("series_id").size()
    for sid, item in series.iterrows():
        period = periods[periods["series_id"] == sid]["period_s"].dropna() if len(periods) else pd.Series()
        reg = regular[regular["series_id"] == sid] if len(regular) else regular
        den = denoised[denoised["series_id"] == sid] if len(denoised) else denoised
        rows.add_row(
            f"{item['position']} / {item['type_name']}",
            str(int(counts.get(sid, 0))),
            _seconds(period.iloc[-1]) if len(period) else "-",
            str(int(reg["is_imputed"].sum())) if len(reg) else "-",
            _mode(reg, "imputation_method", prefer=IMPUTATION_METHODS),  # a method over "not needed"
            str(int(den["is_anomaly"].sum())) if len(den) else "-",
            _mode(den, "processing"),
        )
    tables = [rows]
    champions = _champions()
    if champions:
        table = Table(title="champion models (test error on held-out days)")
        for column in ("model", "family", "MSE", "seasonal naive MSE"):
            table.add_column(column)
        for champion in champions:
            table.add_row(
                str(champion.get("name")) + f" v{champion.get('version')}",
                str(champion.get("family", "")),
                _number(champion.get("mse")),
                _number(champion.get("naive_mse")),
            )
        tables.append(table)
    return tables


def _champions() -> list[dict[str, Any]]:
    from tsplatform.status import registered_champions

    return registered_champions(get_settings())


def _mode(frame: pd.DataFrame, column: str, prefer: tuple[str, ...] | None = None) -> str:
    """The most common value of ``column``; of the values in ``prefer`` while one of them occurs."""
    if frame.empty or column not in frame or frame[column].isna().all():
        return "-"
    values = frame[column].dropna()
    chosen = values[values.isin(prefer)] if prefer is not None else values
    return str((chosen if len(chosen) else values).mode().iloc[0])


def _seconds(value: float) -> str:
    value = float(value)
    for unit, size in (("h", 3600), ("min", 60)):
        if value >= size and value % size == 0:
            return f"{value / size:g} {unit}"
    return f"{value:g} s"


def _number(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return "-"


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupts_as_exceptions() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so both stop the demo's processes."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(
    *,
    keep_running: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    port: int = 3000,
    data: Path = DEMO_DATA,
    first_days: int | None = None,
) -> None:
    """The demo (see the module doc). Raises on a failure; Ctrl-C stops everything it started."""
    import warnings

    import dagster as dg

    from tsplatform.ingest.consuming import end_offsets
    from tsplatform.ingest.replay import publish
    from tsplatform.services.manager import ServiceManager
    from tsplatform.services.process import port_is_free

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    console = Console(width=max(Console().width, 110))
    started = time.monotonic()
    readings = demo_readings(data, first_days)
    days = data_days(readings)
    os.environ["TSPLATFORM_START_DATE"] = days[0].isoformat()  # partitions start where the data starts
    demo_defaults = {
        **DEMO_TUNING,
        **DEMO_CADENCE,
        **DEMO_RETENTION,
    }  # small search, quick sensors, no expiry
    for name, value in demo_defaults.items():
        os.environ.setdefault(name, value)
    get_settings.cache_clear()
    settings = get_settings()

    console.rule("setup: local services and the Dagster webserver + daemon")
    manager = ServiceManager.from_settings(settings)
    if _configured_services_answer(settings):  # e.g. a cluster, or services someone else started
        console.print(f"using Kafka at {settings.kafka_bootstrap} and the configured MongoDB")
        before = {"kafka", "mongo"}
    else:
        before = {s.name for s in manager.status() if s.state == "healthy"}
        for name, message in manager.up(["kafka", "mongo"]).items():
            console.print(f"{name:<6} {message}")
        get_settings.cache_clear()
        settings = get_settings()  # the services' addresses from services.env
    home = ensure_dagster_home(settings)
    if not port_is_free(port):
        raise BadInput(f"port {port} for the Dagster UI is in use (choose another with --port)")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "TSPLATFORM_START_DATE": days[0].isoformat(),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    dagster = DagsterProcesses(env=env, logs=settings.state_path / "logs", port=port)
    started_services = [name for name in ("kafka", "mongo") if name not in before]
    leave_up = False
    try:
        with _interrupts_as_exceptions():
            dagster.start()
            dagster.wait_until_serving()
            setup_s = time.monotonic() - started
            console.print(f"Dagster UI: {dagster.url}  (setup took {setup_s:.0f} s)")
            demo_started = time.monotonic()
            since = time.time()

            console.rule("1. publish real CO2 readings to Kafka (Connect JSON envelope) + malformed records")
            topic = settings.topics[0]
            ensure_topic(settings, topic)
            on_time, late = split_late(readings)
            already = sum(high - low for low, high, _ in end_offsets(settings, [topic]).values())
            fresh = already < len(readings)
            published = 0
            if fresh:
                result = publish(on_time, topic, settings, progress=True)
                published = result.published
                bad = publish_malformed(settings, topic)
                console.print(
                    f"published {result.published} readings of {result.series} series and {bad} malformed "
                    f"records to {topic}; {len(late)} readings of {LATE_DAY} held back (late batch)"
                )
            else:  # a second run publishes nothing twice and waits only for what is not materialized yet
                console.print(f"topic {topic} already holds {already} records: not publishing again")
                since = 0.0

            console.rule("2. the Kafka sensor and declarative automation materialize the graph (the daemon)")

            def report(progress: GraphProgress, elapsed: float) -> None:
                console.print(
                    f"[{elapsed:4.0f} s] {progress.done}/{progress.expected} asset-days materialized, "
                    f"{progress.in_flight} run(s) running, {progress.queued} queued"
                    + (f", {progress.failed_runs} failed" if progress.failed_runs else "")
                )

            rematerialized: dict[str, list[str]] = {}
            late_pending = fresh and len(late) > 0
            with dg.DagsterInstance.get() as instance:
                if late_pending:
                    # the first pass through the data assets ends before the late batch arrives, so that
                    # what the late batch re-materializes is told apart from the first pass
                    wait_for_graph(
                        instance,
                        days,
                        since,
                        timeout_s,
                        report,
                        dagster.check_alive,
                        until=lambda p: p.data_done and p.settled,
                    )
                    late_result = publish(late, topic, settings, progress=False)
                    published += late_result.published
                    console.print(f"late batch: published {late_result.published} readings of {LATE_DAY}")
                    late_since = time.time()

                def data_done(p: GraphProgress) -> bool:
                    """Every data asset materialized, and the late day re-materialized through all of them:
                    the models then learn from the late readings too."""
                    return p.data_done and (
                        not late_pending or day_through_the_graph(instance, LATE_DAY, late_since)
                    )

                wait_for_graph(instance, days, since, timeout_s, report, dagster.check_alive, until=data_done)
                pending = graph_progress(instance, days, since).missing
                if pending:
                    backfill = launch_model_backfill(dagster.url, days[-1])
                    console.print(f"models: backfill {backfill} of {', '.join(MODEL_ASSETS)} for {days[-1]}")
                progress = wait_for_graph(instance, days, since, timeout_s, report, dagster.check_alive)
                if late_pending:
                    rematerialized = materializations_since(instance, late_since)
            if rematerialized:
                console.print(
                    "late data re-materialized: "
                    + "; ".join(f"{k} {', '.join(v)}" for k, v in rematerialized.items())
                )
            graph_s = time.monotonic() - demo_started

            console.rule("3. summary")
            lake = Lake(settings.lake_uri)
            for table in summary_tables(lake, days):
                console.print(table)
            quarantine = lake.read_days("quarantine", lake.days("quarantine"), ["reason"])
            reasons = (
                quarantine.to_pandas()["reason"].str.split(":").str[0].value_counts().to_dict()
                if quarantine
                else {}
            )
            console.print(f"quarantine: {sum(reasons.values())} record(s) {reasons}")
            from tsplatform.report import write_report

            report_path = settings.state_path / "reports" / "demo.html"
            written = write_report(lake, report_path)
            console.print(f"report: {written.series} series, {written.figures} figures -> {report_path}")
            summary = {
                "days": [d.isoformat() for d in days],
                "published": published,
                "malformed": len(MALFORMED_RECORDS) if fresh else 0,
                "series": written.series,
                "figures": written.figures,
                "asset_days": progress.done,
                "asset_days_expected": progress.expected,
                "setup_s": round(setup_s, 1),
                "graph_s": round(graph_s, 1),
                "report": str(report_path),
                "late_rematerialized": rematerialized,
                "quarantine": reasons,
                "finished": dt.datetime.now(dt.UTC).isoformat(),
            }
            (settings.state_path / "demo_summary.json").write_text(json.dumps(summary, indent=2))
            console.rule("done")
            console.print(f"setup {setup_s:.0f} s, graph {graph_s:.0f} s. Report: {report_path}")
            console.print(
                f"Dagster UI: {dagster.url}"
                + ("" if keep_running else " (stopped; `--keep-running` keeps it)")
            )
            console.print(
                'Query with Spark SQL: tsplatform sql "SELECT * FROM tsplatform.denoised_readings LIMIT 10"'
            )
            leave_up = keep_running
    except KeyboardInterrupt:
        console.print("interrupted: stopping the Dagster processes and the services the demo started")
        raise
    finally:
        if not leave_up:
            dagster.stop()
            if started_services:
                manager.down()
    if leave_up:
        console.print(
            "left running: "
            + ", ".join(f"{name} pid {process.pid}" for name, process in dagster.processes.items())
            + "; stop each with `kill -- -<pid>`, then `tsplatform services down`"
        )


def _configured_services_answer(settings: Settings) -> bool:
    """True when the configured Kafka and MongoDB both answer (then the demo starts no local service)."""
    from tsplatform.errors import TsplatformError
    from tsplatform.services.health import check_kafka, check_mongo

    try:
        check_kafka(settings.kafka_bootstrap, settings.kafka_security, timeout_s=3)
        check_mongo(settings.mongo_uri, timeout_s=3)
    except TsplatformError:
        return False
    return True


def day_through_the_graph(instance: Any, day: dt.date, since: float) -> bool:
    """Whether every data asset (not the model stages) has materialized ``day`` after ``since``."""
    import dagster as dg

    for key in daily_assets():
        if key.to_user_string() in MODEL_ASSETS:
            continue
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()], after_timestamp=since),
            limit=1,
        ).records
        if not records:
            return False
    return True


def materializations_since(instance: Any, since: float) -> dict[str, list[str]]:
    """Day-partitioned asset -> the days materialized after ``since`` (e.g. what a late batch caused)."""
    import dagster as dg

    out: dict[str, list[str]] = {}
    for key in daily_assets():
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_timestamp=since), limit=1000
        ).records
        days = sorted({r.partition_key for r in records if r.partition_key})
        if days:
            out[key.to_user_string()] = days
    return out


def register(app: typer.Typer) -> None:
    """Add ``tsplatform demo``."""

    @app.command("demo")
    def demo(
        keep_running: bool = typer.Option(
            False, "--keep-running", help="Leave the Dagster UI up afterwards."
        ),
        port: int = typer.Option(3000, "--port", help="Port of the Dagster UI (127.0.0.1)."),
        timeout: float = typer.Option(DEFAULT_TIMEOUT_S, "--timeout", help="Seconds to wait for the graph."),
        data: Path = typer.Option(
            DEMO_DATA, "--data", help="The readings CSV (the demo's week of CO2 data)."
        ),
        days: int = typer.Option(None, "--days", help="Only the first N days of the data (a shorter demo)."),
    ) -> None:
        """The whole platform on real CO2 data: Kafka -> Dagster daemon -> every asset -> report."""
        run_demo(keep_running=keep_running, timeout_s=timeout, port=port, data=data, first_days=days)
