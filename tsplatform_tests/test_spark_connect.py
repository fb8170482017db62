"""The graph as clients of one long-lived Spark Connect server (``tsplatform services up spark``).

A real Spark Connect server is started by the project's own service manager; the documented backfill
command (``dagster asset materialize --select 'validated_readings*' --partition-range A...B``: everything
downstream of ``raw_readings``, the ML assets included, in one run) materializes a 3-day range with
``TSPLATFORM_SPARK_REMOTE`` pointing at it, in a process tree that must not start a JVM of its own; every
dataset of the graph must equal the pure core on pandas (``test_graph.reference``), the ML assets must
have run on it, and ``tsplatform sql`` must answer through the same server. The service's own
life cycle (health, ``services.env``, stop) is checked on it too.

Clients run in subprocesses: a Connect session switches its whole Python process to Spark Connect mode,
and the test process's classic session is shared with other modules.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psutil
import pytest

from tsplatform.errors import ServiceUnavailable
from tsplatform.instance import new_dagster_home
from tsplatform.lake import Lake
from tsplatform.services.manager import ServiceManager
from tsplatform.services.spark_connect import spark_connect_summary
from tsplatform.settings import Settings
from tsplatform_tests.graph_data import build, land
from tsplatform_tests.test_graph import REPO, START, assert_derived_same, assert_same, read, reference

DAYS = 3
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceManager]:
    """A Spark Connect server (``local[2]``) on its own state dir (metastore, warehouse)."""
    state = tmp_path_factory.mktemp("spark-connect") / "state"
    manager = ServiceManager.on_free_ports(state, settings=Settings(state_dir=state, spark_master="local[2]"))
    try:
        manager.up(["spark"])
    except ServiceUnavailable as exc:
        manager.down()
        pytest.fail(f"the Spark Connect server did not start: {exc.one_line()}", pytrace=False)
    try:
        yield manager
    finally:
        manager.down()


def java_children(root: psutil.Process, seen: set[str], stop: threading.Event) -> None:
    """Until ``stop``: the command lines of java processes below ``root`` into ``seen``."""
    while not stop.is_set():
        try:
            for child in root.children(recursive=True):
                try:
                    if "java" in Path(child.exe()).name:
                        seen.add(" ".join(child.cmdline())[:200])
                except psutil.Error:
                    continue
        except psutil.Error:
            return
        stop.wait(0.2)


def run_client(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``cmd`` to the end; its output and the java processes its tree started."""
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: set[str] = set()
    stop = threading.Event()
    watcher = threading.Thread(target=java_children, args=(psutil.Process(proc.pid), seen, stop), daemon=True)
    watcher.start()
    try:
        out, err = proc.communicate(timeout=1200)
    finally:
        stop.set()
        watcher.join()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), seen


def test_the_graph_runs_on_a_spark_connect_server_and_equals_the_core(  # type: ignore[no-untyped-def]
    tmp_path, services, spark_server
) -> None:
    state = spark_server.state_dir
    lake = Lake(str(tmp_path / "lake"))
    data = build(START, DAYS)
    land(lake, data.readings, "landing-1.parquet")
    days = [START + dt.timedelta(days=i) for i in range(DAYS)]
    db = f"connect_{uuid.uuid4().hex[:8]}"
    target = sorted(data.readings["series_id"].unique())[0]
    env = {
        **os.environ,
        "DAGSTER_HOME": str(new_dagster_home(tmp_path / "dagster_home")),
        "TSPLATFORM_STATE_DIR": str(state),  # the server's: its metastore and warehouse
        "TSPLATFORM_LAKE_ROOT": lake.root,
        "TSPLATFORM_MONGO_DB": db,
        "TSPLATFORM_START_DATE": START.isoformat(),
        "TSPLATFORM_SPARK_REMOTE": spark_server.spark_remote,
        # the ML assets downstream, kept small: one target, a short horizon, a 2-trial search
        "TSPLATFORM_FORECAST_TARGETS": target,
        "TSPLATFORM_FORECAST_HORIZON": "12",
        "TSPLATFORM_TUNE_FAMILIES": "linear",
        "TSPLATFORM_TUNE_NUM_SAMPLES": "2",
        "TSPLATFORM_TUNE_MAX_EPOCHS": "2",
        "TSPLATFORM_RAY_NUM_CPUS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    bin_dir = Path(sys.executable).parent
    done, jvms = run_client(
        [str(bin_dir / "dagster"), "asset", "materialize", "-m", "tsplatform.definitions",
         "--select", "validated_readings*", "--partition-range", f"{days[0]}...{days[-1]}"],
        env,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert jvms == set(), jvms  # the runs were clients: no driver JVM of their own

    expected = reference(data.readings, days)
    key = ["series_id", "event_time"]
    assert_same(read(lake, "validated_readings", days), expected["validated_readings"], key, "validated")
    assert_derived_same(lake, expected, days)
    assert read(lake, "regularized_readings", days)["is_imputed"].sum() > 0
    # the ML assets ran in the same run: a training set per day, one champion (tuned on the last day),
    # forecasts of the target per day
    assert lake.days("training_sets") == days
    assert lake.days("forecasts") == days
    assert set(read(lake, "forecasts", days)["series_id"]) == {target}
    os.environ["DAGSTER_HOME"], saved = env["DAGSTER_HOME"], os.environ.get("DAGSTER_HOME")
    try:
        with dg.DagsterInstance.get() as instance:
            assert len(instance.get_run_records()) == 1  # the whole selection, the whole range: one run
            for asset in ("validated_readings", "correlations", "training_sets", "tuned_models", "forecasts"):
                assert instance.get_materialized_partitions(dg.AssetKey(asset)) == {
                    d.isoformat() for d in days
                }, asset
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = saved

    # the server's metastore has the partitions the runs registered; `tsplatform sql` asks it too
    done, jvms = run_client(
        [str(bin_dir / "tsplatform"), "sql", "--format", "json",
         "SELECT count(*) AS n FROM tsplatform.denoised_readings WHERE year='2024' AND month='03'"],
        env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert jvms == set(), jvms
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"n": len(expected["denoised_readings"])}
    ]


def test_the_spark_service_answers_is_listed_and_unlisted(spark_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    address = spark_server.address("spark")
    assert spark_connect_summary(address).startswith("Spark 4.")
    status = {s.name: s.state for s in spark_server.status()}
    assert status["spark"] == "healthy"
    assert spark_server.env()["TSPLATFORM_SPARK_REMOTE"] == f"sc://{address}"
    # nothing listens on a fresh state dir's configured port: a clear error, not a hang
    idle = ServiceManager.on_free_ports(tmp_path / "idle")
    with pytest.raises(ServiceUnavailable, match="does not answer"):
        spark_connect_summary(idle.address("spark"), timeout_s=2.0)
    assert "TSPLATFORM_SPARK_REMOTE" not in idle.env()


def test_the_cli_starts_reports_and_stops_the_server(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tsplatform.services.process import free_ports

    env = {
        **os.environ,
        "TSPLATFORM_STATE_DIR": str(tmp_path / "state"),
        "TSPLATFORM_SPARK_CONNECT_PORT": str(free_ports(1)[0]),
        "TSPLATFORM_SPARK_MASTER": "local[1]",
    }
    cli = [str(Path(sys.executable).with_name("tsplatform")), "services"]

    def run(*args: str) -> str:
        done = subprocess.run([*cli, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    try:
        assert "started on 127.0.0.1" in run("up", "spark")
        assert "Spark 4." in run("up", "spark")  # idempotent: already running, still answering
        assert any(line.startswith("spark") and "healthy" in line for line in run("status").splitlines())
        assert run("stop", "spark").split() == ["spark", "stopped"]
        assert not any(line.startswith("spark") for line in run("status").splitlines())  # opt-in: unlisted
    finally:
        subprocess.run([*cli, "down"], env=env, cwd=REPO, capture_output=True, timeout=300)


def test_stopping_an_opt_in_service_drops_it_from_services_env(tmp_path) -> None:  # type: ignore[no-untyped-def]
    manager = ServiceManager.on_free_ports(tmp_path)
    manager.services_env_path.parent.mkdir(parents=True, exist_ok=True)
    line = "export TSPLATFORM_SPARK_REMOTE=sc://127.0.0.1:1\n"
    manager.services_env_path.write_text(line, encoding="utf-8")
    assert manager.stop("spark") is False  # nothing was running
    text = manager.services_env_path.read_text(encoding="utf-8")
    assert "TSPLATFORM_SPARK_REMOTE" not in text
    assert "TSPLATFORM_MONGO_URI" in text


def test_a_dead_server_is_one_clear_error_not_minutes_of_retries(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tsplatform.resources.spark import SparkResource
    from tsplatform.services.process import free_ports

    dead = f"sc://127.0.0.1:{free_ports(1)[0]}"
    # a run's resource refuses before any session exists
    resource = SparkResource(spark_config={"spark.remote": dead})
    with pytest.raises(ServiceUnavailable, match=r"does not answer.*services up spark"):
        resource.setup_for_execution(dg.build_init_resource_context())
    # the command: exit 2 and one line on stderr (the client alone would retry for many minutes)
    env = {**os.environ, "TSPLATFORM_STATE_DIR": str(tmp_path / "state"), "TSPLATFORM_SPARK_REMOTE": dead}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("tsplatform")), "sql", "SELECT 1"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "does not answer" in done.stderr and "TSPLATFORM_SPARK_REMOTE" in done.stderr
