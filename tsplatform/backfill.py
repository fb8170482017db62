"""``tsplatform backfill``: materialize a range of day partitions with Dagster, with a progress bar.

It runs Dagster's own ``dagster asset materialize --select ... --partition-range A...B`` (every asset
downstream of ``raw_readings`` has a single-run backfill policy, so the range is one run per asset, each
asset reading the whole range in one Spark job) against the instance of ``$DAGSTER_HOME``, and follows
the run's materializations in that instance: the bar counts (asset, day) pairs materialized out of
(selected assets × days). The run's own log goes to ``<state>/logs/backfill-<time>.log``.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: Seconds between two looks at the instance while the run goes on.
POLL_S = 2.0


def day_range(start: dt.date, end: dt.date) -> list[str]:
    """ISO days from ``start`` to ``end`` inclusive; ``ValueError`` if the range is empty."""
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def selected_assets(selection: str) -> list[Any]:
    """The asset keys of a Dagster selection string over ``tsplatform.definitions`` (partitioned ones)."""
    import dagster as dg

    from tsplatform.definitions import defs

    graph = defs.resolve_asset_graph()
    try:
        keys = dg.AssetSelection.from_string(selection).resolve(graph)
    except Exception as exc:  # Dagster's parser raises several types for a bad string
        raise ValueError(f"invalid asset selection {selection!r}: {exc}") from exc
    partitioned = sorted((k for k in keys if graph.get(k).is_partitioned), key=lambda k: k.to_user_string())
    if not partitioned:
        raise ValueError(f"the selection {selection!r} holds no day-partitioned asset")
    return partitioned


def materialized_pairs(instance: Any, keys: list[Any], days: list[str]) -> int:
    """(asset, day) pairs of ``keys`` × ``days`` materialized in ``instance``."""
    wanted = set(days)
    return sum(len(wanted & set(instance.get_materialized_partitions(key))) for key in keys)


def run_backfill(selection: str, start: dt.date, end: dt.date, log_dir: Path) -> tuple[int, int, Path]:
    """Run the backfill; returns (pairs materialized by it, pairs expected, log path).

    Raises ``RuntimeError`` (with the log's path) when Dagster's run fails.
    """
    import dagster as dg
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    days = day_range(start, end)
    keys = selected_assets(selection)
    total = len(keys) * len(days)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"backfill-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.log"
    command = [
        str(Path(sys.executable).parent / "dagster"),
        *("asset", "materialize", "-m", "tsplatform.definitions", "--select", selection),
        *("--partition-range", f"{days[0]}...{days[-1]}"),
    ]
    with dg.DagsterInstance.get() as instance:
        before = materialized_pairs(instance, keys, days)
        columns = (TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with log.open("wb") as out, Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task("", total=total, completed=before)
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
            while process.poll() is None:
                time.sleep(POLL_S)
                bar.update(task, completed=materialized_pairs(instance, keys, days))
            done = materialized_pairs(instance, keys, days)
            bar.update(task, completed=done)
    if process.returncode != 0:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        cause = lines[-1][:300] if lines else f"exit code {process.returncode}"
        raise RuntimeError(f"the backfill run failed: {cause} (log: {log})")
    return done - before, total, log


def register(app: Any) -> None:
    """Add ``tsplatform backfill`` to the CLI."""
    import typer

    from tsplatform.errors import BadInput
    from tsplatform.instance import ensure_dagster_home
    from tsplatform.settings import get_settings

    @app.command("backfill")
    def backfill(
        start: str = typer.Argument(..., help="First day, YYYY-MM-DD (UTC)."),
        end: str = typer.Argument(..., help="Last day, YYYY-MM-DD (UTC), inclusive."),
        select: str = typer.Option(
            "validated_readings*", "--select", help="Dagster asset selection (default: the whole graph)."
        ),
    ) -> None:
        """Materialize a range of days with Dagster (one run per asset), with a progress bar."""
        settings = get_settings()
        ensure_dagster_home(settings)
        try:
            first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
            done, total, log = run_backfill(select, first, last, settings.state_path / "logs")
        except ValueError as exc:
            hint = "hint: tsplatform backfill 2024-03-01 2024-03-21 --select 'period_estimates*'"
            raise BadInput(f"{exc} ({hint})") from exc
        except RuntimeError as exc:
            raise BadInput(str(exc)) from exc
        typer.echo(f"backfill {start}..{end}: {done} asset-days materialized ({total} selected); log: {log}")
