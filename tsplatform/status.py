"""``tsplatform status``: the platform on one screen — services, latest partitions, series, champions.

Everything is read from where it lives, with short timeouts so a stopped service shows as such instead of
hanging the command: the local services' PID files and health checks, the lake's day partitions per
dataset, the MongoDB catalog's series documents and the model registry's champions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsplatform.lake import Lake
from tsplatform.settings import Settings

#: The lake datasets in graph order (what `status` lists; absent ones show as "-").
DATASETS = (
    "raw_readings",
    "quarantine",
    "validated_readings",
    "validation_rejects",
    "period_estimates",
    "regularized_readings",
    "denoised_readings",
    "decompositions",
    "hourly_readings",
    "series_profiles",
    "correlations",
    "training_sets",
    "forecasts",
    "forecast_accuracy",
)


@dataclass
class PlatformStatus:
    """What ``tsplatform status`` prints."""

    services: list[tuple[str, str, str]] = field(default_factory=list)  # (name, state, detail)
    partitions: list[tuple[str, int, dt.date | None]] = field(default_factory=list)  # (dataset, days, latest)
    series: int | None = None
    series_note: str = ""
    champions: list[dict[str, Any]] = field(default_factory=list)
    champions_note: str = ""


def _safely(what: Callable[[], Any]) -> tuple[Any, str]:
    try:
        return what(), ""
    except Exception as exc:  # a stopped service is a state to show, not a crash
        first = str(exc).split(":", 2)[:2]
        return None, f"{type(exc).__name__}: {':'.join(first)[:100]}"


def registered_champions(settings: Settings) -> list[dict[str, Any]]:
    """The registry's champions as rows (name, version, family, mse, naive_mse); none when the local
    registry store does not exist yet (looking must not create it)."""
    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists():
        return []
    from tsplatform.ml.registry import ModelRegistry

    registry = ModelRegistry(uri, settings.mlflow_artifact_root)
    return [
        {
            "name": c.name,
            "version": c.version,
            "family": c.family,
            "mse": c.metrics.get("mse"),
            "naive_mse": c.metrics.get("seasonal_naive_mse"),
        }
        for c in registry.champions()
    ]


def collect_status(settings: Settings) -> PlatformStatus:
    """Gather the status (never raises for an unreachable service: it is reported as a note)."""
    from tsplatform.services.manager import ServiceManager

    status = PlatformStatus()
    services, note = _safely(lambda: ServiceManager.from_settings(settings).status(timeout_s=2.0))
    if services is None:
        status.services.append(("services", "unknown", note))
    else:
        status.services = [(s.name, s.state, s.address or "") for s in services]

    lake = Lake(settings.lake_uri)
    for dataset in DATASETS:
        days, _ = _safely(lambda d=dataset: lake.days(d))
        days = days or []
        status.partitions.append((dataset, len(days), days[-1] if days else None))

    def count_series() -> int:
        from pymongo import MongoClient

        client: MongoClient = MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=2000)
        try:
            return int(client[settings.mongo_db]["series"].count_documents({}))
        finally:
            client.close()

    status.series, status.series_note = _safely(count_series)

    found, note = _safely(lambda: registered_champions(settings))
    status.champions = found or []
    status.champions_note = note
    return status


def render(status: PlatformStatus) -> Any:
    """A rich renderable of the status (one screen)."""
    from rich.console import Group
    from rich.table import Table

    services = Table(title="services", title_justify="left", show_edge=False)
    for column in ("service", "state", "address"):
        services.add_column(column)
    for name, state, detail in status.services:
        colour = {"healthy": "green", "stopped": "yellow"}.get(state, "red")
        services.add_row(name, f"[{colour}]{state}[/]", detail)

    partitions = Table(title="lake partitions", title_justify="left", show_edge=False)
    for column in ("dataset", "days", "latest"):
        partitions.add_column(column)
    for dataset, days, latest in status.partitions:
        partitions.add_row(dataset, str(days) if days else "-", latest.isoformat() if latest else "-")

    series = (
        f"series in the catalog: {status.series}"
        if status.series is not None
        else f"series in the catalog: unknown ({status.series_note})"
    )
    champions = Table(title="champions", title_justify="left", show_edge=False)
    for column in ("model", "version", "family", "mse", "seasonal naive mse"):
        champions.add_column(column)
    for champion in status.champions:
        champions.add_row(
            str(champion.get("name", "")),
            str(champion.get("version", "")),
            str(champion.get("family", "")),
            _number(champion.get("mse")),
            _number(champion.get("naive_mse")),
        )
    parts: list[Any] = [services, partitions, series]
    if status.champions:
        parts.append(champions)
    else:
        parts.append(
            "champions: none registered" + (f" ({status.champions_note})" if status.champions_note else "")
        )
    return Group(*parts)


def _number(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return "-"


def register(app: Any) -> None:
    """Add ``tsplatform status`` to the CLI."""
    from rich.console import Console

    from tsplatform.settings import get_settings

    @app.command("status")
    def status_command() -> None:
        """The platform on one screen: services, latest partitions per dataset, series, champions."""
        Console().print(render(collect_status(get_settings())))
