"""Local services for development and tests: Apache Kafka (KRaft) and a MongoDB-wire server.

``tsplatform services fetch|up|down|status|env|check`` (see :mod:`tsplatform.services.cli`), the
:class:`~tsplatform.services.manager.ServiceManager` API, and the health checks other code uses to fail
clearly (:func:`~tsplatform.services.health.check_kafka`, :func:`~tsplatform.services.health.check_mongo`).
"""

from __future__ import annotations

from tsplatform.services.health import check_kafka, check_mongo
from tsplatform.services.manager import SERVICE_NAMES, ServiceManager, ServiceStatus

__all__ = ["SERVICE_NAMES", "ServiceManager", "ServiceStatus", "check_kafka", "check_mongo"]
