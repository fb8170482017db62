"""Register (create or update) a Kafka Connect connector from a ``{"name": ..., "config": {...}}`` file.

Usage: ``python register.py CONNECTOR_JSON CONNECT_URL``. Idempotent: ``PUT /connectors/<name>/config``
creates the connector or replaces its config. Waits up to ``--timeout`` seconds for the REST API and for
the connector to report RUNNING; exits non-zero with a one-line reason otherwise. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


def load_connector(path: Path) -> tuple[str, dict[str, str]]:
    """The connector's name and config from a Connect ``POST /connectors`` body file."""
    body = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
        raise ValueError(f"{path}: expected an object with a non-empty string 'name'")
    config = body.get("config")
    if not isinstance(config, dict) or not all(isinstance(v, str) for v in config.values()):
        raise ValueError(f"{path}: 'config' must be an object of string values")
    return body["name"], {**config, "name": body["name"]}


def _request(method: str, url: str, payload: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def register(name: str, config: dict[str, str], connect_url: str, timeout_s: float) -> str:
    """PUT the config, then wait for the connector's state; returns the final state ("RUNNING")."""
    base = connect_url.rstrip("/")
    quoted = urllib.parse.quote(name, safe="")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            status, body = _request("PUT", f"{base}/connectors/{quoted}/config", config)
            if status in (200, 201):
                break
            raise RuntimeError(f"Connect rejected connector {name!r}: HTTP {status}: {body}")
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka Connect at {base} not reachable: {error}") from error
            time.sleep(2)
    state = "UNKNOWN"
    while time.monotonic() <= deadline:
        status, body = _request("GET", f"{base}/connectors/{quoted}/status")
        if status == 200:
            state = body["connector"]["state"]
            tasks = [task["state"] for task in body.get("tasks", [])]
            if "FAILED" in (state, *tasks):
                raise RuntimeError(f"connector {name!r} FAILED: {json.dumps(body)[:2000]}")
            if state == "RUNNING" and tasks and all(t == "RUNNING" for t in tasks):
                return state
        time.sleep(2)
    raise RuntimeError(f"connector {name!r} not RUNNING after {timeout_s:.0f} s (state {state})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("connector_json", type=Path)
    parser.add_argument("connect_url")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds")
    args = parser.parse_args(argv)
    try:
        name, config = load_connector(args.connector_json)
        state = register(name, config, args.connect_url, args.timeout)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"register: {error}", file=sys.stderr)
        return 1
    print(f"register: connector {name!r} {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
