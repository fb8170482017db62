"""``tsplatform backfill``: a range of days materialized by Dagster as one run, followed by a progress bar."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from tsplatform.backfill import day_range
from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
from tsplatform.instance import new_dagster_home
from tsplatform.lake import Lake
from tsplatform_tests.test_clean import raw_day

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAYS = [dt.date(2024, 3, 5), dt.date(2024, 3, 6)]


def _env(tmp: Path) -> dict[str, str]:
    home = new_dagster_home(tmp / "dagster_home")
    keep = "TSPLATFORM_JARS_DIR"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSPLATFORM_") or k == keep}
    env.update(
        DAGSTER_HOME=str(home),
        TSPLATFORM_STATE_DIR=str(tmp / "state"),
        TSPLATFORM_START_DATE="2024-03-01",
        TSPLATFORM_SPARK_MASTER="local[1]",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


def test_day_range() -> None:
    assert day_range(DAYS[0], DAYS[1]) == ["2024-03-05", "2024-03-06"]
    assert day_range(DAYS[0], DAYS[0]) == ["2024-03-05"]
    with pytest.raises(ValueError, match="before it starts"):
        day_range(DAYS[1], DAYS[0])


@pytest.mark.integration
def test_backfill_materializes_the_range_in_one_run(tmp_path: Path) -> None:
    import dagster as dg

    env = _env(tmp_path)
    lake = Lake(str(tmp_path / "state" / "lake"))
    for day in DAYS:
        table = pa.Table.from_pandas(raw_day(day), schema=RAW_READINGS_SCHEMA)
        lake.write_file("raw_readings", day, "part-1.parquet", table)
    command = [
        str(BIN / "tsplatform"),
        "backfill",
        "2024-03-05",
        "2024-03-06",
        "--select",
        "validated_readings",
    ]
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 asset-days materialized (2 selected)" in result.stdout
    assert lake.days("validated_readings") == DAYS

    os.environ["DAGSTER_HOME"], saved = env["DAGSTER_HOME"], os.environ.get("DAGSTER_HOME")
    try:
        with dg.DagsterInstance.get() as instance:
            assert instance.get_materialized_partitions(dg.AssetKey("validated_readings")) == {
                d.isoformat() for d in DAYS
            }
            assert len(instance.get_run_records()) == 1  # the range ran as one run
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = saved

    bad = subprocess.run(
        [*command[:2], "2024-03-06", "2024-03-05"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: the range ends (2024-03-05) before it starts (2024-03-06)")
