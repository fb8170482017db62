"""``tsplatform report`` and ``tsplatform status`` on a small hand-made lake (no services needed)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tsplatform.ids import series_id
from tsplatform.lake import Lake
from tsplatform.report import parse_days, write_report
from tsplatform.timeseries.impute import NOT_NEEDED

DAYS = [dt.date(2024, 3, 5), dt.date(2024, 3, 6)]
SERIES = [("room <b>1</b>", "CO2"), ("room <b>1</b>", "temp"), ("광 주 A", "CO2")]


def _write(lake: Lake, dataset: str, day: dt.date, frame: pd.DataFrame) -> None:
    lake.write_file(dataset, day, "part-0.parquet", pa.Table.from_pandas(frame, preserve_index=False))


def _grid(day: dt.date) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(day, tz="UTC"), periods=144, freq="10min").as_unit("ms")


def build_lake(root: Path, with_graph: bool = True) -> Lake:
    """Two days of three series; with_graph adds the downstream datasets of the asset graph."""
    lake = Lake(str(root))
    for day in DAYS:
        grid = _grid(day)
        base = {"validated": [], "regular": [], "denoised": [], "decomp": [], "forecasts": [], "accuracy": []}
        for position, type_name in SERIES:
            sid = series_id(position, type_name)
            key = {"series_id": sid, "position": position, "type_name": type_name}
            values = 400 + 50 * np.sin(np.arange(144) / 144 * 2 * np.pi)
            values[70] = 2000.0  # a spike
            kept = np.ones(144, dtype=bool)
            kept[30:33] = False  # a gap, imputed downstream
            base["validated"].append(pd.DataFrame({**key, "event_time": grid[kept], "value": values[kept]}))
            base["regular"].append(
                pd.DataFrame(
                    {
                        **key,
                        "event_time": grid,
                        "value": values,
                        "is_imputed": ~kept,
                        # nothing selected before the first day with a slot to fill in a real lake
                        "imputation_method": NOT_NEEDED if day == DAYS[0] else "linear",
                    }
                )
            )
            flagged = np.zeros(144, dtype=bool)
            flagged[70] = True
            cleaned = np.where(flagged, 450.0, values)
            base["denoised"].append(
                pd.DataFrame(
                    {
                        **key,
                        "event_time": grid,
                        "value": cleaned,
                        "value_raw": values,
                        "anomaly_score": flagged * 9.0,
                        "is_anomaly": flagged,
                        "processing": "clip",
                    }
                )
            )
            base["decomp"].append(
                pd.DataFrame(
                    {**key, "event_time": grid, "trend": 400.0, "seasonal_144": values - 400, "resid": 0.0}
                )
            )
            future = grid + pd.Timedelta(days=1)
            base["forecasts"].append(
                pd.DataFrame(
                    {**key, "issued_at": grid[-1], "event_time": future, "value": values, "model": f"{sid}@3"}
                )
            )
            base["accuracy"].append(
                pd.DataFrame(
                    [
                        {
                            **key,
                            "issued_at": grid[0],
                            "n": 144,
                            "mse": 1.0,
                            "mae": 0.5,
                            "mape": 0.1,
                            "naive_mse": 4.0,
                            "naive_mae": 1.5,
                            "naive_mape": 0.3,
                        }
                    ]
                )
            )
        _write(lake, "validated_readings", day, pd.concat(base["validated"]))
        if not with_graph:
            continue
        _write(lake, "regularized_readings", day, pd.concat(base["regular"]))
        _write(lake, "denoised_readings", day, pd.concat(base["denoised"]))
        _write(lake, "decompositions", day, pd.concat(base["decomp"]))
        _write(lake, "forecasts", day, pd.concat(base["forecasts"]))
        _write(lake, "forecast_accuracy", day, pd.concat(base["accuracy"]))
        co2, temp = series_id(*SERIES[0]), series_id(*SERIES[1])
        _write(
            lake,
            "correlations",
            day,
            pd.DataFrame(
                [{"position": SERIES[0][0], "series_a": co2, "series_b": temp, "pearson": 0.8, "n": 141}]
            ),
        )
        periods = pd.DataFrame(
            [
                {"series_id": series_id(p, t), "position": p, "type_name": t, "period_s": 600.0}
                for p, t in SERIES
            ]
        )
        _write(lake, "period_estimates", day, periods)
    return lake


def test_parse_days() -> None:
    available = [dt.date(2024, 3, d) for d in range(1, 8)]
    assert parse_days(None, available) == available
    assert parse_days("2", available) == [dt.date(2024, 3, 6), dt.date(2024, 3, 7)]
    assert parse_days("2024-03-02..2024-03-04", available) == [dt.date(2024, 3, d) for d in (2, 3, 4)]
    for bad in ("0", "yesterday", "2024-03-04..2024-03-02", "2024-13-01..2024-13-02"):
        with pytest.raises(ValueError):
            parse_days(bad, available)


def test_report_draws_every_series_and_position_offline(tmp_path: Path) -> None:
    lake = build_lake(tmp_path / "lake")
    out = tmp_path / "report.html"
    progress: list[tuple[int, int]] = []
    summary = write_report(lake, out, progress=lambda done, total, _label: progress.append((done, total)))
    page = out.read_text(encoding="utf-8")

    assert summary.series == 3 and summary.positions == 2 and summary.days == DAYS
    # per series: cleaning, decomposition and forecast figures; one heatmap for the position with 2 series
    assert summary.figures == 3 * 3 + 1
    assert len(re.findall(r'class="plotly-graph-div"', page)) == summary.figures
    assert progress == [(1, 3), (2, 3), (3, 3)]
    # self-contained: plotly.js inline, no external script
    assert "<script src=" not in page and re.search(r"plotly\.js v\d", page)
    # names are escaped text, never markup
    assert "room <b>1</b>" not in page and "room &lt;b&gt;1&lt;/b&gt;" in page
    assert "광 주 A" in page
    # the overview table carries the period, methods and errors of each series
    assert "10 min" in page and "linear" in page and "clip" in page
    assert summary.missing_datasets == ["series_profiles"]


def test_report_filters_series_and_days_and_tolerates_missing_datasets(tmp_path: Path) -> None:
    lake = build_lake(tmp_path / "lake", with_graph=False)
    out = tmp_path / "report.html"
    summary = write_report(lake, out, days="1", series=["광 주 A"])
    assert summary.series == 1 and summary.days == DAYS[-1:]
    assert summary.figures == 1  # only raw readings exist: one cleaning figure, nothing else
    assert "regularized_readings" in summary.missing_datasets
    assert "Not materialized for these days" in out.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="no series matches"):
        write_report(lake, out, series=["no such room"])
    with pytest.raises(ValueError, match="no validated_readings day"):
        write_report(Lake(str(tmp_path / "empty")), out)


def test_status_reports_stopped_services_and_lake_partitions(tmp_path: Path) -> None:
    from tsplatform.services.process import free_port
    from tsplatform.settings import Settings
    from tsplatform.status import collect_status

    build_lake(tmp_path / "state" / "lake")
    port = free_port()
    settings = Settings(
        state_dir=tmp_path / "state",
        mongo_uri=f"mongodb://127.0.0.1:{port}/?directConnection=true",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        mongo_port=port,
    )
    status = collect_status(settings)
    partitions = {dataset: (days, latest) for dataset, days, latest in status.partitions}
    assert partitions["validated_readings"] == (2, DAYS[-1])
    assert partitions["forecasts"] == (2, DAYS[-1])
    assert partitions["raw_readings"] == (0, None)
    states = {name: state for name, state, _ in status.services}
    assert states["kafka"] == "stopped" and states["mongo"] == "stopped"
    assert status.series is None and "ServerSelectionTimeoutError" in status.series_note
