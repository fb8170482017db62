"""``tsplatform services ...``: local Kafka (KRaft) and MongoDB-wire server on 127.0.0.1.

Errors are :class:`~tsplatform.errors.TsplatformError`; ``tsplatform.cli.main`` prints them as one line.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tsplatform.errors import TsplatformError
from tsplatform.services.health import KAFKA_SETTING, MONGO_SETTING, kafka_summary, mongo_summary, redact_uri
from tsplatform.services.manager import DEFAULT_SERVICES, SERVICE_NAMES, ServiceManager
from tsplatform.settings import get_settings

app = typer.Typer(
    help="Local Kafka (KRaft) and MongoDB-wire services under the state dir, all on 127.0.0.1; on request "
    "also MariaDB (the sensor database), a Kafka Connect worker with Debezium and a Spark Connect server "
    "(one long-lived Spark driver for every run): "
    "`tsplatform services up kafka mongo mariadb connect spark`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

KafkaPort = Annotated[
    int | None, typer.Option("--kafka-port", help="Kafka port (TSPLATFORM_KAFKA_PORT, default 9092).")
]
ControllerPort = Annotated[
    int | None,
    typer.Option("--kafka-controller-port", help="KRaft controller port (TSPLATFORM_KAFKA_CONTROLLER_PORT)."),
]
MongoPort = Annotated[
    int | None, typer.Option("--mongo-port", help="MongoDB-wire port (TSPLATFORM_MONGO_PORT, default 27017).")
]
Names = Annotated[
    list[str] | None,
    typer.Argument(help=f"Services ({', '.join(SERVICE_NAMES)}); default: {' '.join(DEFAULT_SERVICES)}."),
]


def _manager(
    kafka_port: int | None = None, kafka_controller_port: int | None = None, mongo_port: int | None = None
) -> ServiceManager:
    return ServiceManager.from_settings(
        kafka_port=kafka_port, kafka_controller_port=kafka_controller_port, mongo_port=mongo_port
    )


@app.command()
def fetch(names: Names = None) -> None:
    """Resolve the service jars from Maven Central into the jar cache (once; later calls are instant)."""
    manager = _manager()
    for name, resolved in manager.fetch(names or DEFAULT_SERVICES).items():
        state = "resolved" if resolved else "up to date"
        typer.echo(f"{name:<6} jars {state} in {manager.jars_dir / name}")


@app.command()
def up(
    names: Names = None,
    kafka_port: KafkaPort = None,
    kafka_controller_port: ControllerPort = None,
    mongo_port: MongoPort = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service to be healthy.")] = 180.0,
) -> None:
    """Start Kafka and the MongoDB-wire server (idempotent) and write <state>/services.env."""
    manager = _manager(kafka_port, kafka_controller_port, mongo_port)
    manager.start_timeout_s = timeout
    for name, message in manager.up(names or DEFAULT_SERVICES).items():
        typer.echo(f"{name:<6} {message}")
    if manager.services_env_path.exists():
        typer.echo(f"client settings written to {manager.services_env_path}")


@app.command()
def down() -> None:
    """Stop the services this state dir started (by PID, after checking the process is ours)."""
    for name, message in _manager().down().items():
        typer.echo(f"{name:<6} {message}")


StopNames = Annotated[list[str], typer.Argument(help=f"Services to stop ({', '.join(SERVICE_NAMES)}).")]


@app.command()
def stop(names: StopNames) -> None:
    """Stop some services (by PID, after checking the process is ours); services.env no longer lists the
    stopped opt-in ones (e.g. `stop spark`: runs go back to a driver JVM each)."""
    manager = _manager()
    for name in names:
        typer.echo(f"{name:<6} {'stopped' if manager.stop(name) else 'not running'}")


@app.command()
def status() -> None:
    """One line per service: healthy / unhealthy / stopped, PID and address."""
    for service in _manager().status():
        typer.echo(service.line())


@app.command()
def env() -> None:
    """Print the ``export`` lines of the local services (``eval "$(tsplatform services env)"``)."""
    for line in _manager().env_lines():
        typer.echo(line)


@app.command()
def check(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service.")] = 10.0,
) -> None:
    """Check the CONFIGURED endpoints (TSPLATFORM_KAFKA_BOOTSTRAP, TSPLATFORM_MONGO_URI), local or not.

    Prints one line per service; failures go to stderr as ``error: ...`` and the exit code is 2.
    """
    settings = get_settings()
    failures = 0
    checks = (
        ("kafka", settings.kafka_bootstrap, KAFKA_SETTING,
         lambda: kafka_summary(settings.kafka_bootstrap, settings.kafka_security, timeout)),
        ("mongo", redact_uri(settings.mongo_uri), MONGO_SETTING,
         lambda: mongo_summary(settings.mongo_uri, timeout)),
    )  # fmt: skip
    for name, address, _setting, probe in checks:
        try:
            typer.echo(f"{name:<6} ok  {address}  {probe()}")
        except TsplatformError as exc:
            failures += 1
            typer.echo(f"error: {exc.one_line()}", err=True)
    if failures:
        raise typer.Exit(2)
