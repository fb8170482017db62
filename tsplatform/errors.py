"""The error model: every failure a user can fix is a :class:`TsplatformError` with a one-line cause.

The ``tsplatform`` command prints such errors as ONE line on stderr and exits with code 2, no traceback::

    error: Kafka at 127.0.0.1:9092 is not reachable: connection refused (setting: TSPLATFORM_KAFKA_BOOTSTRAP)

Raise the most specific subclass and name the setting (environment variable) that fixes it, if any.
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any


class TsplatformError(Exception):
    """Base class of the errors a user can act on.

    ``message`` is the cause in one line (newlines are folded); ``setting`` is the environment variable
    (e.g. ``TSPLATFORM_KAFKA_BOOTSTRAP``) that changes the outcome, or ``None``.
    """

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        self.message = " ".join(str(message).split())
        self.setting = setting
        super().__init__(self.message)

    def one_line(self) -> str:
        """``<cause> (setting: NAME)``: the text after ``error:`` on the command line."""
        return f"{self.message} (setting: {self.setting})" if self.setting else self.message

    def __str__(self) -> str:
        return self.one_line()


class ConfigError(TsplatformError):
    """A setting is invalid or conflicts with the machine (bad URI, port already taken...)."""


class PortInUse(ConfigError):
    """A port a local service must bind is held by a process that is not ours."""

    def __init__(self, port: int, *, service: str, setting: str | None = None) -> None:
        self.port = port
        self.service = service
        super().__init__(
            f"port {port} on 127.0.0.1 (needed by {service}) is already in use by another process; "
            "stop that process or choose another port",
            setting=setting,
        )


class MissingDependency(TsplatformError):
    """A required program or file is absent (java, mvn, service jars)."""


class ServiceUnavailable(TsplatformError):
    """A service (Kafka, MongoDB) cannot be reached, did not start, or did not become healthy."""


class BadInput(TsplatformError):
    """Input data or arguments that cannot be processed (the caller may quarantine instead)."""


def from_validation_error(exc: Any, env_prefix: str = "TSPLATFORM_") -> ConfigError:
    """Turn a pydantic ``ValidationError`` from ``Settings()`` into a one-line :class:`ConfigError`."""
    errors = exc.errors() if hasattr(exc, "errors") else []
    if not errors:
        return ConfigError(f"invalid settings: {exc}")
    first = errors[0]
    field = ".".join(str(part) for part in first.get("loc", ()) if part != "__root__")
    setting = f"{env_prefix}{field.split('.')[0].upper()}" if field else None
    value = first.get("input")
    shown = f" {value!r}" if isinstance(value, str | int | float) else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConfigError(f"invalid value{shown}: {first.get('msg', 'invalid')}{more}", setting=setting)


class LakeWriteError(TsplatformError):
    """Writing to the lake failed (disk full, permissions, storage gone); nothing partial is visible."""
