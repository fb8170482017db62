"""``tsplatform sql`` on a real Spark session with the Hive metastore, over a materialized dataset.

The graph up to ``denoised_readings`` is materialized by its assets on a real Dagster instance (MongoDB-wire
catalog); the rows ``tsplatform sql`` prints for ``denoised_readings`` (and ``validated_readings``) must
equal the pure core run on pandas over the same raw day (:func:`_core`).
Another dataset is one more ``Case`` (and its asset in ``ASSETS``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest

from tsplatform.cli import main
from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
from tsplatform.lake import Lake
from tsplatform.resources.catalog import CatalogResource
from tsplatform.resources.lake import LakeResource
from tsplatform.resources.spark import spark_resource
from tsplatform_tests.test_clean import DAY, raw_day

# materializing four Spark assets in the fixture: minutes on a crowded 2-core machine (the default is 900 s)
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]


@dataclass(frozen=True)
class Case:
    dataset: str
    columns: tuple[str, ...]  # compared columns, in query order
    expected: Callable[[pd.DataFrame], pd.DataFrame]  # the pure core on pandas over the raw day


def _core(raw: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """validated_readings .. denoised_readings of the raw day by the per-series core on pandas, as the
    assets call it (the steps of ``tsplatform_tests.test_graph.reference`` up to denoising)."""
    from tsplatform.partitions import ANOMALY_LOOKBACK_DAYS, PERIOD_LOOKBACK_DAYS
    from tsplatform.timeseries import stages
    from tsplatform.timeseries.validate import validate_series

    days, now, out = [DAY], pd.Timestamp.now(tz="UTC"), {}
    checked = [validate_series(rows, DAY, now) for _, rows in raw.sort_values("offset").groupby("series_id")]
    valid = [c[c["reason"].isna()].drop(columns="reason") for c in checked]
    estimates = [stages.estimate_periods(v, days, PERIOD_LOOKBACK_DAYS) for v in valid]
    regular = [
        stages.regularize_series(
            v, e, days, None, lookback_days=PERIOD_LOOKBACK_DAYS, max_gap_s=86_400.0, reselect_days=7
        )
        for v, e in zip(valid, estimates, strict=True)
    ]
    denoised = [stages.denoise_series(r, days, ANOMALY_LOOKBACK_DAYS) for r in regular]
    out["validated_readings"] = pd.concat(valid, ignore_index=True)
    out["denoised_readings"] = pd.concat(denoised, ignore_index=True)
    return out


def _expected(dataset: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda raw: _core(raw)[dataset]


CASES = {
    case.dataset: case
    for case in (
        Case(
            "denoised_readings",
            ("series_id", "event_time", "value", "value_raw", "is_anomaly", "is_spike", "processing"),
            _expected("denoised_readings"),
        ),
        Case(
            "validated_readings",
            ("position", "type_name", "event_time", "value"),
            _expected("validated_readings"),
        ),
    )
}
#: Materialized once for the module: every asset up to the last case's dataset.
ASSETS = ("validated_readings", "period_estimates", "regularized_readings", "denoised_readings")


def _materialize(lake: Lake, db: str) -> None:
    from tsplatform.definitions import defs

    assets = [defs.get_assets_def(name) for name in ASSETS]
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            assets,
            partition_key=DAY.isoformat(),
            instance=instance,
            resources={
                "spark": spark_resource(),
                "lake": LakeResource(root=lake.root),
                "catalog": CatalogResource(db=db),
            },
        )
    assert result.success


def _rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[tuple[object, ...]]:
    """Comparable rows: event times as UTC ISO strings (``tsplatform sql --format json`` prints them),
    floats rounded to 9 significant digits, NaN and null alike."""
    out = frame[list(columns)].copy()
    if "event_time" in out:
        times = pd.to_datetime(out["event_time"], utc=True)
        out["event_time"] = times.dt.tz_localize(None).map(lambda t: t.isoformat())

    def cell(value: object) -> object:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if isinstance(value, float):
            return float(f"{value:.9g}")
        return value

    return sorted(
        (tuple(cell(v) for v in row) for row in out.astype(object).itertuples(index=False)),
        key=repr,
    )


def sql(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``tsplatform sql ...`` in this process (its Spark session); (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["sql", *args])
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.fixture(scope="module")
def materialized(services, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The raw day in a lake, and ``ASSETS`` materialized over it; returns the raw day."""
    lake = Lake(str(tmp_path_factory.mktemp("sql") / "lake"))
    raw = raw_day(DAY)
    lake.write_file(
        "raw_readings", DAY, "part-1.parquet", pa.Table.from_pandas(raw, schema=RAW_READINGS_SCHEMA)
    )
    _materialize(lake, f"sql_{os.getpid()}")
    return raw


@pytest.mark.parametrize("dataset", list(CASES))
def test_sql_returns_the_rows_of_the_core(
    materialized: pd.DataFrame, capsys: pytest.CaptureFixture[str], dataset: str
) -> None:
    case = CASES[dataset]
    columns = ", ".join(f"`{c}`" for c in case.columns)
    query = (
        f"SELECT {columns} FROM {case.dataset} WHERE year='{DAY:%Y}' AND month='{DAY:%m}' AND day='{DAY:%d}'"
    )
    code, out, err = sql(capsys, query, "--limit", "0", "--format", "json")
    assert code == 0, err
    printed = pd.DataFrame([json.loads(line) for line in out.splitlines()], columns=list(case.columns))
    expected = case.expected(materialized)
    assert len(expected) > 0
    assert _rows(printed, case.columns) == _rows(expected, case.columns)


def test_sql_prints_a_table_and_honours_the_limit(
    materialized: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES["denoised_readings"]
    expected = case.expected(materialized)
    query = (
        f"SELECT position, count(*) AS n FROM tsplatform.{case.dataset} GROUP BY position ORDER BY position"
    )
    code, out, _ = sql(capsys, query)
    assert code == 0
    counts = expected.groupby("position").size()
    lines = out.splitlines()
    assert any("position" in line and "n" in line for line in lines[:3])  # the header
    for position, n in counts.items():
        assert any(position in line and f" {n} " in line for line in lines), (position, n, out)
    assert lines[-1] == f"{len(counts)} row{'s' if len(counts) != 1 else ''}"
    code, out, _ = sql(capsys, f"SELECT * FROM {case.dataset}", "--limit", "3", "--format", "csv")
    assert code == 0
    assert len(out.splitlines()) == 1 + 3  # header + the limit
    code, out, _ = sql(capsys, f"SELECT * FROM {case.dataset}", "-n", "2")
    assert out.splitlines()[-1] == "2 rows (--limit 2; more rows exist)"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("SELEC * FROM x", "PARSE_SYNTAX_ERROR"),
        ("SELECT * FROM no_such_table", "TABLE_OR_VIEW_NOT_FOUND"),
        ("SELECT no_such_column FROM denoised_readings", "UNRESOLVED_COLUMN"),
    ],
)
def test_a_bad_query_is_one_line_and_exit_2(
    materialized: pd.DataFrame, capsys: pytest.CaptureFixture[str], query: str, reason: str
) -> None:
    code, out, err = sql(capsys, query)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: query failed: ") and reason in err


def test_the_command_in_a_fresh_process_prints_only_its_error(tmp_path: Path) -> None:
    """The real ``tsplatform`` script: Spark's start-up chatter goes to the log, stderr has one line."""
    env = {**os.environ, "TSPLATFORM_STATE_DIR": str(tmp_path / "state")}
    script = Path(sys.executable).with_name("tsplatform")
    done = subprocess.run(
        [str(script), "sql", "SELECT * FROM tsplatform.validated_readings"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # a safety net only: seconds on an idle machine, many minutes on a crowded one
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "TABLE_OR_VIEW_NOT_FOUND" in done.stderr  # a fresh metastore has no tables
    assert (tmp_path / "state" / "logs" / "spark-sql.log").stat().st_size > 0
