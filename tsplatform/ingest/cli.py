"""The ``tsplatform ingest`` command (operators and scripts; the sensor does the same inside Dagster)."""

from __future__ import annotations

import json
import logging

import typer
from rich.console import Console
from rich.table import Table

from tsplatform.catalog import Catalog
from tsplatform.ingest.pipeline import ingest_once, summarize_days
from tsplatform.settings import get_settings


def ingest(
    once: bool = typer.Option(
        True, "--once/--no-once", help="Drain every topic up to its current end offsets, then exit."
    ),
    topic: list[str] = typer.Option(None, "--topic", "-t", help="Topic(s); default TSPLATFORM_TOPICS."),
    group: str = typer.Option("", help="Consumer group; default TSPLATFORM_CONSUMER_GROUP."),
    catalog: bool = typer.Option(True, "--catalog/--no-catalog", help="Sync the MongoDB catalog."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Ingest Kafka records into the lake exactly once (raw_readings + quarantine), then print a summary."""
    if not once:
        raise typer.BadParameter(
            "only --once is supported here; continuous ingestion is the Dagster sensor's job"
        )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    cat = Catalog(settings.mongo_uri, settings.mongo_db) if catalog else None
    try:
        summary = ingest_once(
            settings, topics=list(topic) if topic else None, group=group or None, catalog=cat
        )
    finally:
        if cat is not None:
            cat.close()
    if as_json:
        typer.echo(json.dumps({**summary.as_metadata(), "per_day": summarize_days(summary)}))
        return
    console = Console()
    table = Table(title=f"ingested into {settings.lake_uri}")
    for name in (
        "consumed",
        "readings",
        "landed",
        "quarantined",
        "skipped (already landed)",
        "series",
        "seconds",
    ):
        table.add_column(name, justify="right")
    table.add_row(
        str(summary.consumed),
        str(summary.readings),
        str(summary.landed),
        str(summary.quarantined),
        str(summary.skipped_existing),
        str(len(summary.series)),
        f"{summary.seconds:.2f}",
    )
    console.print(table)
    days = summarize_days(summary)
    if days:
        console.print("days touched: " + ", ".join(f"{d} ({n})" for d, n in days.items()))


def register(app: typer.Typer) -> None:
    """Add the ingestion commands to the ``tsplatform`` app."""
    app.command("ingest")(ingest)
