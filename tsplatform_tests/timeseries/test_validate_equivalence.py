"""The fast paths of validate_readings / deduplicate against the reference implementations, and the
vectorised schema evaluation against Pandera's own lazy validation, on randomized and adversarial frames.

Every equivalence case is a frame in the fast path's domain, and each asserts that the fast path answered
(the reference implementation is replaced by a failing stub for that call), so no case compares the
reference with itself. The reference path has its own tests with hand-written expectations at the end."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
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
    kind = int(rng.choice([0, 1, 2, 3, 4, 8])) if usual else rng.integers(0, 9)
    nat = rng.random(n) < 0.1
    if kind <= 2:  # the usual: datetime64[ms, UTC] (Kafka Connect -> validated frames)
        s = pd.Series(pd.to_datetime(ms, unit="ms", utc=True)).astype("datetime64[ms, UTC]")
    elif kind == 8:  # pyarrow-backed reads: a pyarrow timestamp column
        s = pd.Series(pd.to_datetime(ms, unit="ms", utc=True)).astype(
            pd.ArrowDtype(pyarrow.timestamp("ms", "UTC"))
        )
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
    kind = rng.integers(0, 5) if usual else rng.integers(0, 6)
    if kind == 0:  # adversarial entries
        bad = rng.random(n) < 0.2
        choices = np.array([None, np.nan, 7, 1.5, b"bytes", pd.NA], dtype=object)
        values[bad] = choices[rng.integers(0, choices.size, bad.sum())]
    elif kind in (1, 2, 4):  # string (python / pyarrow storage), category: some entries missing
        values[rng.random(n) < 0.1] = None
        dtype = {1: "string[python]", 2: "category", 4: "string[pyarrow]"}[int(kind)]
        return pd.Series(values, dtype=dtype)
    return values


def _values(rng: np.random.Generator, n: int, usual: bool) -> np.ndarray:
    x = rng.normal(400, 300, n)
    x[rng.random(n) < 0.08] = np.nan
    x[rng.random(n) < 0.05] = np.inf
    x[rng.random(n) < 0.05] = -np.inf
    kind = int(rng.choice([2, 2, 6])) if usual else rng.integers(0, 7)
    if kind == 0:
        out = x.astype(object)
        out[rng.random(n) < 0.2] = "abc"
        out[rng.random(n) < 0.1] = None
        return out
    if kind == 1:
        return np.round(np.nan_to_num(x, nan=0, posinf=1, neginf=-1)).astype(np.int64)
    if kind == 6:  # nullable Float64 (convert_dtypes): NaN become <NA>
        return pd.Series(x).astype("Float64")
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


def _fast(module_attr: str, call: object, monkeypatch: pytest.MonkeyPatch) -> object:
    """``call()`` with ``v.<module_attr>`` (a reference implementation) replaced by a failing stub: the
    result is the fast path's own."""

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{module_attr} used: not a fast-path case")

    with monkeypatch.context() as patch:
        patch.setattr(v, module_attr, fail)
        return call()  # type: ignore[operator]


def _assert_same(got: tuple[pd.DataFrame, pd.DataFrame], ref: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    for a, b in zip(got, ref, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True, check_index_type=True, check_column_type=True)


@pytest.mark.parametrize("seed", range(N_FRAMES))
def test_validate_readings_fast_path_equals_reference(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    df = random_frame(rng, usual=True)
    before = df.copy()
    day = DAY if rng.random() < 0.7 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandera / pandas warnings of the reference path
        ref = v._validate_readings_reference(df, day=day, now=NOW)
    got = _fast(
        "_validate_readings_reference", lambda: v.validate_readings(df, day=day, now=NOW), monkeypatch
    )
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
        if v._fast_path_applies(v._inputs(df)[1]):  # usual dtypes: the valid rows always satisfy the schema
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


N_DEDUP_FRAMES = 200


def _dedup_frame(rng: np.random.Generator) -> pd.DataFrame:
    """One series (one series_id string, object / string / category dtype), distinct times in any order
    (datetime64 of several units and zones): the fast path's domain."""
    n = int(rng.integers(1, 40))
    ms = DAY_START_MS + rng.choice(np.arange(60) * 600_000, n, replace=False)
    times = pd.Series(pd.to_datetime(ms, unit="ms", utc=True))
    unit_zone = rng.integers(0, 3)
    if unit_zone == 0:
        times = times.astype("datetime64[ms, UTC]")
    elif unit_zone == 1:
        times = times.dt.tz_convert("Asia/Seoul").dt.as_unit("us")
    df = pd.DataFrame(
        {
            "position": "a",
            "type_name": "CO2",
            "series_id": np.full(n, "sid-a", dtype=object),
            "event_time": times.to_numpy() if unit_zone == 2 else times.array,
            "value": rng.integers(0, 3, n).astype(float),
        }
    )
    key_dtype = rng.integers(0, 4)
    if key_dtype:
        df["series_id"] = df["series_id"].astype(
            {1: "string[python]", 2: "category", 3: "string[pyarrow]"}[int(key_dtype)]
        )
    if rng.random() < 0.5:
        df["offset"] = rng.permutation(n)
    if rng.random() < 0.3:
        df.index = rng.permutation(n) + 5
    return df


@pytest.mark.parametrize("seed", range(N_DEDUP_FRAMES))
def test_deduplicate_fast_path_equals_reference(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    df = _dedup_frame(np.random.default_rng(seed))
    ref = v._deduplicate_reference(df)
    got = _fast("_deduplicate_reference", lambda: v.deduplicate(df), monkeypatch)
    _assert_same(got, ref)
    assert got[1].empty and len(got[0]) == len(df)  # the fast path's domain has nothing to drop


# --- the reference implementations, with hand-written expectations ------------------------------------


def _odd_frame() -> pd.DataFrame:
    """Dtypes outside the fast path: epoch-ms / text / None times in one object column, object values."""
    return pd.DataFrame(
        {
            "position": ["p", "p", 7, "p", "p", "p", "p", "p"],
            "type_name": ["CO2", b"CO2", "CO2", "CO2", "CO2", "CO2", "CO2", "CO2"],
            "series_id": "sid",
            "event_time": [
                DAY_START_MS + 1_000,
                "2022-11-22T09:00:00+09:00",
                "2022-11-22T01:00:00Z",
                None,
                "2022-11-22T02:00:00",
                "2022-11-22T03:00:00Z",
                DAY_START_MS + 86_400_000,
                "2022-11-22T04:00:00Z",
            ],
            "value": [1.5, 2.0, 3.0, 4.0, "abc", 6, 7.0, 900.0],
            "rend": [800.0, 800.0, 800.0, 800.0, 800.0, "high", 800.0, 800.0],
        },
        index=[f"r{i}" for i in range(8)],
    )


def test_reference_path_on_odd_dtypes() -> None:
    df = _odd_frame()
    assert not v._fast_path_applies(v._inputs(df)[1])  # validate_readings would take the reference path
    valid, rejected = v._validate_readings_reference(df, day=DAY, now=NOW)
    assert valid.index.tolist() == ["r0"]
    assert valid["event_time"].tolist() == [pd.Timestamp("2022-11-22 00:00:01", tz="UTC")]
    assert valid["event_time"].dtype == "datetime64[ms, UTC]" and valid["value"].tolist() == [1.5]
    assert rejected["reason"].to_dict() == {
        "r1": "schema:type_name",
        "r2": "schema:position",
        "r3": "unparseable_timestamp",
        "r4": "schema:value",
        "r5": "schema:rend",
        "r6": "outside_day",
        "r7": "value_out_of_range",
    }
    assert rejected.loc["r4", "value"] == "abc"  # original values kept
    assert v.validate_readings(df, day=DAY, now=NOW)[1]["reason"].to_dict() == rejected["reason"].to_dict()


def test_reference_path_on_a_category_of_non_strings() -> None:
    df = pd.DataFrame(
        {
            "position": pd.Series([1, 2], dtype="category"),
            "type_name": "CO2",
            "series_id": "sid",
            "event_time": pd.Series(pd.to_datetime([DAY_START_MS, DAY_START_MS + 1], unit="ms", utc=True)),
            "value": [1.0, 2.0],
        }
    )
    valid, rejected = v._validate_readings_reference(df, now=NOW)
    assert valid.empty and rejected["reason"].tolist() == ["schema:position", "schema:position"]
    assert isinstance(rejected["position"].dtype, pd.CategoricalDtype)


def test_a_nat_cutoff_rejects_nothing_as_future() -> None:
    df = pd.DataFrame(
        {
            "position": "p",
            "type_name": "CO2",
            "series_id": "sid",
            "event_time": pd.Series(pd.to_datetime(["2022-11-22T01:00Z", "2099-01-01T00:00Z"], utc=True)),
            "value": [1.0, np.inf],
        }
    )
    valid, rejected = v.validate_readings(df, now=pd.NaT)  # (the reference path: NaT compares False)
    assert valid["event_time"].tolist() == [pd.Timestamp("2022-11-22T01:00Z")]
    assert rejected["reason"].tolist() == ["non_finite_value"]


def test_deduplicate_reference_on_two_series_with_offsets() -> None:
    ms = [DAY_START_MS, DAY_START_MS, DAY_START_MS, DAY_START_MS, DAY_START_MS + 600_000]
    df = pd.DataFrame(
        {
            "position": ["a", "a", "a", "b", "a"],
            "type_name": "CO2",
            "series_id": ["a", "a", "a", "b", "a"],
            "event_time": pd.to_datetime(ms, unit="ms", utc=True).as_unit("ms"),
            "value": [2.0, 1.0, 1.0, 1.0, 5.0],
            "offset": [30, 20, 10, 40, 0],
        },
        index=[10, 11, 12, 13, 14],
    )
    kept, duplicates = v._deduplicate_reference(df)
    # offset order: 14 (0), 12 (10), 11 (20) = exact duplicate of 12, 10 (30) = same time as 12, 13 (40)
    assert kept.index.tolist() == [12, 13, 14]
    assert duplicates["reason"].to_dict() == {10: "same_timestamp", 11: "exact_duplicate"}
