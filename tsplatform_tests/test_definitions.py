"""The whole Definitions object loads, and its asset graph matches the reviewed snapshot.

After an intended change of the graph, refresh the snapshot with
``TSPLATFORM_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tsplatform_tests/test_definitions.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from tsplatform.definitions import defs
from tsplatform.partitions import daily_partitions

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def graph_snapshot() -> dict[str, Any]:
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitions": type(partitions).__name__ if partitions else None,
            "materializable": node.is_materializable,
            "automation_condition": type(node.automation_condition).__name__
            if node.automation_condition
            else None,
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "sensors": {s.name: str(s.default_status.value) for s in repo.sensor_defs},
        "schedules": {s.name: s.cron_schedule for s in repo.schedule_defs},
        "resources": sorted(repo.get_top_level_resources()),
    }


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("ingest_kafka") is not None


def test_partitioned_assets_share_the_one_partitions_definition() -> None:
    graph = defs.get_repository_def().asset_graph
    partitioned = [
        graph.get(k) for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is not None
    ]
    assert partitioned
    for node in partitioned:
        assert node.partitions_def is daily_partitions, node.key


def test_asset_graph_matches_snapshot() -> None:
    current = graph_snapshot()
    if os.environ.get("TSPLATFORM_UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())
