"""``tsplatform.instance``: a fresh Dagster home holds the repo's ``dagster.yaml``; the default home is
created once and kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tsplatform.instance import REPO_DAGSTER_YAML, ensure_dagster_home, new_dagster_home
from tsplatform.settings import Settings


def test_a_new_home_holds_the_repo_dagster_yaml_and_is_never_reused(tmp_path: Path) -> None:
    home = new_dagster_home(tmp_path / "a" / "dagster_home")
    assert (home / "dagster.yaml").read_bytes() == REPO_DAGSTER_YAML.read_bytes()
    with pytest.raises(FileExistsError):
        new_dagster_home(home)


def test_the_default_home_is_set_created_once_and_its_config_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", "")  # unset for the code, restored after the test
    settings = Settings(state_dir=tmp_path / "state")
    home = ensure_dagster_home(settings)
    assert home == settings.state_path / "dagster_home"
    assert (home / "dagster.yaml").read_bytes() == REPO_DAGSTER_YAML.read_bytes()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")  # a user's edit
    assert ensure_dagster_home(settings) == home
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == "telemetry:\n  enabled: false\n"
    assert os.environ["DAGSTER_HOME"] == str(home)
