"""bench.graph_peer: the pandas peer split over processes computes what the one process computes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from bench.graph_day import GRAPH_ASSETS, write_days
from bench.graph_peer import _split_positions, run_peer, run_peer_split
from tsplatform.lake import Lake


def test_positions_are_split_into_shares_of_about_as_many_readings() -> None:
    raw = pd.DataFrame({"position": ["a"] * 50 + ["b"] * 30 + ["c"] * 25 + ["d"] * 5})
    shares = _split_positions(raw, 2)
    assert sorted(p for share in shares for p in share) == ["a", "b", "c", "d"]  # each exactly once
    assert sorted(shares) == [["a", "d"], ["b", "c"]]  # 55 and 55 readings


def test_the_split_peer_writes_the_rows_of_the_one_process(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    days = argparse.Namespace(history=0, series=8, samples=144, gap_rate=0.5, files=2, again=False)
    write_days(lake, days)
    (tmp_path / "one").mkdir()
    one = run_peer(lake, list(GRAPH_ASSETS), tmp_path / "one")
    split = run_peer_split(lake, list(GRAPH_ASSETS), tmp_path / "split", 2)
    assert split["processes"] == 2 and len(split["share_wall_s"]) == 2 and split["wall_s"] > 0
    assert one["steps"] == len(GRAPH_ASSETS)
    for i in (0, 1):  # both processes had series
        assert pq.read_metadata(tmp_path / "split" / f"share-{i}" / "validated_readings.parquet").num_rows > 0
    for asset in GRAPH_ASSETS:
        whole = pq.read_table(tmp_path / "one" / f"{asset}.parquet").to_pandas()
        shares = [tmp_path / "split" / f"share-{i}" / f"{asset}.parquet" for i in (0, 1)]
        parts = pd.concat([pq.read_table(p).to_pandas() for p in shares], ignore_index=True)
        assert len(whole) > 0, asset
        keys = [c for c in ("position", "series_id", "series_a", "series_b", "event_time") if c in whole]
        pd.testing.assert_frame_equal(
            parts.sort_values(keys).reset_index(drop=True)[sorted(whole.columns)],
            whole.sort_values(keys).reset_index(drop=True)[sorted(whole.columns)],
            check_exact=False,
            rtol=1e-9,
        )
