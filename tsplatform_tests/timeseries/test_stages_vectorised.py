"""``hourly_series`` and ``profile_series`` over many series at once equal the per-series definitions
(``resample`` per series-day, the core ``profile`` per series-day): the executors call them once per
bucket of series, so no value may leak between series or days."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tsplatform.timeseries import stages
from tsplatform.timeseries.profile import profile
from tsplatform.timeseries.resample import resample

DAYS = [dt.date(2024, 3, 6), dt.date(2024, 3, 7)]


def one_series(i: int, rng: np.random.Generator) -> pd.DataFrame:
    """Two days of a series with a series-specific period and phase, NaN values, an hour whose values are
    all NaN, a gap of several hours without rows, and a repeated timestamp."""
    period = pd.Timedelta(minutes=[5, 10, 20, 90][i % 4])
    start = pd.Timestamp(DAYS[0], tz="UTC") + pd.Timedelta(seconds=int(rng.integers(0, 600)))
    times = pd.date_range(start, pd.Timestamp(DAYS[-1], tz="UTC") + pd.Timedelta(days=1), freq=period)[:-1]
    keep = ~((times.hour >= 3 + i % 5) & (times.hour < 7 + i % 5) & (times.day == DAYS[1].day))
    times = times[keep]
    values = rng.normal(20 + i, 1 + i % 3, len(times))
    values[rng.random(len(times)) < 0.1] = np.nan
    values[(times.hour == 12) & (times.day == DAYS[0].day)] = np.nan
    frame = pd.DataFrame(
        {
            "series_id": f"s{i:02d}",
            "position": f"room {i // 3}",
            "type_name": ["co2", "temp"][i % 2],
            "event_time": times,
            "value": values,
        }
    )
    return pd.concat([frame, frame.iloc[[5]]], ignore_index=True)  # a repeated timestamp


@pytest.fixture(scope="module")
def many() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.concat([one_series(i, rng) for i in range(9)], ignore_index=True)
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)  # rows of a bucket come unordered


def hourly_reference(rows: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The hourly definition on one series-day: ``resample`` mean/min/max and the count of values."""
    s = stages.values_by_time(rows)
    start = stages.day_start(day)
    s = s[(s.index >= start) & (s.index < start + stages.DAY)]
    count = s.notna().astype(np.int64).resample("1h", label="left", closed="left", origin="epoch").sum()
    out = pd.DataFrame({how: resample(s, "1h", how) for how in ("mean", "min", "max")})
    out["count"] = count.reindex(out.index, fill_value=0)
    return out.rename_axis("event_time").reset_index().assign(series_id=rows["series_id"].iloc[0])


def test_hourly_over_many_series_equals_resample_per_series_day(many: pd.DataFrame) -> None:
    out = stages.hourly_series(many, DAYS)
    expected = pd.concat(
        [hourly_reference(rows, day) for _, rows in many.groupby("series_id") for day in DAYS],
        ignore_index=True,
    )
    key = ["series_id", "event_time"]
    got = out.sort_values(key).reset_index(drop=True)
    want = expected.sort_values(key).reset_index(drop=True)
    assert len(got) == len(want) and (got["count"] == 0).any()  # hours without a value are kept
    pd.testing.assert_series_equal(got["event_time"], want["event_time"].dt.as_unit("ns"))
    for column in ("series_id", "mean", "min", "max", "count"):
        pd.testing.assert_series_equal(got[column], want[column], check_dtype=False, rtol=1e-12)
    positions = many.drop_duplicates("series_id").set_index("series_id")["position"]
    assert (got["position"] == got["series_id"].map(positions)).all()
    assert set(got["_day"]) == {d.isoformat() for d in DAYS}


def test_hourly_of_one_series_is_its_rows_of_the_bucket(many: pd.DataFrame) -> None:
    one = many[many["series_id"] == "s04"]
    alone = stages.hourly_series(one, DAYS)
    together = stages.hourly_series(many, DAYS)
    pd.testing.assert_frame_equal(alone, together[together["series_id"] == "s04"].reset_index(drop=True))


def sources_of(many: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Profile input rows: validated readings, rejects, a grid with imputed slots, denoised flags and one
    period estimate per series-day (none for one series-day)."""
    times = stages.utc(many["event_time"])
    base = many.assign(date=times.strftime("%Y-%m-%d"), event_time=times)
    validated = base.dropna(subset=["value"]).assign(source="validated", flag=False)
    rejects = base.sample(20, random_state=1).assign(source="rejects", flag=rng.random(20) < 0.5)
    grid = base.assign(source="regularized", flag=base["value"].isna() & (rng.random(len(base)) < 0.7))
    grid.loc[grid["flag"], "value"] = 1.0
    denoised = grid.assign(
        source="denoised", flag=pd.Series(rng.random(len(base)) < 0.05, index=base.index, dtype=object)
    )
    denoised.loc[rng.random(len(base)) < 0.01, "flag"] = None  # a null flag counts as not flagged
    estimate = (
        base.drop_duplicates(["series_id", "date"])
        .assign(source="estimate", flag=False, value=600.0, event_time=pd.NaT)
        .iloc[1:]
    )
    frame = pd.concat([validated, rejects, grid, denoised, estimate], ignore_index=True)
    return frame.sample(frac=1.0, random_state=5).reset_index(drop=True)


def profile_reference(sources: pd.DataFrame, day: dt.date) -> dict[str, object] | None:
    """The profile definition on one series-day (the per-series function before it was vectorised)."""
    key = day.isoformat()
    today = sources[sources["date"] == key]
    by = {n: today[today["source"] == n] for n in ("validated", "rejects", "regularized", "denoised")}
    if not (len(by["validated"]) or len(by["regularized"])):
        return None
    estimate = today[today["source"] == "estimate"]["value"]
    period_s = float(estimate.iloc[0]) if len(estimate) and np.isfinite(estimate.iloc[0]) else np.nan
    stats = profile(stages.values_by_time(by["validated"]))
    reg, den = by["regularized"], by["denoised"]
    expected = len(reg)
    observed = int((reg["value"].notna() & ~reg["flag"].astype("boolean").fillna(False).astype(bool)).sum())
    flagged = int(den["flag"].astype("boolean").fillna(False).sum())
    valued = int(den["value"].notna().sum())
    notes = [] if expected else ["no grid slots (no regularized rows)"]
    notes += [] if np.isfinite(period_s) else ["no period estimate"]
    return {
        "series_id": sources["series_id"].iloc[0],
        "date": key,
        "period_s": period_s,
        "expected": expected,
        "present": len(by["validated"]),
        "duplicates": int(by["rejects"]["flag"].astype("boolean").fillna(False).sum()),
        "imputed": int(reg["flag"].astype("boolean").fillna(False).sum()),
        "anomalous": flagged,
        "missing_rate": float(np.clip(1 - observed / expected, 0, 1)) if expected else np.nan,
        "anomaly_rate": flagged / valued if valued else np.nan,
        **{k: stats[k] for k in ("mean", "std", "min", "q01", "q25", "median", "q75", "q99", "max")},
        "note": "; ".join(notes) or None,
    }


def test_profiles_over_many_series_equal_the_profile_per_series_day(many: pd.DataFrame) -> None:
    sources = sources_of(many, np.random.default_rng(11))
    out = stages.profile_series(sources, DAYS)
    rows = [profile_reference(g, day) for _, g in sources.groupby("series_id") for day in DAYS]
    expected = pd.DataFrame([r for r in rows if r is not None])
    key = ["series_id", "date"]
    got = out.sort_values(key).reset_index(drop=True)
    want = expected.sort_values(key).reset_index(drop=True)
    assert len(got) == len(want) == 18
    assert got["note"].notna().sum() == 1 and got["duplicates"].sum() > 0 and got["anomalous"].sum() > 0
    for column in want.columns:
        pd.testing.assert_series_equal(got[column], want[column], check_dtype=False, rtol=0, atol=0)


def test_a_day_with_only_rejects_or_estimates_gets_no_profile() -> None:
    rows = pd.DataFrame(
        {
            "series_id": ["a", "a"],
            "position": "p",
            "type_name": "t",
            "event_time": [pd.Timestamp("2024-03-07 01:00", tz="UTC"), pd.NaT],
            "value": [1.0, 600.0],
            "date": "2024-03-07",
            "source": ["rejects", "estimate"],
            "flag": [True, False],
        }
    )
    assert stages.profile_series(rows, [dt.date(2024, 3, 7)]).empty
