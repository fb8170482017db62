"""detect_gaps (divide and round) and regularize, against exact synthetic ground truth and real extracts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsplatform.timeseries import GapReport, detect_gaps, estimate_period, regularize
from tsplatform_tests.timeseries.synthetic import sampled_grid

DATA = Path(__file__).resolve().parents[1] / "data"


def test_architecture_example_two_missing_samples() -> None:
    ts = pd.to_datetime(["2024-01-01 00:05:49", "2024-01-01 00:15:49", "2024-01-01 00:45:49"])
    report = detect_gaps(ts, pd.Timedelta("10min"))
    assert isinstance(report, GapReport)
    assert report.n_missing == 2
    expected = pd.to_datetime(["2024-01-01 00:25:49", "2024-01-01 00:35:49"], utc=True)
    assert list(report.missing) == list(expected)
    row = report.gaps.iloc[0]
    assert (row["start"], row["end"], row["n_missing"]) == (report.missing[0], report.missing[1], 2)
    assert row["prev_observed"] == pd.Timestamp("2024-01-01 00:15:49", tz="UTC")
    assert row["next_observed"] == pd.Timestamp("2024-01-01 00:45:49", tz="UTC")


@pytest.mark.parametrize(("missing_rate", "long_gaps"), [(0.0, 0), (0.1, 0), (0.5, 0), (0.2, 3)])
def test_missing_samples_match_ground_truth_exactly(missing_rate: float, long_gaps: int) -> None:
    grid = sampled_grid(
        3000, "300s", seed=21, missing_rate=missing_rate, long_gaps=long_gaps, duplicate_rate=0.02
    )
    estimate = estimate_period(grid.timestamps)
    report = detect_gaps(grid.timestamps, estimate)
    assert report.missing.equals(grid.missing)
    assert report.n_missing == len(grid.missing)
    assert report.gaps["n_missing"].sum() == report.n_missing
    assert report.period == pd.Timedelta("300s")


def test_jittered_samples_neither_create_nor_hide_gaps() -> None:
    grid = sampled_grid(3000, "600s", seed=22, jitter=0.2, missing_rate=0.3)
    report = detect_gaps(grid.timestamps, pd.Timedelta("600s"))
    assert report.n_missing == len(grid.missing)
    # each marked time is t_i + k·P from a jittered neighbour: within 2·20% of the true grid time
    error = np.abs((report.missing - grid.missing).total_seconds().to_numpy())
    assert error.max() <= 0.4 * 600


def test_no_gaps_and_degenerate_input() -> None:
    ts = pd.date_range("2024-01-01", periods=10, freq="1min", tz="UTC")
    assert detect_gaps(ts, "1min").n_missing == 0
    assert detect_gaps(ts.append(ts), "1min").gaps.empty  # duplicates are not gaps
    assert detect_gaps(ts[:1], "1min").n_missing == 0
    with pytest.raises(ValueError, match="positive duration"):
        detect_gaps(ts, pd.Timedelta(0))


def test_nab_dst_hole_is_twelve_missing_samples() -> None:
    df = pd.read_csv(DATA / "nab_ec2_request_latency_2014-03-08_09.csv")
    ts = pd.to_datetime(df["timestamp"])
    report = detect_gaps(ts, estimate_period(ts))
    assert report.n_missing == 12
    assert report.missing[0] == pd.Timestamp("2014-03-09 02:01", tz="UTC")
    assert report.missing[-1] == pd.Timestamp("2014-03-09 02:56", tz="UTC")


def test_b4b_scd41_gaps_are_the_twenty_minute_steps() -> None:
    df = pd.read_csv(DATA / "b4b_999169_scd41_2022-10-28_31.csv")
    ts = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    report = detect_gaps(ts, estimate_period(ts))
    steps = ts.sort_values().diff().dt.total_seconds()
    assert report.n_missing == int((np.rint(steps / 600) - 1).clip(lower=0).sum()) == 4


# --- regularize ---------------------------------------------------------------------------------------


def test_regularize_places_samples_on_the_phase_aligned_grid() -> None:
    grid = sampled_grid(500, "600s", seed=23, jitter=0.1, missing_rate=0.2)
    values = pd.Series(np.arange(len(grid.timestamps), dtype=float), index=grid.timestamps)
    estimate = estimate_period(grid.timestamps)
    out = regularize(values, estimate)
    assert out.index.freq == pd.Timedelta("600s")
    assert ((out.index.asi8 - estimate.phase.value) % estimate.period.value == 0).all()
    first_ns = int(grid.grid_index[0]) * grid.period.value + grid.phase.value
    first_true = pd.Timestamp(first_ns, unit="ns", tz="UTC")
    assert abs(out.index[0] - first_true) <= pd.Timedelta("5s")  # estimated phase within a few seconds
    assert out.notna().sum() == len(grid.timestamps)
    assert out.isna().sum() == len(grid.missing)
    assert out.attrs["collisions"] == 0
    assert out.dropna().to_numpy().tolist() == values.to_numpy().tolist()  # order and values kept


def test_regularize_collisions_keep_the_nearest_then_the_first() -> None:
    t0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")
    index = t0 + pd.to_timedelta([0, 58, 61, 120, 120, 240], unit="s")
    series = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], index=index)
    out = regularize(series, pd.Timedelta("60s"))
    assert out.to_numpy()[:3].tolist() == [1.0, 3.0, 4.0]  # 61 s beats 58 s; the first of two at 120 s
    assert np.isnan(out.iloc[3]) and out.iloc[4] == 6.0
    assert out.attrs["collisions"] == 2


def test_regularize_rejects_a_non_datetime_index() -> None:
    with pytest.raises(ValueError, match="DatetimeIndex"):
        regularize(pd.Series([1.0, 2.0]), pd.Timedelta("1min"))


def test_gap_free_report_is_the_built_empty_frame_and_a_fresh_copy() -> None:
    from tsplatform.timeseries.gaps import _NO_INT, _gap_frame

    times = pd.date_range("2024-01-01", periods=50, freq="10min", tz="UTC")
    first = detect_gaps(times, "10min")
    assert first.n_missing == 0
    expected = _gap_frame(_NO_INT, _NO_INT, _NO_INT, 600_000_000_000)
    pd.testing.assert_frame_equal(first.gaps, expected, check_index_type=True, check_column_type=True)
    first.gaps["n_missing"] = first.gaps["n_missing"].astype(float)  # a caller's change ...
    pd.testing.assert_frame_equal(detect_gaps(times, "10min").gaps, expected)  # ... does not leak


def test_gap_frame_equals_the_frame_built_from_index_columns() -> None:
    times = pd.date_range("2024-01-01", periods=60, freq="10min", tz="UTC").delete([3, 4, 20, 40, 41, 42])
    report = detect_gaps(times, "10min")
    idx = lambda values: pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns")  # noqa: E731
    expected = pd.DataFrame(
        {
            "start": idx(["2024-01-01 00:30", "2024-01-01 03:20", "2024-01-01 06:40"]),
            "end": idx(["2024-01-01 00:40", "2024-01-01 03:20", "2024-01-01 07:00"]),
            "n_missing": np.array([2, 1, 3], dtype=np.int64),
            "prev_observed": idx(["2024-01-01 00:20", "2024-01-01 03:10", "2024-01-01 06:30"]),
            "next_observed": idx(["2024-01-01 00:50", "2024-01-01 03:30", "2024-01-01 07:10"]),
        }
    )
    pd.testing.assert_frame_equal(report.gaps, expected, check_exact=True, check_index_type=True)
    assert report.n_missing == 6


def test_a_grid_too_fine_for_the_span_is_a_value_error_not_a_memory_error() -> None:
    """Found by the fuzz suite: a 1 ns period over a day asked numpy for 690 TB."""
    from tsplatform.timeseries import align, detect_gaps, regularize, resample

    index = pd.DatetimeIndex(["2024-03-01 00:00", "2024-03-09 00:00"], tz="UTC")
    series = pd.Series([1.0, 2.0], index=index)
    with pytest.raises(ValueError, match="MAX_GRID_SAMPLES"):
        regularize(series, pd.Timedelta(1, unit="ns"))
    with pytest.raises(ValueError, match="MAX_GRID_SAMPLES"):
        detect_gaps(index, pd.Timedelta(1, unit="ns"))
    for how in ("mean", "interpolate"):
        with pytest.raises(ValueError, match="MAX_GRID_SAMPLES"):
            resample(series, "1ns", how)
    with pytest.raises(ValueError, match="MAX_GRID_SAMPLES"):
        align({"a": series}, grid="1ns")
    assert len(regularize(series, pd.Timedelta("1min"))) == 8 * 1440 + 1  # a fine but sane grid still works
