"""The ``tsplatform`` command. Each area registers its own sub-commands; this file only assembles them."""

from __future__ import annotations

import sys

import click
import typer
from pydantic import ValidationError

from tsplatform.demo import register as register_demo
from tsplatform.errors import TsplatformError, from_validation_error
from tsplatform.ingest.cli import register as register_ingest
from tsplatform.ingest.replay import register as register_replay
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
register_replay(app)
register_sql_source(app)
register_retention(app)
register_demo(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``tsplatform`` script: a :class:`TsplatformError` (or an invalid setting)
    becomes ONE line ``error: <cause> (setting: NAME)`` on stderr and exit code 2, without traceback;
    Ctrl-C exits with 130. Any other exception is a bug and keeps its traceback."""
    try:
        result = app(args=argv, standalone_mode=False)
    except TsplatformError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        sys.exit(2)
    except ValidationError as exc:
        print(f"error: {from_validation_error(exc).one_line()}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except click.exceptions.ClickException as exc:  # usage errors: click's own message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
