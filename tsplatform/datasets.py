"""The datasets of the asset graph: their columns (Arrow schemas, a contract) and Pandera models.

Every per-series dataset has ``series_id``, ``position`` and ``type_name``; every per-sample one also
``event_time`` (UTC). Per-day summaries (``period_estimates``, ``series_profiles``, ``correlations``) carry
``date`` (``YYYY-MM-DD``, the partition's UTC day). ``note`` says why a series got no (or a partial) result
(too few samples, no usable season, ...); it is null when everything went as planned.

``regularized_readings.imputation_selected`` is the day the series' imputation method was chosen.
``decompositions`` has one ``seasonal_<samples>`` column per season length present in the written days
(see :func:`decompositions_schema`); a series without that season has nulls there.

The Pandera models validate pandas frames of these datasets (tz-aware or naive-UTC timestamps alike:
:func:`validate_frame` normalises them first). They back the schema checks of the assets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow
from pandera.typing import Series

from tsplatform.ingest.schema import UTC_MS
from tsplatform.timeseries.impute import IMPUTATION_METHODS, NOT_NEEDED

#: What ``imputation_method`` may hold: a method, ``none`` (the series could not be put on a grid) or
#: ``not_needed`` (no slot to fill yet, so no method selected: ``stages.regularize_series``).
IMPUTATION_LABELS = (*IMPUTATION_METHODS, "none", NOT_NEEDED)
#: What ``processing`` may hold (BENCHMARKS.md "Noise processing": none is a legitimate answer).
PROCESSING_METHODS = ("none", "drop", "clip", "ema")
#: failing rows a frame-wide check keeps as examples (their number is counted from the check's output):
#: Pandera reshapes each failing row of a frame-wide check cell by cell, ~0.25 ms a row, so an uncapped
#: failure over a day of 1.44M rows would take minutes to report
EXAMPLE_ROWS = 5
#: frame-wide check (its title, ``module.Model.check``) -> the columns it reads (``frame_check``): Pandera
#: gets only these on Spark
FRAME_CHECK_COLUMNS: dict[str, tuple[str, ...]] = {}
#: frame-wide check (its title) -> the rule as a Spark SQL predicate, true on passing rows (``frame_check``)
FRAME_CHECK_SQL: dict[str, str] = {}


def frame_check(*columns: str, sql: str | None = None) -> Callable[[Callable[..., Any]], Any]:
    """A model's frame-wide check that reads ``columns``: ``pa.dataframe_check`` with the failure cases capped
    at ``EXAMPLE_ROWS``, titled ``module.Model.check`` (unique, unlike its name), its columns recorded in
    ``FRAME_CHECK_COLUMNS``. ``sql``: the rule as a Spark SQL predicate (true where a row passes; null counts
    as failing), which :mod:`tsplatform.spark_checks` evaluates instead of sending the rows to Pandera. It
    must agree with the pandas rule, missing values included (pandas' NaN is Spark's null or NaN, and Spark
    orders NaN above every number and equal to itself): ``tsplatform_tests/test_spark_checks.py`` compares
    both on good and bad frames."""

    def decorate(fn: Callable[..., Any]) -> Any:
        title = f"{fn.__module__}.{fn.__qualname__}"
        FRAME_CHECK_COLUMNS[title] = columns
        if sql is not None:
            FRAME_CHECK_SQL[title] = sql
        return pa.dataframe_check(fn, n_failure_cases=EXAMPLE_ROWS, title=title)

    return decorate


def _present(column: str) -> str:
    """Spark SQL: ``column`` holds a value pandas would not call missing (not null, not NaN)."""
    return f"(`{column}` IS NOT NULL AND NOT isnan(`{column}`))"


_ID = [
    pyarrow.field("series_id", pyarrow.string()),
    pyarrow.field("position", pyarrow.string()),
    pyarrow.field("type_name", pyarrow.string()),
]
_NOTE = pyarrow.field("note", pyarrow.string())
_DATE = pyarrow.field("date", pyarrow.string())
_TIME = pyarrow.field("event_time", UTC_MS)


def _floats(*names: str) -> list[pyarrow.Field]:
    return [pyarrow.field(n, pyarrow.float64()) for n in names]


PERIOD_ESTIMATES = pyarrow.schema(
    [
        *_ID,
        _DATE,
        *_floats("period_s", "confidence", "jitter_s", "phase_s"),
        pyarrow.field("n_samples", pyarrow.int64()),
        _NOTE,
    ]
)
REGULARIZED_READINGS = pyarrow.schema(
    [
        *_ID,
        _TIME,
        pyarrow.field("value", pyarrow.float64()),
        pyarrow.field("is_imputed", pyarrow.bool_()),
        pyarrow.field("imputation_method", pyarrow.string()),
        pyarrow.field("imputation_selected", pyarrow.string()),
        _NOTE,
    ]
)
DENOISED_READINGS = pyarrow.schema(
    [
        *_ID,
        _TIME,
        *_floats("value", "value_raw", "anomaly_score"),
        pyarrow.field("is_anomaly", pyarrow.bool_()),
        pyarrow.field("is_spike", pyarrow.bool_()),
        pyarrow.field("processing", pyarrow.string()),
    ]
)
HOURLY_READINGS = pyarrow.schema(
    [*_ID, _TIME, *_floats("mean", "min", "max"), pyarrow.field("count", pyarrow.int64())]
)
PROFILE_COUNTS = ("expected", "present", "duplicates", "imputed", "anomalous")
PROFILE_STATS = ("mean", "std", "min", "q01", "q25", "median", "q75", "q99", "max")
SERIES_PROFILES = pyarrow.schema(
    [
        *_ID,
        _DATE,
        *_floats("period_s"),
        *[pyarrow.field(n, pyarrow.int64()) for n in PROFILE_COUNTS],
        *_floats("missing_rate", "anomaly_rate", *PROFILE_STATS),
        _NOTE,
    ]
)
CORRELATIONS = pyarrow.schema(
    [
        pyarrow.field("position", pyarrow.string()),
        _DATE,
        pyarrow.field("series_a", pyarrow.string()),
        pyarrow.field("series_b", pyarrow.string()),
        pyarrow.field("pearson", pyarrow.float64()),
        pyarrow.field("n", pyarrow.int64()),
    ]
)


def decompositions_schema(season_lengths: Iterable[int]) -> pyarrow.Schema:
    """``decompositions`` with one ``seasonal_<p>`` column per season length ``p`` (ascending)."""
    seasons = [f"seasonal_{p}" for p in sorted({int(p) for p in season_lengths})]
    return pyarrow.schema([*_ID, _TIME, *_floats("trend", *seasons, "resid"), _NOTE])


# --- Pandera models ----------------------------------------------------------------------------
class _PerSeries(pa.DataFrameModel):
    series_id: Series[str] = pa.Field(str_matches=r"^[a-z0-9_]{0,48}-[0-9a-f]{16}$")
    position: Series[str]
    type_name: Series[str]

    class Config:
        strict = False  # Hive partition columns and helper columns may ride along


class _PerDay(_PerSeries):
    date: Series[str] = pa.Field(str_matches=r"^\d{4}-\d{2}-\d{2}$")


class PeriodEstimatesModel(_PerDay):
    period_s: Series[float] = pa.Field(gt=0, nullable=True)
    confidence: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    jitter_s: Series[float] = pa.Field(ge=0, nullable=True)
    phase_s: Series[float] = pa.Field(ge=0, nullable=True)
    n_samples: Series[int] = pa.Field(ge=0)
    note: Series[str] = pa.Field(nullable=True)

    @frame_check(
        "phase_s",
        "period_s",
        sql=f"NOT {_present('phase_s')} OR ({_present('period_s')} AND phase_s < period_s)",
    )
    def phase_inside_period(cls, df: pd.DataFrame) -> Series[bool]:
        return df["phase_s"].isna() | (df["phase_s"] < df["period_s"])


class _PerSample(_PerSeries):
    event_time: Series[pd.Timestamp]


class RegularizedReadingsModel(_PerSample):
    value: Series[float] = pa.Field(nullable=True)
    is_imputed: Series[bool]
    imputation_method: Series[str] = pa.Field(isin=IMPUTATION_LABELS)
    imputation_selected: Series[str] = pa.Field(nullable=True, str_matches=r"^\d{4}-\d{2}-\d{2}$")
    note: Series[str] = pa.Field(nullable=True)

    @frame_check("is_imputed", "value", sql=f"NOT is_imputed OR {_present('value')}")
    def imputed_values_exist(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df["is_imputed"] | df["value"].notna()


class DenoisedReadingsModel(_PerSample):
    value: Series[float] = pa.Field(nullable=True)
    value_raw: Series[float] = pa.Field(nullable=True)
    anomaly_score: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    is_anomaly: Series[bool]
    is_spike: Series[bool]
    processing: Series[str] = pa.Field(isin=PROCESSING_METHODS)

    @frame_check("is_anomaly", "is_spike", sql="is_anomaly OR NOT is_spike")
    def spikes_are_flagged(cls, df: pd.DataFrame) -> Series[bool]:
        """A spike row is an anomalous row (it is processed with the alarms)."""
        return df["is_anomaly"] | ~df["is_spike"]

    @frame_check(
        "value",
        "value_raw",
        "is_anomaly",
        sql=(
            f"is_anomaly OR ({_present('value')} AND value = value_raw) "
            f"OR (NOT {_present('value')} AND NOT {_present('value_raw')})"
        ),
    )
    def unprocessed_unless_flagged(cls, df: pd.DataFrame) -> Series[bool]:
        """Processing only touches flagged rows (``ema`` flagged-scope, ``clip``, ``drop``)."""
        same = (df["value"] == df["value_raw"]) | (df["value"].isna() & df["value_raw"].isna())
        return df["is_anomaly"] | same


class DecompositionsModel(_PerSample):
    trend: Series[float] = pa.Field(nullable=True)
    resid: Series[float] = pa.Field(nullable=True)
    seasonal: Series[float] = pa.Field(nullable=True, alias=r"^seasonal_\d+$", regex=True)
    note: Series[str] = pa.Field(nullable=True)


class HourlyReadingsModel(_PerSample):
    mean: Series[float] = pa.Field(nullable=True)
    min: Series[float] = pa.Field(nullable=True)
    max: Series[float] = pa.Field(nullable=True)
    count: Series[int] = pa.Field(ge=0)

    @frame_check(
        "count",
        "min",
        "mean",
        "max",
        sql=(
            f"`count` = 0 OR ({_present('min')} AND {_present('mean')} AND {_present('max')} "
            "AND `min` <= `mean` + 1e-9 AND `mean` <= `max` + 1e-9)"
        ),
    )
    def ordered(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["count"] == 0) | ((df["min"] <= df["mean"] + 1e-9) & (df["mean"] <= df["max"] + 1e-9))

    @frame_check("event_time", sql="event_time = date_trunc('HOUR', event_time)")
    def on_the_hour(cls, df: pd.DataFrame) -> Series[bool]:
        t = pd.to_datetime(df["event_time"])
        return t == t.dt.floor("h")


class SeriesProfilesModel(_PerDay):
    period_s: Series[float] = pa.Field(gt=0, nullable=True)
    expected: Series[int] = pa.Field(ge=0)
    present: Series[int] = pa.Field(ge=0)
    duplicates: Series[int] = pa.Field(ge=0)
    imputed: Series[int] = pa.Field(ge=0)
    anomalous: Series[int] = pa.Field(ge=0)
    missing_rate: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    anomaly_rate: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    mean: Series[float] = pa.Field(nullable=True)
    std: Series[float] = pa.Field(ge=0, nullable=True)
    min: Series[float] = pa.Field(nullable=True)
    max: Series[float] = pa.Field(nullable=True)
    note: Series[str] = pa.Field(nullable=True)


class CorrelationsModel(pa.DataFrameModel):
    position: Series[str]
    date: Series[str] = pa.Field(str_matches=r"^\d{4}-\d{2}-\d{2}$")
    series_a: Series[str]
    series_b: Series[str]
    pearson: Series[float] = pa.Field(ge=-1 - 1e-9, le=1 + 1e-9, nullable=True)
    n: Series[int] = pa.Field(ge=0)

    @frame_check("series_a", "series_b", sql="series_a < series_b")
    def ordered_pairs(cls, df: pd.DataFrame) -> Series[bool]:
        return df["series_a"] < df["series_b"]

    class Config:
        strict = False


#: dataset -> (Arrow schema or None when it varies by day, Pandera model)
DATASETS: dict[str, tuple[pyarrow.Schema | None, type[pa.DataFrameModel]]] = {
    "period_estimates": (PERIOD_ESTIMATES, PeriodEstimatesModel),
    "regularized_readings": (REGULARIZED_READINGS, RegularizedReadingsModel),
    "denoised_readings": (DENOISED_READINGS, DenoisedReadingsModel),
    "decompositions": (None, DecompositionsModel),
    "hourly_readings": (HOURLY_READINGS, HourlyReadingsModel),
    "series_profiles": (SERIES_PROFILES, SeriesProfilesModel),
    "correlations": (CORRELATIONS, CorrelationsModel),
}


def naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    """tz-aware datetime columns as naive UTC ``datetime64[ns]`` (what Spark hands to pandas)."""
    out = frame
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.DatetimeTZDtype):
            if out is frame:
                out = frame.copy()
            out[name] = out[name].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
        elif pd.api.types.is_datetime64_dtype(dtype) and dtype != "datetime64[ns]":
            if out is frame:
                out = frame.copy()
            out[name] = out[name].astype("datetime64[ns]")
    return out


def checked_columns(model: type[pa.DataFrameModel] | pa.DataFrameSchema, columns: Sequence[str]) -> list[str]:
    """The ``columns`` (in their order) that ``model`` declares, regex fields matched: all its checks read,
    frame-wide ones included. A frame validated on these alone reports what the whole frame would (a
    declared column that is missing stays missing), without moving the other columns to Python."""
    schema = model.to_schema() if isinstance(model, type) else model
    patterns = [re.compile(name) for name, column in schema.columns.items() if column.regex]
    declared = {name for name, column in schema.columns.items() if not column.regex}
    return [c for c in columns if c in declared or any(p.search(c) for p in patterns)]


def schema_failures(
    model: type[pa.DataFrameModel] | pa.DataFrameSchema,
    frame: pd.DataFrame,
    prepare: Callable[[pd.DataFrame], pd.DataFrame] = naive_utc,
) -> pd.DataFrame:
    """The Pandera failures of ``prepare(frame)``, one row per (check, column): ``n`` failure cases and one
    example ``failure_case`` (empty when it conforms). A frame-wide check counts its failing rows (column
    ``*``), from its boolean output, not from the ``EXAMPLE_ROWS`` it reports."""
    try:
        model.validate(prepare(frame), lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        counted = {  # capped frame-wide checks that produced a row mask: name -> failing rows
            str(e.check.name): int((~e.check_output.astype(bool)).sum())
            for e in exc.schema_errors
            if getattr(e.check, "n_failure_cases", None) is not None and isinstance(e.check_output, pd.Series)
        }
        checks = cases["check"].astype(str)
        wide = (cases["schema_context"] == "DataFrameSchema") & checks.isin(counted)
        narrow = cases.loc[~wide, ["check", "column", "failure_case"]].astype(str)
        out = narrow.groupby(["check", "column"], sort=False, dropna=False).agg(
            n=("failure_case", "size"), failure_case=("failure_case", "first")
        )
        rows = [out.reset_index()]
        for name, n in counted.items():
            failing = cases.loc[wide & (checks == name), "index"]
            example = f"row {failing.min()}" if len(failing) else ""
            rows.append(pd.DataFrame({"check": [name], "column": ["*"], "n": [n], "failure_case": [example]}))
        return pd.concat(rows, ignore_index=True).astype({"check": str, "column": str, "n": "int64"})
    return pd.DataFrame(
        {
            "check": pd.Series(dtype=str),
            "column": pd.Series(dtype=str),
            "n": pd.Series(dtype="int64"),
            "failure_case": pd.Series(dtype=str),
        }
    )
