"""Ingestion commands: ``ingest``, ``replay``, ``sql-source``, ``retention``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ingestion commands to the ``tsplatform`` app."""
