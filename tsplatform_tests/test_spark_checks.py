"""``spark_checks.schema_failures`` (column rules in Spark SQL, the rest in Pandera on the executors) reports
what Pandera itself reports on the same rows, for every dataset model and the readings schema, on conforming
frames and on frames that break each kind of rule (regex, isin, ranges, nulls, NaN against null, infinity,
frame-wide checks, a wrong type, a missing column). Real Spark session."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pandera
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tsplatform import datasets
from tsplatform.datasets import FRAME_CHECK_COLUMNS, naive_utc
from tsplatform.resources.spark import spark_conf
from tsplatform.spark_checks import (
    GRID_TOLERANCE_S,
    duplicate_keys,
    grid_step_spread,
    schema_failures,
    schema_failures_and_aggregates,
)
from tsplatform.timeseries.validate import as_readings, readings_schema

pytestmark = pytest.mark.integration

ROWS = 12
ID = "b4b_co2-00000000000000ab"
TIMES = pd.date_range("2024-03-01", periods=ROWS, freq="h")


def session() -> SparkSession:
    builder = SparkSession.builder
    for key, value in spark_conf().items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _keys(**columns: Any) -> pd.DataFrame:
    return pd.DataFrame(
        {"series_id": ID, "position": "room 1", "type_name": "co2", **columns}, index=range(ROWS)
    )


GOOD: dict[str, Callable[[], pd.DataFrame]] = {
    "period_estimates": lambda: _keys(
        date="2024-03-01",
        period_s=600.0,
        confidence=np.linspace(0, 1, ROWS),
        jitter_s=1.0,
        phase_s=np.where(np.arange(ROWS) % 3 == 0, np.nan, 5.0),
        n_samples=144,
        note=None,
    ),
    "regularized_readings": lambda: _keys(
        event_time=TIMES,
        value=np.where(np.arange(ROWS) == 5, np.nan, 1.5),  # not imputed there
        is_imputed=np.arange(ROWS) % 2 == 0,
        imputation_method="linear",
        imputation_selected=["2024-03-01"] * (ROWS - 1) + [None],
        note=None,
    ),
    "denoised_readings": lambda: _keys(
        event_time=TIMES,
        value=np.arange(ROWS, dtype=float),
        value_raw=np.arange(ROWS, dtype=float),
        anomaly_score=0.25,
        is_anomaly=False,
        is_spike=False,
        processing="clip",
    ),
    "decompositions": lambda: _keys(
        event_time=TIMES, trend=1.0, seasonal_24=0.5, seasonal_168=np.nan, resid=0.1, note=None
    ),
    "hourly_readings": lambda: _keys(event_time=TIMES, mean=2.0, min=1.0, max=3.0, count=6),
    "series_profiles": lambda: _keys(
        date="2024-03-01",
        period_s=600.0,
        expected=144,
        present=140,
        duplicates=0,
        imputed=4,
        anomalous=1,
        missing_rate=0.03,
        anomaly_rate=0.01,
        mean=400.0,
        std=12.0,
        min=380.0,
        max=450.0,
        note=None,
    ),
    "correlations": lambda: pd.DataFrame(
        {
            "position": "room 1",
            "date": "2024-03-01",
            "series_a": [f"a{i:02d}" for i in range(ROWS)],
            "series_b": [f"b{i:02d}" for i in range(ROWS)],
            "pearson": np.linspace(-1, 1, ROWS),
            "n": 100,
        }
    ),
}

#: dataset -> column -> {row: value}: every kind of rule broken somewhere (pandas NaN and None both null)
BAD: dict[str, dict[str, dict[int, Any]]] = {
    "period_estimates": {
        "series_id": {0: "Not An Id", 1: None},
        "date": {2: "2024-3-1"},
        "period_s": {3: 0.0, 4: -1.0, 5: np.nan},
        "confidence": {6: 1.5},
        "phase_s": {7: 900.0},  # not inside the period: the frame-wide check
        "position": {8: None},
    },
    "regularized_readings": {
        "imputation_method": {0: "magic", 1: None},
        "imputation_selected": {2: "yesterday"},
        "value": {4: np.nan},  # row 4 is imputed: imputed_values_exist fails
        "series_id": {5: "ABC-00000000000000ab"},
    },
    "denoised_readings": {
        "value": {0: 99.0},  # processed though not flagged
        "anomaly_score": {1: 1.01, 2: -0.5, 3: np.nan},
        "processing": {4: "smooth"},
        "type_name": {5: None},
        "is_spike": {9: True},  # a spike not flagged as anomalous
    },
    "decompositions": {"series_id": {0: "x-1"}, "position": {1: None}},
    "hourly_readings": {"min": {0: 5.0}, "count": {1: -3}, "event_time": {2: TIMES[2] + pd.Timedelta("90s")}},
    "series_profiles": {"missing_rate": {0: 2.0}, "std": {1: -1.0}, "expected": {2: -1}, "date": {3: None}},
    "correlations": {"pearson": {0: 1.5, 1: np.nan}, "series_a": {2: "zz"}, "date": {3: "03/01/2024"}},
}


#: dataset -> column -> row: a NaN (kept apart from null by Spark) in the bad frames, where the frame-wide
#: checks must read it as pandas does
BAD_NAN: dict[str, dict[str, int]] = {
    "period_estimates": {"period_s": 10},  # a phase but no period: phase_inside_period fails
    "regularized_readings": {"value": 6},  # imputed without a value
    "denoised_readings": {"value_raw": 6, "value": 7, "anomaly_score": 8},  # 6 fails, 7 (value only) fails
    "hourly_readings": {"mean": 3},
    "series_profiles": {"std": 4},
    "correlations": {"pearson": 5},
    "decompositions": {"trend": 2},
}


def _frame(spark: SparkSession, rows: pd.DataFrame, nan: dict[str, int] | None = None) -> DataFrame:
    """``rows`` as a Spark DataFrame in one partition; ``nan``: column -> row whose value becomes a NaN that
    Spark keeps apart from null (pandas' NaN arrives as null). One partition: Pandera reports a column-level
    failure (a wrong dtype, a check raising) once per batch, and the reference below sees one frame."""
    frame = spark.createDataFrame(rows.assign(_row=np.arange(len(rows))))
    for column, row in (nan or {}).items():
        frame = frame.withColumn(
            column, F.when(F.col("_row") == row, F.lit(float("nan"))).otherwise(F.col(column))
        )
    return frame.drop("_row").coalesce(1)


def _pandera(
    frame: DataFrame, model: Any, prepare: Callable[[pd.DataFrame], pd.DataFrame] = naive_utc
) -> dict[tuple[str, str], int]:
    out = datasets.schema_failures(model, frame.toPandas(), prepare)
    return {(r.check, r.column): int(r.n) for r in out.itertuples()}


def _spark(
    frame: DataFrame, model: Any, prepare: Callable[[pd.DataFrame], pd.DataFrame] = naive_utc
) -> dict[tuple[str, str], int]:
    total, cases = schema_failures(frame, model, prepare, sample=1000)
    assert total == sum(int(c["n"]) for c in cases)
    return {(c["check"], c["column"]): int(c["n"]) for c in cases}


def _bad_rows(dataset: str) -> pd.DataFrame:
    rows = GOOD[dataset]()
    for column, changes in BAD[dataset].items():
        values = rows[column].astype(object) if rows[column].dtype.kind in "iub" else rows[column].copy()
        for row, value in changes.items():
            values.iloc[row] = value
        rows[column] = values
    return rows


@pytest.mark.parametrize("dataset", sorted(GOOD))
def test_same_failures_as_pandera_for_every_model(dataset: str) -> None:
    spark = session()
    model = datasets.DATASETS[dataset][1]
    good = _frame(spark, GOOD[dataset](), nan={"value": 3} if dataset == "regularized_readings" else None)
    assert _spark(good, model) == _pandera(good, model) == {}
    bad = _frame(spark, _bad_rows(dataset), nan=BAD_NAN[dataset])
    expected = _pandera(bad, model)
    assert len(expected) >= 2, expected  # the bad frame breaks several rules
    assert _spark(bad, model) == expected


def test_nan_and_infinity_in_readings_as_pandera_sees_them() -> None:
    """The readings schema: custom checks (``is_str``, ``is_finite``) in SQL; a NaN kept as NaN by Spark
    counts as missing (not_nullable) and not as infinite, as in pandas."""
    spark = session()
    rows = _keys(event_time=TIMES, value=np.arange(ROWS, dtype=float))
    rows.loc[1, "value"] = np.inf
    rows.loc[2, "value"] = -np.inf
    rows.loc[3, "series_id"] = None
    frame = _frame(spark, rows, nan={"value": 4})
    expected = _pandera(frame, readings_schema, as_readings)
    assert expected == {
        ("is_finite", "value"): 2,
        ("not_nullable", "value"): 1,
        ("not_nullable", "series_id"): 1,
    }
    assert _spark(frame, readings_schema, as_readings) == expected
    good = _frame(spark, _keys(event_time=TIMES, value=np.arange(ROWS, dtype=float)))
    assert _spark(good, readings_schema, as_readings) == {}


def test_wrong_types_and_missing_columns_as_pandera_sees_them() -> None:
    spark = session()
    model = datasets.PeriodEstimatesModel
    rows = GOOD["period_estimates"]().drop(columns=["jitter_s"])
    rows["n_samples"] = rows["n_samples"].astype(float)  # int64 expected
    rows["confidence"] = rows["confidence"].astype(str)  # float64 expected: Pandera checks the column
    frame = _frame(spark, rows)
    expected = _pandera(frame, model)
    assert {("column_in_dataframe", "PeriodEstimatesModel"), ("dtype('int64')", "n_samples")} <= set(expected)
    assert _spark(frame, model) == expected
    with_null = _frame(spark, GOOD["period_estimates"]().astype({"n_samples": object}).assign(n_samples=None))
    assert _spark(with_null, model) == _pandera(with_null, model)  # int column of nulls: dtype + not_nullable


def test_a_custom_column_check_runs_in_pandera() -> None:
    spark = session()
    schema = pandera.DataFrameSchema(
        {
            "x": pandera.Column(float, pandera.Check(lambda s: s < 10, name="below_ten")),
            "y": pandera.Column(str),
        }
    )
    frame = _frame(spark, pd.DataFrame({"x": [1.0, 20.0, 30.0], "y": ["a", "b", None]}))
    assert (
        _spark(frame, schema) == _pandera(frame, schema) == {("below_ten", "x"): 2, ("not_nullable", "y"): 1}
    )


def test_every_frame_check_declares_the_columns_it_reads() -> None:
    """Each frame-wide check passes on a conforming frame cut to its declared columns (a column it reads
    but did not declare would make it fail there)."""
    for dataset, (_, model) in datasets.DATASETS.items():
        for check in model.to_schema().checks:
            columns = list(FRAME_CHECK_COLUMNS[str(check.title)])
            only = pandera.DataFrameSchema(checks=[check])
            assert datasets.schema_failures(only, GOOD[dataset]()[columns]).empty, (dataset, check.name)


@pytest.fixture
def pandera_columns(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The columns of every Pandera pass ``spark_checks`` makes (recorded, then run as usual)."""
    from tsplatform import spark_checks

    seen: list[list[str]] = []
    real = spark_checks._pandera_failures

    def recording(frame, schema, prepare, columns, sample):  # type: ignore[no-untyped-def]
        seen.append(list(columns))
        return real(frame, schema, prepare, columns, sample)

    monkeypatch.setattr(spark_checks, "_pandera_failures", recording)
    return seen


@pytest.mark.parametrize("dataset", sorted(GOOD))
def test_no_row_of_a_dataset_goes_to_python(dataset: str, pandera_columns: list[list[str]]) -> None:
    """Every rule of the dataset models runs in SQL (the frame-wide ones through their twins)."""
    model = datasets.DATASETS[dataset][1]
    assert _spark(_frame(session(), _bad_rows(dataset)), model)
    assert pandera_columns == []


def test_a_frame_check_without_a_sql_twin_runs_in_pandera_on_its_columns(
    monkeypatch: pytest.MonkeyPatch, pandera_columns: list[list[str]]
) -> None:
    monkeypatch.delitem(datasets.FRAME_CHECK_SQL, "tsplatform.datasets.HourlyReadingsModel.ordered")
    model = datasets.HourlyReadingsModel
    bad = _frame(session(), _bad_rows("hourly_readings"), nan=BAD_NAN["hourly_readings"])
    assert _spark(bad, model) == _pandera(bad, model)
    assert [set(columns) for columns in pandera_columns] == [
        set(FRAME_CHECK_COLUMNS["tsplatform.datasets.HourlyReadingsModel.ordered"])
    ]


def test_a_frame_check_named_like_a_models_does_not_borrow_its_sql_twin() -> None:
    """Twins are found by the check's title (``module.Model.check``), not its name, which any schema may
    reuse: another schema's ``ordered`` runs as written, in Pandera."""
    schema = pandera.DataFrameSchema(
        {"x": pandera.Column(float)},
        checks=pandera.Check(lambda df: df["x"] > 0, name="ordered", n_failure_cases=5),
    )
    rows = pd.DataFrame({"x": [1.0, -2.0, 3.0, -4.0], "count": 0, "min": 1.0, "mean": 1.0, "max": 1.0})
    frame = _frame(session(), rows)  # the columns HourlyReadingsModel.ordered's twin reads, all passing it
    assert _spark(frame, schema) == _pandera(frame, schema) == {("ordered", "*"): 2}


def test_duplicate_keys_counts_the_rows_beyond_the_first_per_key_also_when_hashes_collide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The keys' hash decides alone only when no hash is shared; a shared one (forced here: every key
    hashes to 7) sends the count to the keys themselves, so a collision never reads as a duplicate."""
    keys = ["series_id", "event_time"]
    rows = pd.DataFrame(
        {"series_id": ["a", "a", "a", "b", "c", "c"], "event_time": TIMES[[0, 0, 0, 0, 0, 1]]}
    )
    frame = session().createDataFrame(rows)
    unique = frame.dropDuplicates(keys)
    assert (duplicate_keys(frame, keys), duplicate_keys(unique, keys)) == (2, 0)
    monkeypatch.setattr(F, "xxhash64", lambda *columns: F.lit(7).cast("long"))
    assert (duplicate_keys(frame, keys), duplicate_keys(unique, keys)) == (2, 0)


@pytest.mark.parametrize("dataset", ["denoised_readings", "hourly_readings"])
def test_the_callers_aggregates_join_the_rules_aggregation_and_change_no_failure(dataset: str) -> None:
    """Metadata counts and row checks computed with the model's rules: the same failures as alone, the
    aggregates' values as Spark computes them alone, on good and bad frames."""
    spark = session()
    model = datasets.DATASETS[dataset][1]
    for rows in (GOOD[dataset](), _bad_rows(dataset)):
        frame = _frame(spark, rows)
        aggregates = {
            "rows": F.count(F.lit(1)),
            "series": F.countDistinct("series_id"),
            "check:negative count": F.count(F.when(F.col(frame.columns[-1]).isNull(), F.lit(1))),
        }
        total, cases, values = schema_failures_and_aggregates(frame, model, aggregates, sample=1000)
        assert (total, cases) == schema_failures(frame, model, sample=1000)
        alone = frame.agg(*(c.alias(f"a{i}") for i, c in enumerate(aggregates.values()))).collect()[0]
        assert values == dict(zip(aggregates, alone, strict=True))
        assert values["rows"] == len(rows)


def test_grid_step_spread_is_zero_only_for_series_days_on_one_grid() -> None:
    """Per series-day: consecutive steps all equal (in any row order) -> 0; one slot shifted by a second ->
    its spread; one row -> null (nothing to compare); a gap of two slots is irregular."""
    times = pd.date_range("2024-03-01", periods=6, freq="10min")
    shifted = times.to_series().reset_index(drop=True)
    shifted[3] += pd.Timedelta(seconds=1)
    gap = times.delete(2)
    rows = pd.concat(
        [
            pd.DataFrame({"series_id": "regular", "event_time": times[[3, 0, 5, 1, 4, 2]]}),
            pd.DataFrame({"series_id": "shifted", "event_time": shifted}),
            pd.DataFrame({"series_id": "one", "event_time": times[:1]}),
            pd.DataFrame({"series_id": "gap", "event_time": gap}),
        ]
    )
    frame = session().createDataFrame(rows)
    spread = {
        r["series_id"]: r["spread"]
        for r in frame.groupBy("series_id")
        .agg(grid_step_spread(F.col("event_time")).alias("spread"))
        .collect()
    }
    assert spread["regular"] == 0.0
    assert spread["shifted"] == pytest.approx(2.0)  # steps of 601 s and 599 s
    assert spread["one"] is None
    assert spread["gap"] == pytest.approx(600.0)
    assert {k for k, v in spread.items() if v is not None and v > GRID_TOLERANCE_S} == {"shifted", "gap"}
