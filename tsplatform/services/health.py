"""Health checks of the configured Kafka and MongoDB endpoints (local or external clusters).

Both raise :class:`~tsplatform.errors.ServiceUnavailable` naming the address and the setting to change,
so that ingestion, the catalog and the CLI fail with one clear line instead of a client traceback.
"""

from __future__ import annotations

import re
import time
from typing import Any

from tsplatform.errors import ConfigError, ServiceUnavailable

KAFKA_SETTING = "TSPLATFORM_KAFKA_BOOTSTRAP"
MONGO_SETTING = "TSPLATFORM_MONGO_URI"

#: librdkafka errors after which retrying within the same check is pointless.
_KAFKA_FATAL_CODES = (
    "_ALL_BROKERS_DOWN",
    "_RESOLVE",
    "_AUTHENTICATION",
    "_SSL",
    "SASL_AUTHENTICATION_FAILED",
)


def redact_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***`` (``mongodb://u:secret@h`` -> ``mongodb://u:***@h``)."""
    return re.sub(r"(//[^:/@]+:)[^@/]*@", r"\1***@", uri)


def kafka_summary(bootstrap: str, client_config: dict[str, Any] | None = None, timeout_s: float = 10) -> str:
    """``"<n> broker(s), <m> topic(s)"`` from a successful metadata request; see :func:`check_kafka`."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list[KafkaError] = []
    config: dict[str, Any] = {
        **(client_config or {}),
        "bootstrap.servers": bootstrap,
        "socket.connection.setup.timeout.ms": max(1000, int(timeout_s * 1000)),
        "reconnect.backoff.max.ms": 500,
        "log_level": 0,
        "error_cb": errors.append,
    }
    try:
        admin = AdminClient(config)
    except (KafkaException, ValueError, TypeError) as exc:
        raise ConfigError(
            f"invalid Kafka client configuration for {bootstrap}: {exc}", setting=KAFKA_SETTING
        ) from exc
    deadline = time.monotonic() + timeout_s
    last: str = "no response"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            metadata = admin.list_topics(timeout=min(1.0, remaining))
            if metadata.brokers:
                return f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)"
            last = "no brokers in the metadata"
        except KafkaException as exc:
            last = _kafka_error_text(exc.args[0] if exc.args else exc)
        admin.poll(0)  # serves error_cb
        if any(code in _kafka_error_name(e) for e in errors for code in _KAFKA_FATAL_CODES):
            texts = [_kafka_error_text(e) for e in errors if "_ALL_BROKERS_DOWN" not in _kafka_error_name(e)]
            last = "connection refused" if "connection refused" in texts else (texts or [last])[-1]
            break
    raise ServiceUnavailable(f"Kafka at {bootstrap} is not reachable: {last}", setting=KAFKA_SETTING)


def _kafka_error_name(error: Any) -> str:
    name = getattr(error, "name", None)
    return name() if callable(name) else str(error)


def _kafka_error_text(error: Any) -> str:
    text = error.str() if hasattr(error, "str") and callable(error.str) else str(error)
    text = re.sub(r"\s+", " ", text).strip()
    if "Connection refused" in text:
        return "connection refused"
    return text or "unknown error"


def check_kafka(bootstrap: str, client_config: dict[str, Any] | None = None, timeout_s: float = 10) -> None:
    """Succeed when a metadata request (AdminClient ``list_topics``) to ``bootstrap`` answers.

    ``client_config`` holds extra librdkafka options (security settings). Gives up after ``timeout_s``
    seconds, or at once when every broker refuses the connection, resolution fails or authentication fails.
    Raises :class:`ServiceUnavailable` (setting ``TSPLATFORM_KAFKA_BOOTSTRAP``).
    """
    kafka_summary(bootstrap, client_config, timeout_s)


def mongo_summary(uri: str, timeout_s: float = 5) -> str:
    """``"server <version>"`` from a successful ``ping``; see :func:`check_mongo`."""
    from pymongo import MongoClient
    from pymongo.errors import ConfigurationError, InvalidURI, OperationFailure, PyMongoError

    shown = redact_uri(uri)
    timeout_ms = max(100, int(timeout_s * 1000))
    try:
        client: MongoClient = MongoClient(
            uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, socketTimeoutMS=timeout_ms
        )
    except (InvalidURI, ConfigurationError, ValueError, TypeError) as exc:
        raise ConfigError(f"invalid MongoDB URI {shown}: {_short(exc)}", setting=MONGO_SETTING) from exc
    try:
        client.admin.command("ping")
        info = client.server_info()
        return f"server {info.get('version', '?')}"
    except OperationFailure as exc:
        raise ServiceUnavailable(
            f"MongoDB at {shown} refused the request: {_short(exc)}", setting=MONGO_SETTING
        ) from exc
    except PyMongoError as exc:
        raise ServiceUnavailable(
            f"MongoDB at {shown} is not reachable: {_short(exc)}", setting=MONGO_SETTING
        ) from exc
    finally:
        client.close()


def check_mongo(uri: str, timeout_s: float = 5) -> None:
    """Succeed when the MongoDB(-wire) server at ``uri`` answers ``ping`` within ``timeout_s`` seconds.

    Raises :class:`ConfigError` for a malformed URI and :class:`ServiceUnavailable` otherwise (setting
    ``TSPLATFORM_MONGO_URI``). Passwords in the URI are never printed.
    """
    mongo_summary(uri, timeout_s)


def _short(exc: BaseException) -> str:
    """First clause of a pymongo error (drops the topology dump and timeout details)."""
    text = re.sub(r"\s+", " ", str(exc)).strip()
    text = text.split(", Timeout:")[0].split(" (configured timeouts:")[0]
    if "Connection refused" in text:
        return "connection refused"
    return text[:300] or type(exc).__name__
