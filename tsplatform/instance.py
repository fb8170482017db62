"""The local Dagster instance: ``$DAGSTER_HOME``, by default ``<state>/dagster_home`` with the repo's
``dagster.yaml`` (what ``make`` sets up), for the commands that record runs in it (demo, backfill)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tsplatform.settings import Settings

REPO_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def new_dagster_home(path: Path) -> Path:
    """Create the directory ``path`` as a Dagster home on the repo's ``dagster.yaml`` (the local instance:
    SQLite storage, queued runs with the repo's limits) and return it; ``$DAGSTER_HOME`` is left alone.
    Raises FileExistsError when ``path`` exists (a fresh instance is meant)."""
    path.mkdir(parents=True)
    shutil.copyfile(REPO_DAGSTER_YAML, path / "dagster.yaml")
    return path


def ensure_dagster_home(settings: Settings) -> Path:
    """Set and return ``$DAGSTER_HOME`` (default ``<state>/dagster_home``), creating it with a copy of the
    repo's ``dagster.yaml`` when it has none."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.state_path / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and REPO_DAGSTER_YAML.is_file():
        shutil.copyfile(REPO_DAGSTER_YAML, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home
