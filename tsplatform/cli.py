"""The ``tsplatform`` command. Each area registers its own sub-commands; this file only assembles them."""

from __future__ import annotations

import typer

from tsplatform.ingest.cli import register as register_ingest
from tsplatform.ingest.retention import register as register_retention
from tsplatform.ingest.sql_source import register as register_sql_source
from tsplatform.services.cli import app as services_app

app = typer.Typer(
    help="tsplatform: automated time-series MLOps for sensor data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(services_app, name="services", help="Local Kafka and MongoDB-wire services.")
register_ingest(app)
register_sql_source(app)
register_retention(app)


if __name__ == "__main__":  # pragma: no cover
    app()
