"""The local Spark Connect server (opt-in service ``spark``): one long-lived Spark driver for every run.

Started by ``tsplatform services up spark`` with Spark's own launcher (``spark-submit --class
org.apache.spark.sql.connect.service.SparkConnectServer``, the jar ships with PySpark) and the driver
configuration of :func:`tsplatform.resources.spark.server_conf`: the settings' master, the Hive metastore and
warehouse of the state dir, the class archive. While it runs, ``services.env`` carries
``TSPLATFORM_SPARK_REMOTE=sc://127.0.0.1:<port>`` and every session of that state dir (Dagster runs,
``tsplatform sql``) is a client of it: the driver JVM's start-up, its metastore connection, its JIT warm-up
and its Python workers' imports are paid once per server instead of once per run. Elsewhere point
``TSPLATFORM_SPARK_REMOTE`` at any Spark Connect server (a cluster's).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from tsplatform.errors import ServiceUnavailable
from tsplatform.settings import Settings

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def spark_submit() -> Path:
    """PySpark's ``spark-submit`` launcher."""
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-submit"


def server_command(settings: Settings, port: int, markers: list[str]) -> list[str]:
    """The launcher command of a Spark Connect server on 127.0.0.1:``port`` for ``settings``' state dir;
    ``markers`` (JVM system properties) go on the driver's command line so the PID file can be verified."""
    from tsplatform.resources.spark import server_conf

    conf = server_conf(settings)
    java_opts = " ".join([*markers, conf.pop("spark.driver.extraJavaOptions", "")]).strip()
    cmd = [str(spark_submit()), "--class", SERVER_CLASS, "--name", "tsplatform Spark Connect"]
    cmd += ["--driver-memory", conf.pop("spark.driver.memory", "2g"), "--driver-java-options", java_opts]
    conf["spark.connect.grpc.binding.address"] = "127.0.0.1"
    conf["spark.connect.grpc.binding.port"] = str(port)
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    return cmd


#: Client-side switches that must not reach the server (its Python workers would take themselves for
#: Spark Connect clients).
CLIENT_VARIABLES = (
    "SPARK_REMOTE",
    "SPARK_CONNECT_MODE_ENABLED",
    "SPARK_LOCAL_REMOTE",
    "TSPLATFORM_SPARK_REMOTE",
)


def server_env() -> dict[str, str]:
    """The server's environment: this process's, without the Spark Connect client switches."""
    return {k: v for k, v in os.environ.items() if k not in CLIENT_VARIABLES}


def spark_connect_summary(address: str, timeout_s: float = 3.0) -> str:
    """One gRPC round trip to the server at ``host:port`` (its Spark version); raises ServiceUnavailable.

    Talks the protocol directly instead of building a Connect session, which would switch this whole
    process to Spark Connect mode (PySpark keeps that in an environment variable).
    """
    import grpc
    from pyspark.sql.connect.proto import base_pb2, base_pb2_grpc

    request = base_pb2.AnalyzePlanRequest(
        session_id=str(uuid.uuid4()),
        user_context=base_pb2.UserContext(user_id="tsplatform-health"),
        spark_version=base_pb2.AnalyzePlanRequest.SparkVersion(),
    )
    try:
        with grpc.insecure_channel(address) as channel:
            reply = base_pb2_grpc.SparkConnectServiceStub(channel).AnalyzePlan(request, timeout=timeout_s)
    except grpc.RpcError as exc:
        raise ServiceUnavailable(
            f"Spark Connect at {address} does not answer: {exc.code().name}",  # type: ignore[attr-defined]
            setting="TSPLATFORM_SPARK_REMOTE",
        ) from exc
    return f"Spark {reply.spark_version.version}"


def require_server(url: str, timeout_s: float = 5.0) -> str:
    """Fail fast, with ServiceUnavailable, unless the Spark Connect server at ``url`` (``sc://host:port``,
    optional ``/;params``) answers: a client session would otherwise retry for minutes before failing."""
    address = url.removeprefix("sc://").split("/", 1)[0].split(";", 1)[0]
    if ":" not in address:
        address += ":15002"  # Spark Connect's default port
    try:
        return spark_connect_summary(address, timeout_s=timeout_s)
    except ServiceUnavailable as exc:
        raise ServiceUnavailable(
            f"{exc.message}; start it with `tsplatform services up spark`, or unset TSPLATFORM_SPARK_REMOTE "
            "(`tsplatform services stop spark` drops it from services.env)",
            setting="TSPLATFORM_SPARK_REMOTE",
        ) from exc
