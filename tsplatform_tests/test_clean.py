"""validated_readings on a real Spark session and a real Dagster instance; its automation condition."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest

from tsplatform.assets.clean import REJECTS_SCHEMA, validated_readings
from tsplatform.ids import series_id
from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
from tsplatform.lake import Lake
from tsplatform.resources.lake import LakeResource
from tsplatform.resources.spark import spark_resource

DAY = dt.date(2024, 3, 5)
VALIDATED = dg.AssetKey("validated_readings")


def raw_day(day: dt.date) -> pd.DataFrame:
    """One day of raw readings of two series with known defects."""
    t0 = pd.Timestamp(day, tz="UTC")
    rows = []
    for i in range(48):  # 30-min readings, series A
        rows.append(("광 주 A", "CO2", t0 + pd.Timedelta(minutes=30 * i), 400.0 + i))
    rows.append(("광 주 A", "CO2", t0 + pd.Timedelta(minutes=30 * 5), 405.0))  # exact duplicate of i=5
    rows.append(("광 주 A", "CO2", t0 + pd.Timedelta(minutes=30 * 6), 999.0))  # same timestamp, other value
    rows.append(("광 주 A", "CO2", t0 + pd.Timedelta(minutes=30 * 7), 20_001.0))  # outside [rstart, rend]
    for i in range(24):  # hourly readings, series B
        rows.append(("a/b", "temp", t0 + pd.Timedelta(hours=i), 20.0))
    rows.append(("a/b", "temp", t0 - pd.Timedelta(hours=1), 21.0))  # belongs to the previous day
    frame = pd.DataFrame(rows, columns=["position", "type_name", "event_time", "value"])
    frame["series_id"] = [series_id(p, t) for p, t in zip(frame["position"], frame["type_name"], strict=True)]
    frame["event_time"] = frame["event_time"].dt.as_unit("ms")
    frame["rstart"], frame["rend"] = 0.0, 20_000.0
    frame["topic"], frame["partition"] = "t", 0
    frame["offset"] = range(len(frame))
    frame["ingested_at"] = pd.Timestamp("2024-03-06", tz="UTC").as_unit("ms")
    frame["schema_id"] = "s"
    for field in RAW_READINGS_SCHEMA:
        if field.name not in frame:
            frame[field.name] = None
    return frame[[f.name for f in RAW_READINGS_SCHEMA]]


@pytest.mark.integration
def test_validated_readings_on_spark(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lake = Lake(str(tmp_path / "lake"))
    raw = raw_day(DAY)
    lake.write_file(
        "raw_readings", DAY, "part-1.parquet", pa.Table.from_pandas(raw, schema=RAW_READINGS_SCHEMA)
    )
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [validated_readings],
            partition_key=DAY.isoformat(),
            instance=instance,
            resources={"spark": spark_resource(), "lake": LakeResource(root=lake.root)},
        )
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert {c.check_name for c in checks} == {
            "matches_reading_schema",
            "unique_series_timestamps",
            "every_raw_reading_accounted_for",
        }
        assert all(c.passed for c in checks)
        meta = result.asset_materializations_for_node("validated_readings")[0].metadata
        assert meta["dagster/row_count"].value == 48 + 24
        assert meta["rejected"].value == 4
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()  # the step's session (PySparkResource keeps it)
        hive = spark.sql(
            "SELECT count(*) AS n, count(DISTINCT series_id) AS s FROM tsplatform.validated_readings "
            "WHERE year='2024' AND month='03' AND day='05'"
        ).collect()[0]
        assert (hive["n"], hive["s"]) == (48 + 24, 2)
        rejected = spark.sql("SELECT reason FROM tsplatform.validation_rejects WHERE day='05'").toPandas()
        assert len(rejected) == 4
    valid = lake.read_partition("validated_readings", DAY).to_pandas()
    rejects = lake.read_partition("validation_rejects", DAY).to_pandas()
    assert len(valid) + len(rejects) == len(raw)
    assert not valid.duplicated(["series_id", "event_time"]).any()
    assert sorted(rejects["reason"]) == [
        "exact_duplicate",
        "outside_day",
        "same_timestamp",
        "value_out_of_range",
    ]
    assert set(valid["position"]) == {"광 주 A", "a/b"}
    a = valid[valid["position"] == "광 주 A"].set_index("event_time")["value"]
    assert (
        a.loc[pd.Timestamp(DAY, tz="UTC") + pd.Timedelta(minutes=180)] == 406.0
    )  # keep-first in offset order
    written = lake.read_partition("validation_rejects", DAY).schema  # written by Spark: every field nullable
    assert [(f.name, f.type) for f in written] == [(f.name, f.type) for f in REJECTS_SCHEMA]
    files = lake.partition_files("validated_readings", DAY)
    assert [p.rsplit("/", 1)[1] for p in files] == ["2024-03-05.parquet"]


def test_late_data_for_an_old_day_is_requested_downstream() -> None:
    """validated_readings is requested for every updated raw day, not only the newest one."""
    from tsplatform.definitions import defs

    with dg.instance_for_test() as instance:
        old, new = "2024-03-01", "2024-03-09"
        baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert baseline.total_requested == 0  # no data yet: nothing to validate
        for key in (old, new):
            instance.report_runless_asset_event(dg.AssetMaterialization("raw_readings", partition=key))
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor)
        requested = result.get_requested_partitions(VALIDATED)
        assert {old, new} <= requested
        # nothing new upstream -> nothing requested on the next evaluation
        again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert again.total_requested == 0
        # late data for the old day only -> only that day is requested
        instance.report_runless_asset_event(dg.AssetMaterialization("raw_readings", partition=old))
        late = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=again.cursor)
        assert late.get_requested_partitions(VALIDATED) == {old}
