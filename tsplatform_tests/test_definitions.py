"""The whole Definitions object loads, and its asset graph matches the reviewed snapshot.

After an intended change of the graph, (re)write the snapshot with
``TSPLATFORM_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tsplatform_tests/test_definitions.py``, review
``git diff tsplatform_tests/snapshots`` and commit it. That run writes the file and still fails (so a write
never passes as a check); a missing snapshot fails with this instruction.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from tsplatform.assets.ingest import INGEST_TAG
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


UPDATE_ENV = "TSPLATFORM_UPDATE_SNAPSHOTS"


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("ingest_kafka")
    assert list(job.graph.node_dict) == ["ingest_kafka_ranges"]
    assert job.tags.get(INGEST_TAG) == "kafka"
    assert {"kafka", "lake", "catalog"} <= job.get_required_resource_defs().keys()
    assert defs.get_repository_def().get_sensor_def("kafka_offset_sensor").job_name == "ingest_kafka"


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
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
        pytest.fail(f"{SNAPSHOT} written; review `git diff` of it, commit it, and rerun without {UPDATE_ENV}")
    if not SNAPSHOT.exists():
        pytest.fail(f"no snapshot at {SNAPSHOT}: write it with {UPDATE_ENV}=1 (see this module's docstring)")
    assert current == json.loads(SNAPSHOT.read_text())


def test_a_missing_snapshot_fails_with_the_way_to_write_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "definitions.json"
    monkeypatch.setattr(sys.modules[__name__], "SNAPSHOT", missing)
    monkeypatch.delenv(UPDATE_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match=f"{UPDATE_ENV}=1"):
        test_asset_graph_matches_snapshot()
    assert not missing.exists()


def test_updating_the_snapshot_writes_it_and_still_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "definitions.json"
    monkeypatch.setattr(sys.modules[__name__], "SNAPSHOT", target)
    monkeypatch.setenv(UPDATE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="written"):
        test_asset_graph_matches_snapshot()
    assert json.loads(target.read_text()) == graph_snapshot()
    monkeypatch.delenv(UPDATE_ENV)
    test_asset_graph_matches_snapshot()  # the written snapshot now matches


def test_everything_downstream_of_validated_readings_backfills_in_one_run() -> None:
    """``dagster asset materialize --select 'validated_readings*' --partition-range A...B`` (README,
    docs/operations.md) needs every selected asset to have the single-run backfill policy."""
    graph = defs.get_repository_def().asset_graph
    downstream = dg.AssetSelection.assets("validated_readings").downstream().resolve(graph)
    assert len(downstream) > 8  # the graph's assets and the ML assets below them
    without = sorted(
        key.to_user_string()
        for key in downstream
        if graph.get(key).backfill_policy != dg.BackfillPolicy.single_run()
    )
    assert without == []


def test_every_op_that_uses_spark_waits_for_the_spark_pool() -> None:
    """The embedded Derby metastore admits one JVM, so only one run may hold a Spark session
    (``dagster.yaml``: pools, granularity run): every asset and op that requires the ``spark`` resource
    is in the ``spark`` pool. The retention job's op was not, and its 03:00 run failed beside a graph run
    ("Unable to instantiate SessionHiveMetaStoreClient")."""
    repo = defs.get_repository_def()
    nodes = [node for job in repo.get_all_jobs() for node in job.graph.iterate_op_defs()]
    using_spark = {node.name: node.pools for node in nodes if "spark" in node.required_resource_keys}
    assert {"retention_op", "validated_readings", "denoised_readings"} <= set(using_spark)
    assert {name for name, pools in using_spark.items() if pools != {"spark"}} == set()
