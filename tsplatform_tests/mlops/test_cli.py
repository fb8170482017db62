"""``tsplatform tune / forecast / models``: help, one-line errors, and real output from a lake + registry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from tsplatform.cli import main
from tsplatform.lake import Lake
from tsplatform.ml.datasets import INPUT_DATASET
from tsplatform.ml.models import LinearForecaster
from tsplatform.ml.pipeline import target_frames
from tsplatform.ml.registry import Lineage, ModelRegistry
from tsplatform.settings import get_settings
from tsplatform_tests.mlops.readings import CO2, DAYS, room_readings, write_days


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TSPLATFORM_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("TSPLATFORM_MLFLOW_URI", raising=False)
    monkeypatch.delenv("TSPLATFORM_LAKE_ROOT", raising=False)
    monkeypatch.setenv("COLUMNS", "300")  # rich tables: no truncated cells
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code or 0)


@pytest.mark.parametrize("command", ["tune", "forecast", "models"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture) -> None:
    assert run([command, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_default_registry_is_a_sqlite_store_under_the_state_dir(state: Path) -> None:
    assert get_settings().mlflow_tracking_uri == f"sqlite:///{state.resolve() / 'mlflow' / 'mlflow.db'}"
    assert get_settings().mlflow_artifact_root == (state.resolve() / "mlflow" / "artifacts").as_uri()


def test_errors_are_one_line(state: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["forecast", "--day", "2022-13-45"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == ["error: --day '2022-13-45' is not a date YYYY-MM-DD"]
    assert run(["tune"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"error: the lake has no {INPUT_DATASET} partition"), err


def test_models_and_forecast_from_the_registry(state: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["models"]) == 0
    assert "no champion registered" in capsys.readouterr().out

    readings = room_readings()
    lake = Lake(get_settings().lake_uri)
    write_days(lake, readings, INPUT_DATASET, DAYS[:6])
    frames, _ = target_frames(readings[readings["series_id"] == CO2])
    model = LinearForecaster(input_len=48, horizon=6).fit([frames[0].values[:-200]])
    metrics = {"mse": 1.0, "rmse": 1.0, "mae": 1.0, "mape": 1.0}
    ModelRegistry.from_settings().register_champion(
        CO2, model, family="linear", params={"horizon": 6}, metrics=metrics,
        extra_metrics={"seasonal_naive_mse": 2.0}, lineage=Lineage(["2022-10-15"], "c"),
    )  # fmt: skip

    assert run(["models"]) == 0
    out = capsys.readouterr().out
    assert "ts-woning_925038" in out and "linear" in out and "2022-10-15" in out

    assert run(["forecast", "--target", CO2]) == 0
    out = capsys.readouterr().out
    assert "forecasts of 2022-10-15" in out and "/1" in out
    written = lake.read_partition("forecasts", dt.date(2022, 10, 15))
    assert written is not None and written.num_rows == 6
