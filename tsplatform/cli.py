"""The ``tsplatform`` command. Each area registers its own sub-commands; this file only assembles them."""

from __future__ import annotations

import importlib
import sys

import click
import typer
from pydantic import ValidationError

from tsplatform.errors import TsplatformError, from_validation_error
from tsplatform.services.cli import app as services_app

#: Top-level command -> module whose ``register(app)`` adds it. Only the module of the command being
#: run is imported by :func:`main` (pandas/pyarrow/pyspark cost seconds of start-up).
COMMAND_MODULES: dict[str, str] = {
    "ingest": "tsplatform.ingest.cli",
    "replay": "tsplatform.ingest.replay",
    "sql-source": "tsplatform.ingest.sql_source",
    "retention": "tsplatform.ingest.retention",
    "demo": "tsplatform.demo",
    "report": "tsplatform.report",
    "status": "tsplatform.status",
    "backfill": "tsplatform.backfill",
    "tune": "tsplatform.ml.cli",
    "forecast": "tsplatform.ml.cli",
    "models": "tsplatform.ml.cli",
    "sql": "tsplatform.sql",
}


def build_app(only: str | None = None) -> typer.Typer:
    """The ``tsplatform`` app with every command, or with just ``only`` (plus ``services``)."""
    cli = typer.Typer(
        help="tsplatform: automated time-series MLOps for sensor data.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    cli.add_typer(services_app, name="services", help="Local Kafka and MongoDB-wire services.")
    registered: set[str] = set()  # one module may add several commands (tsplatform.ml.cli)
    for command, module in COMMAND_MODULES.items():
        if (only is None or only == command) and module not in registered:
            registered.add(module)
            importlib.import_module(module).register(cli)
    return cli


def __getattr__(name: str) -> typer.Typer:  # ``from tsplatform.cli import app``: the full app, built lazily
    if name == "app":
        full = build_app()
        globals()["app"] = full
        return full
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``tsplatform`` script: a :class:`TsplatformError` (or an invalid setting)
    becomes ONE line ``error: <cause> (setting: NAME)`` on stderr and exit code 2, without traceback;
    Ctrl-C exits with 130. Any other exception is a bug and keeps its traceback."""
    try:
        args = sys.argv[1:] if argv is None else list(argv)
        first = next((a for a in args if not a.startswith("-")), None)
        cli = build_app(first if first in COMMAND_MODULES or first == "services" else None)
        result = cli(args=args, standalone_mode=False)
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
