"""``tsplatform tune``, ``forecast`` and ``models``: the ML pipeline from the command line.

They compute exactly what the assets do (the same functions of :mod:`tsplatform.ml.datasets` and
:mod:`tsplatform.ml.champion`) on the lake and the registry of the settings, without Dagster:

- ``tune``: the training set of a day's window (written to ``training_sets``), a Ray Tune search per target
  with a progress bar (trials done / total, best validation MSE so far), the champion registered;
- ``forecast``: the day's next-horizon forecasts from the champions (written to ``forecasts``), printed;
- ``models``: the registered champions with their held-out metrics beside seasonal naive.
"""

from __future__ import annotations

import datetime as dt
import math

import typer

from tsplatform.errors import BadInput, ConfigError

DAY_HELP = "Day partition (YYYY-MM-DD, UTC) whose window is used; default the newest day of the input."


def _day(value: str | None, lake: object) -> dt.date:
    from tsplatform.ml.datasets import INPUT_DATASET

    if value:
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise BadInput(f"--day {value!r} is not a date YYYY-MM-DD") from exc
    days = lake.days(INPUT_DATASET)  # type: ignore[attr-defined]
    if not days:
        raise BadInput(f"the lake has no {INPUT_DATASET} partition yet: ingest and validate readings first")
    return days[-1]


def _registry():  # type: ignore[no-untyped-def]
    from tsplatform.ml.registry import ModelRegistry

    try:
        return ModelRegistry.from_settings()
    except Exception as exc:  # MlflowException and SQLAlchemy errors: a bad URI or an unreachable server
        raise ConfigError(f"cannot open the MLflow registry: {exc}", setting="TSPLATFORM_MLFLOW_URI") from exc


def _fmt(value: float) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def tune_command(
    day: str | None = typer.Option(None, "--day", help=DAY_HELP),
    target: list[str] = typer.Option(
        [], "--target", help="series_id to tune (repeatable); default TSPLATFORM_FORECAST_TARGETS or all."
    ),
    scope: str = typer.Option("series", "--scope", help="'series': a model per series; 'global': per type."),
    num_samples: int | None = typer.Option(None, "--num-samples", min=1, help="Trials per target."),
    time_budget: float | None = typer.Option(None, "--time-budget", min=1, help="Seconds per target."),
    horizon: int | None = typer.Option(None, "--horizon", min=1, help="Steps ahead; default the setting."),
) -> None:
    """Tune models on Ray (ASHA) for a day's training window and register each target's champion."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from tsplatform.lake import Lake
    from tsplatform.ml.champion import global_target, tune_and_register
    from tsplatform.ml.datasets import TRAINING_SETS_SCHEMA, build_training_set, window_days, write_day
    from tsplatform.ml.pipeline import target_splits
    from tsplatform.settings import get_settings

    if scope not in ("series", "global"):
        raise BadInput(f"--scope must be 'series' or 'global', got {scope!r}")
    settings = get_settings()
    lake = Lake(settings.lake_uri)
    the_day = _day(day, lake)
    days = window_days(the_day, settings.training_window_days, settings.start_date)
    targets = list(target) or list(settings.forecast_targets) or None
    table, _, skipped = build_training_set(
        lake, days, targets, settings.validation_fraction, settings.test_fraction
    )
    console = Console(stderr=True)
    for sid, reason in skipped.items():
        console.print(f"[yellow]skipped {sid}: {reason}[/]")
    if table.empty:
        raise BadInput(f"no target has enough readings in {days[0]}..{days[-1]} to train on")
    write_day(lake, "training_sets", the_day, table, TRAINING_SETS_SCHEMA)
    splits = target_splits(table)
    groups = (
        {s.series_id: [s] for s in splits}
        if scope == "series"
        else {
            global_target(t): [s for s in splits if s.type_name == t] for t in {s.type_name for s in splits}
        }
    )
    registry = _registry()
    reports = []
    total = num_samples or settings.tune_num_samples
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("best val MSE {task.fields[best]}"), TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        for name, group in groups.items():
            task = progress.add_task(name[:40], total=total, best="-")

            def update(p: object, task: int = task) -> None:
                progress.update(task, completed=p.done, total=p.total, best=_fmt(p.best_val_mse))  # type: ignore[attr-defined]

            try:
                reports.append(
                    tune_and_register(
                        name, group, registry=registry, horizon=horizon or settings.forecast_horizon,
                        partitions=[d.isoformat() for d in days], num_samples=total,
                        time_budget_s=time_budget or settings.tune_time_budget_s,
                        max_epochs=settings.tune_max_epochs, families=settings.tune_families, progress=update,
                        num_cpus=settings.ray_num_cpus,
                    )
                )  # fmt: skip
            except ValueError as exc:
                console.print(f"[yellow]{name}: not tuned: {exc}[/]")
    result = Table(title=f"champions, window {days[0]}..{days[-1]} (test split)")
    for column in ("target", "model", "family", "test MSE", "seasonal naive MSE", "test MAE", "val MSE"):
        result.add_column(column)
    for r in reports:
        result.add_row(
            r.target, r.champion.label, r.champion.family, _fmt(r.test_metrics["mse"]),
            _fmt(r.naive_test_metrics["mse"]), _fmt(r.test_metrics["mae"]), _fmt(r.val_metrics["mse"]),
        )  # fmt: skip
    Console().print(result)
    if groups and not reports:
        raise BadInput("no target could be tuned (see the messages above)")


def forecast_command(
    day: str | None = typer.Option(None, "--day", help=DAY_HELP),
    target: list[str] = typer.Option([], "--target", help="series_id to forecast (repeatable); default all."),
    write: bool = typer.Option(True, "--write/--no-write", help="Write the day's forecasts partition."),
) -> None:
    """Forecast the next horizon of each target from its registered champion."""
    from rich.console import Console
    from rich.table import Table

    from tsplatform.lake import Lake
    from tsplatform.ml.datasets import FORECASTS_SCHEMA, forecast_day, write_day
    from tsplatform.settings import get_settings

    settings = get_settings()
    lake = Lake(settings.lake_uri)
    the_day = _day(day, lake)
    targets = list(target) or list(settings.forecast_targets) or None
    rows, skipped = forecast_day(lake, _registry(), the_day, targets, settings.start_date)
    console = Console()
    for sid, reason in skipped.items():
        Console(stderr=True).print(f"[yellow]not forecast {sid}: {reason}[/]")
    if rows.empty:
        raise BadInput(f"no forecast for {the_day}: no target has a champion and enough history")
    if write:
        write_day(lake, "forecasts", the_day, rows, FORECASTS_SCHEMA)
    table = Table(title=f"forecasts of {the_day} ({rows['series_id'].nunique()} series)")
    for column in ("series_id", "issued_at", "event_time", "value", "model"):
        table.add_column(column)
    for row in rows.head(200).itertuples():
        table.add_row(row.series_id, str(row.issued_at), str(row.event_time), f"{row.value:.4g}", row.model)
    console.print(table)
    if len(rows) > 200:
        console.print(f"... {len(rows) - 200} more rows")


def models_command() -> None:
    """List the registered champions with their held-out metrics beside seasonal naive."""
    from rich.console import Console
    from rich.table import Table

    champions = _registry().champions()
    console = Console()
    if not champions:
        console.print("no champion registered yet (run `tsplatform tune`)")
        return
    table = Table(title="champions (alias 'champion'; metrics on the held-out test split)")
    metrics = ("mse", "rmse", "mae", "mape", "seasonal_naive_mse", "val_mse")
    headers = ("MSE", "RMSE", "MAE", "MAPE %", "seasonal naive MSE", "val MSE")
    for column in ("target", "model", "family", *headers, "window", "registered"):
        table.add_column(column)
    for c in champions:
        figures = [_fmt(c.metrics.get(k, math.nan)) for k in metrics]
        window = c.lineage.get("partition_range", "")
        table.add_row(c.target, c.label, c.family, *figures, window, f"{c.created:%Y-%m-%d %H:%M}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``tune``, ``forecast`` and ``models`` to the ``tsplatform`` app."""
    app.command("tune")(tune_command)
    app.command("forecast")(forecast_command)
    app.command("models")(models_command)
