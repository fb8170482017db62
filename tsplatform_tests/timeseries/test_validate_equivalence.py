"""The fast paths of validate_readings / deduplicate against the reference implementations, and the
vectorised schema evaluation against Pandera's own lazy validation, on randomized and adversarial frames."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from tsplatform.timeseries import validate as v

NOW = pd.Timestamp("2022-11-23 06:00", tz="UTC")
DAY = dt.date(2022, 11, 22)
DAY_START_MS = 1669075200000
N_FRAMES = 150


def _times(rng: np.random.Generator, n: int) -> np.ndarray:
    """Epoch ms around DAY: mostly inside, some the day before / after / in the future, a few sub-ms."""
    ms = DAY_START_MS + rng.integers(-86_400_000, 2 * 86_400_000, n)
    return ms


def _event_time(rng: np.random.Generator, n: int, usual: bool) -> pd.Series | np.ndarray | list:
    ms = _times(rng, n)
    kind = rng.integers(0, 5 if usual else 8)
    nat = rng.random(n) < 0.1
    if kind <= 2:  # the usual: datetime64[ms, UTC] (Kafka Connect -> validated frames)
        s = pd.Series(pd.to_datetime(ms, unit="ms", utc=True)).astype("datetime64[ms, UTC]")
    elif kind == 3:  # naive ns (Spark hands back naive session-time stamps), some sub-millisecond
        s = pd.Series(pd.to_datetime(ms * 1_000_000 + rng.integers(0, 1_000_000, n), unit="ns"))
    elif kind == 4:  # another zone and unit
        s = pd.Series(pd.to_datetime(ms, unit="ms", utc=True)).dt.tz_convert("Asia/Seoul").dt.as_unit("us")
    elif kind == 5:  # epoch milliseconds as integers
        return ms
    elif kind == 6:  # strings, some unparseable
        text = pd.to_datetime(ms, unit="ms", utc=True).strftime("%Y-%m-%dT%H:%M:%S%z").to_numpy(dtype=object)
        text[rng.random(n) < 0.1] = "not a time"
        return text
    else:  # objects of mixed kinds
        out = np.array(pd.to_datetime(ms, unit="ms", utc=True).to_pydatetime(), dtype=object)
        out[rng.random(n) < 0.2] = None
        return out
    return s.mask(pd.Series(nat, index=s.index))


def _keys(rng: np.random.Generator, n: int, name: str, usual: bool) -> np.ndarray | pd.Series:
    values = np.array([f"{name}-{i}" for i in rng.integers(0, 2, n)], dtype=object)
    kind = rng.choice([0, 3]) if usual else rng.integers(0, 6)
    if kind == 0:  # adversarial entries
        bad = rng.random(n) < 0.2
        choices = np.array([None, np.nan, 7, 1.5, b"bytes", pd.NA], dtype=object)
        values[bad] = choices[rng.integers(0, choices.size, bad.sum())]
    elif kind == 1:
        return pd.Series(values, dtype="string")
    elif kind == 2:
        return pd.Series(values, dtype="category")
    return values


def _values(rng: np.random.Generator, n: int, usual: bool) -> np.ndarray:
    x = rng.normal(400, 300, n)
    x[rng.random(n) < 0.08] = np.nan
    x[rng.random(n) < 0.05] = np.inf
    x[rng.random(n) < 0.05] = -np.inf
    kind = 2 if usual else rng.integers(0, 6)
    if kind == 0:
        out = x.astype(object)
        out[rng.random(n) < 0.2] = "abc"
        out[rng.random(n) < 0.1] = None
        return out
    if kind == 1:
        return np.round(np.nan_to_num(x, nan=0, posinf=1, neginf=-1)).astype(np.int64)
    return x


def random_frame(rng: np.random.Generator, usual: bool = False) -> pd.DataFrame:
    """A reading frame with bad entries; ``usual``: the usual column dtypes (the fast path's domain)."""
    n = int(rng.integers(0, 40))
    cols: dict[str, object] = {
        "position": _keys(rng, n, "pos", usual),
        "type_name": _keys(rng, n, "type", usual),
        "series_id": _keys(rng, n, "sid", usual),
        "event_time": _event_time(rng, n, usual),
        "value": _values(rng, n, usual),
    }
    if rng.random() < 0.6:
        cols["rstart"] = np.where(rng.random(n) < 0.3, np.nan, 0.0)
        cols["rend"] = np.where(rng.random(n) < 0.3, np.nan, 800.0)
        if rng.random() < 0.15 and not usual:
            rend = np.full(n, 800.0, dtype=object)
            rend[rng.random(n) < 0.5] = "high"
            cols["rend"] = rend
    if rng.random() < 0.5:
        cols["offset"] = rng.permutation(n)
        cols["unit"] = "ppm"
    df = pd.DataFrame({k: (val.to_numpy() if isinstance(val, pd.Series) else val) for k, val in cols.items()})
    for k, val in cols.items():  # keep extension dtypes
        if isinstance(val, pd.Series):
            df[k] = val.to_numpy() if val.dtype == object else val.array
    kind = rng.integers(0, 4)
    if kind == 1:
        df.index = rng.permutation(n) + 100
    elif kind == 2:
        df.index = rng.integers(0, max(n // 2, 1), n)  # duplicate labels
    elif kind == 3:
        df.index = [f"r{i}" for i in range(n)]
    return df


def _assert_same(got: tuple[pd.DataFrame, pd.DataFrame], ref: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    for a, b in zip(got, ref, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True, check_index_type=True, check_column_type=True)


@pytest.mark.parametrize("seed", range(N_FRAMES))
def test_validate_readings_equals_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    df = random_frame(rng, usual=seed % 2 == 0)
    before = df.copy()
    day = DAY if rng.random() < 0.7 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandera / pandas warnings of the reference path on odd frames
        ref = v._validate_readings_reference(df, day=day, now=NOW)
        got = v.validate_readings(df, day=day, now=NOW)
    _assert_same(got, ref)
    pd.testing.assert_frame_equal(df, before)  # the input is never modified


def test_the_fast_path_is_taken_for_usual_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("reference path used")

    n = 150
    ms = DAY_START_MS + np.arange(n) * 500_000
    df = pd.DataFrame(
        {
            "position": "room",
            "type_name": "CO2",
            "series_id": "room--co2",
            "event_time": pd.Series(pd.to_datetime(ms, unit="ms", utc=True)).astype("datetime64[ms, UTC]"),
            "value": np.r_[np.nan, np.full(n - 1, 420.0)],
            "rstart": 0.0,
            "rend": 5000.0,
        }
    )
    ref = v._validate_readings_reference(df, day=DAY, now=NOW)
    monkeypatch.setattr(v, "_validate_readings_reference", fail)
    got = v.validate_readings(df, day=DAY, now=NOW)
    _assert_same(got, ref)
    assert got[1]["reason"].tolist() == ["non_finite_value"]


def test_nat_cutoff_behaves_like_the_reference() -> None:
    df = random_frame(np.random.default_rng(1), usual=True)
    _assert_same(v.validate_readings(df, now=pd.NaT), v._validate_readings_reference(df, now=pd.NaT))


def _pandera_cases(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> set[tuple]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        out = set()
        for row in exc.failure_cases.itertuples():
            if row.check == "column_in_dataframe":
                out.add(("missing", row.failure_case))
            elif str(row.check).startswith("dtype("):
                out.add(("dtype", row.column))
            elif pd.notna(row.index):
                out.add(("row", row.column, row.index))
            else:
                out.add(("column", row.column))
        return out
    return set()


def _our_cases(cases: list[tuple[str, str, object]]) -> set[tuple]:
    out = set()
    for column, check, index in cases:
        if check == "column_in_dataframe":
            out.add(("missing", column))
        elif check == "dtype":
            out.add(("dtype", column))
        elif index is not None:
            out.add(("row", column, index))
        else:
            out.add(("column", column))
    return out


def _typed_frame(rng: np.random.Generator, usual: bool) -> pd.DataFrame:
    """Frames shaped like validate_readings' output, then damaged: what the schema itself must judge."""
    df = random_frame(rng, usual)
    if rng.random() < 0.6:  # mostly well-typed columns with bad entries
        df["event_time"] = v.parse_event_time(pd.Series(df["event_time"].to_numpy(), index=df.index))
        df["value"] = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    if rng.random() < 0.2:
        dropped = str(rng.choice(["series_id", "value", "event_time", "rstart"]))
        df = df.drop(columns=[dropped], errors="ignore")
    if rng.random() < 0.1 and "event_time" in df:
        df["event_time"] = df["event_time"].astype(str)
    return df


@pytest.mark.parametrize("seed", range(N_FRAMES))
def test_schema_failure_cases_equal_pandera(seed: int) -> None:
    rng = np.random.default_rng(10_000 + seed)
    df = _typed_frame(rng, usual=seed % 2 == 0)
    expected = _pandera_cases(df, v.readings_schema)
    ours = v.schema_failure_cases(df)
    if ours is None:  # a check raised (e.g. isfinite on strings): validate_readings defers to Pandera,
        assert expected  # which reports that check as failed
        return
    assert _our_cases(ours) == expected


def test_schema_failure_cases_on_validated_output_equal_pandera() -> None:
    rng = np.random.default_rng(7)
    clean = 0
    for i in range(50):
        df = random_frame(rng, usual=i % 2 == 0)
        valid, _ = v.validate_readings(df, day=DAY, now=NOW)
        ours = _our_cases(v.schema_failure_cases(valid))
        assert ours == _pandera_cases(valid, v.readings_schema)
        if v._fast_path_applies(df):  # usual dtypes: the valid rows always satisfy the schema
            assert ours == set()
            clean += 1
    assert clean >= 25


def test_unsupported_schema_features_defer_to_pandera() -> None:
    frame = pd.DataFrame({"a": [1.0, 1.0]})
    assert v.schema_failure_cases(frame, pa.DataFrameSchema({"a": pa.Column(float, unique=True)})) is None
    assert v.schema_failure_cases(frame, pa.DataFrameSchema({"a": pa.Column(float)}, strict=True)) is None
    ge = pa.DataFrameSchema({"a": pa.Column(float, checks=pa.Check.ge(2.0))})  # built-in check: supported
    assert (
        _our_cases(v.schema_failure_cases(frame, ge))
        == _pandera_cases(frame, ge)
        == {
            ("row", "a", 0),
            ("row", "a", 1),
        }
    )


# --- deduplicate ------------------------------------------------------------------------------------


def _dedup_frame(rng: np.random.Generator) -> pd.DataFrame:
    n = int(rng.integers(0, 40))
    ms = DAY_START_MS + rng.choice(np.arange(60) * 600_000, n, replace=rng.random() < 0.5)
    sids = np.array(["a", "b"], dtype=object)[rng.integers(0, 2 if rng.random() < 0.3 else 1, n)]
    df = pd.DataFrame(
        {
            "position": sids,
            "type_name": "CO2",
            "series_id": sids,
            "event_time": pd.Series(pd.to_datetime(ms, unit="ms", utc=True)).astype("datetime64[ms, UTC]"),
            "value": rng.integers(0, 3, n).astype(float),
        }
    )
    if rng.random() < 0.5:
        df["offset"] = rng.permutation(n)
    if rng.random() < 0.3 and n:
        df.index = rng.permutation(n) + 5
    if rng.random() < 0.1 and n:
        df.loc[df.index[0], "series_id"] = None
    return df


@pytest.mark.parametrize("seed", range(200))
def test_deduplicate_equals_reference(seed: int) -> None:
    df = _dedup_frame(np.random.default_rng(seed))
    got, ref = v.deduplicate(df), v._deduplicate_reference(df)
    _assert_same(got, ref)
