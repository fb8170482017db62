"""The ML datasets in the lake: the input readings, ``training_sets``, ``forecasts``, ``forecast_accuracy``.

Pure (pyarrow + pandas + :mod:`tsplatform.lake`): the Dagster assets and the ``tsplatform`` command both
call these, so a day computed by either is the same. Each dataset is one Parquet file per day partition
(``<day>.parquet``), replaced atomically. :data:`INPUT_DATASET` is the one place naming the readings the
models learn from and forecast.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from tsplatform.lake import Lake
from tsplatform.ml.pipeline import TargetFrame, forecast_rows, score_forecasts, target_frames, training_set

#: The readings the models learn from and forecast: the denoised series of the asset graph.
INPUT_DATASET = "denoised_readings"
INPUT_COLUMNS = ["series_id", "position", "type_name", "event_time", "value"]
#: Days of history a day's forecasts read (its own day and the ones before): context for every model.
FORECAST_HISTORY_DAYS = 7
#: Days of forecasts a day's accuracy reads (a forecast issued on D-1 reaches into D).
ACCURACY_LOOKBACK_DAYS = 2
UTC_MS = pa.timestamp("ms", tz="UTC")

FORECASTS_SCHEMA = pa.schema(
    [
        pa.field("series_id", pa.string(), nullable=False),
        pa.field("position", pa.string(), nullable=False),
        pa.field("type_name", pa.string(), nullable=False),
        pa.field("issued_at", UTC_MS, nullable=False),
        pa.field("event_time", UTC_MS, nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
    ]
)
ACCURACY_SCHEMA = pa.schema(
    [
        pa.field("series_id", pa.string(), nullable=False),
        pa.field("position", pa.string(), nullable=False),
        pa.field("type_name", pa.string(), nullable=False),
        pa.field("issued_at", UTC_MS, nullable=False),
        pa.field("n", pa.int64(), nullable=False),
        *[pa.field(m, pa.float64()) for m in ("mse", "mae", "mape", "naive_mse", "naive_mae", "naive_mape")],
    ]
)
TRAINING_SETS_SCHEMA = pa.schema(
    [
        pa.field("series_id", pa.string(), nullable=False),
        pa.field("position", pa.string(), nullable=False),
        pa.field("type_name", pa.string(), nullable=False),
        pa.field("feature", pa.string(), nullable=False),
        pa.field("feature_type_name", pa.string(), nullable=False),
        pa.field("role", pa.string(), nullable=False),
        pa.field("event_time", UTC_MS, nullable=False),
        pa.field("split", pa.string(), nullable=False),
        *[
            pa.field(c, pa.float64())
            for c in ("value", "value_scaled", "scale_center", "scale_scale", "period_s")
        ],
    ]
)


def window_days(day: dt.date, days: int, first: dt.date | None = None) -> list[dt.date]:
    """``days`` day partitions ending at ``day``, oldest first, none before ``first``."""
    window = [day - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
    return [d for d in window if first is None or d >= first]


def read_readings(lake: Lake, days: Sequence[dt.date], dataset: str = INPUT_DATASET) -> pd.DataFrame:
    """The readings of ``days`` (columns :data:`INPUT_COLUMNS`, ``event_time`` UTC; empty when none)."""
    table = lake.read_days(dataset, days, columns=INPUT_COLUMNS)
    if table is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in INPUT_COLUMNS})
    frame = table.to_pandas()
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    return frame


def write_day(lake: Lake, dataset: str, day: dt.date, frame: pd.DataFrame, schema: pa.Schema) -> None:
    """Replace ``dataset``'s partition of ``day`` by ``frame`` (columns of ``schema``)."""
    table = pa.Table.from_pandas(frame[[f.name for f in schema]], schema=schema, preserve_index=False)
    lake.write_file(dataset, day, f"{day.isoformat()}.parquet", table)


def build_training_set(
    lake: Lake,
    days: Sequence[dt.date],
    targets: Sequence[str] | None,
    val_fraction: float,
    test_fraction: float,
) -> tuple[pd.DataFrame, list[TargetFrame], dict[str, str]]:
    """The ``training_sets`` table of the window ``days`` (see :func:`tsplatform.ml.pipeline.training_set`),
    the target frames behind it and ``{series_id: reason}`` for targets skipped."""
    frames, skipped = target_frames(read_readings(lake, days), targets)
    return training_set(frames, val_fraction, test_fraction), frames, skipped


def forecast_day(
    lake: Lake, registry: Any, day: dt.date, targets: Sequence[str] | None, first: dt.date | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The ``forecasts`` rows of ``day``: from each target's last reading up to the end of ``day``, the next
    horizon from its registered champion; and ``{series_id: reason}`` for targets not forecast."""
    from tsplatform.ml.champion import serve_forecasts

    readings = read_readings(lake, window_days(day, FORECAST_HISTORY_DAYS, first))
    frames, skipped = target_frames(readings, targets, covariates=False)
    histories = {f.series_id: f.values for f in frames}
    type_names = {f.series_id: f.type_name for f in frames}
    predictions, labels, not_served = serve_forecasts(registry, histories, type_names)
    skipped.update(not_served)
    return forecast_rows(frames, predictions, labels), skipped


def accuracy_day(lake: Lake, day: dt.date, first: dt.date | None = None) -> pd.DataFrame:
    """``forecast_accuracy`` rows of ``day``: the forecasts whose event_time falls in ``day`` against the
    actuals read so far (seasonal naive from the day before)."""
    days = window_days(day, ACCURACY_LOOKBACK_DAYS, first)
    table = lake.read_days("forecasts", days)
    if table is None:
        return score_forecasts(pd.DataFrame(), pd.DataFrame())
    issued = table.to_pandas()
    for column in ("issued_at", "event_time"):
        issued[column] = pd.to_datetime(issued[column], utc=True)
    start = pd.Timestamp(day, tz="UTC")
    issued = issued[(issued["event_time"] >= start) & (issued["event_time"] < start + pd.Timedelta(days=1))]
    return score_forecasts(issued, read_readings(lake, days))
