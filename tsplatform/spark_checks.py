"""The asset graph's checks, computed by Spark on the executors: only counts and a few examples reach the
driver.

* :func:`schema_failures` — a Pandera model's failures over a Spark DataFrame, in the report format of
  :func:`tsplatform.datasets.schema_failures` (``(check, column)``, ``n``, one example);
  :func:`schema_failures_and_aggregates` computes the caller's aggregates in the same job.
* :func:`duplicate_keys` — rows beyond the first per key.
* :func:`grid_step_spread` — per series-day, how much its grid steps differ (0 on a regular grid).

How :func:`schema_failures` splits the work. Sending a day of 1.44M rows through Arrow to pandas and
Pandera cost ~7 task-seconds per per-sample dataset (about half of it building Python strings for the key
columns). The model's column-level rules are simple row predicates, so Spark evaluates them in SQL, in one
aggregation over the frame, read from the model at call time:

==========================  ==========================================================================
Pandera                      Spark, per row (``na``: null, or NaN in a float column)
==========================  ==========================================================================
``required`` column          present in the frame (else one ``column_in_dataframe`` failure)
``dtype``                    the pandas dtype Spark's Arrow conversion gives the column (then ``prepare``)
                             passes the model's dtype check; an integer or boolean column with nulls
                             fails it (pandas would see float / object), one failure per column
``nullable=False``           ``na`` fails, one failure per row
built-in ``Check``           the same predicate in SQL on the non-``na`` rows (``ignore_na``):
                             comparisons, ``in_range``, ``isin`` / ``notin``, ``str_matches`` (``rlike``
                             anchored at the start as ``re.match``, ``(?U)``: Unicode ``\\d``, ``\\w`` as
                             in Python), ``str_contains``, ``str_startswith`` / ``str_endswith``,
                             ``str_length``
``validate.is_str`` /        a string column (every non-null value is a str) / not NaN nor infinite
``validate.is_finite``
==========================  ==========================================================================

A frame-wide check declared with a Spark SQL twin (``sql=`` of :func:`tsplatform.datasets.frame_check`)
joins the same aggregation; its failures are its failing rows (column ``*``), as in Pandera.

Everything else runs in Pandera itself on the executors (``mapInPandas``), on only the columns it reads:
frame-wide checks without a twin (their declared columns; all the model's columns for one without), and
whole columns whose checks or types the table does not cover (a custom check, a check on a column of
another type, regex columns without a match). A schema using
a feature outside both (uniqueness, coercion, parsers, strictness, an index, grouped checks) runs wholly in
Pandera, as before. The tests compare both paths on good and bad frames of every model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import pandera.pandas as pandera
from pandera.engines import pandas_engine

from tsplatform.datasets import FRAME_CHECK_COLUMNS, FRAME_CHECK_SQL, checked_columns, naive_utc
from tsplatform.timeseries.validate import is_finite, is_str, row_rules_only

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import DataType

#: the report's columns: check, column, failures, one failing value
CASES_DDL = "`check` STRING, `column` STRING, `n` BIGINT, `failure_case` STRING"


def schema_failures(
    frame: DataFrame,
    model: type[pandera.DataFrameModel] | pandera.DataFrameSchema,
    prepare: Callable[[pd.DataFrame], pd.DataFrame] = naive_utc,
    sample: int = 5,
) -> tuple[int, list[dict[str, Any]]]:
    """Pandera failure cases of ``frame`` under ``model`` (pandas batches passed through ``prepare``, as
    Pandera would see them), counted by the executors: Spark SQL for the column-level rules, Pandera for
    the rest (module docstring). Returns ``(number of failure cases, the ``sample`` largest (check, column)
    groups with ``n`` and an ``example``)``; a frame-wide check counts its failing rows (column ``*``)."""
    total, cases, _ = schema_failures_and_aggregates(frame, model, {}, prepare, sample)
    return total, cases


def schema_failures_and_aggregates(
    frame: DataFrame,
    model: type[pandera.DataFrameModel] | pandera.DataFrameSchema,
    aggregates: dict[str, Column],
    prepare: Callable[[pd.DataFrame], pd.DataFrame] = naive_utc,
    sample: int = 5,
) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    """:func:`schema_failures`, plus the values of the caller's ``aggregates`` (name -> aggregate column)
    over ``frame``, computed in the same Spark aggregation as the model's SQL rules: an asset's metadata
    counts and row-count checks cost no job of their own. Returns ``(failures, cases, {name: value})``."""
    from pyspark.sql import functions as F

    schema = model.to_schema() if isinstance(model, type) else model
    if not row_rules_only(schema):
        total, cases = _pandera_failures(
            frame, schema, prepare, checked_columns(schema, frame.columns), sample
        )
        values = (
            frame.agg(*(c.alias(n) for n, c in aggregates.items())).collect()[0].asDict()
            if aggregates
            else {}
        )
        return total, cases, values
    converted = prepare(frame.limit(0).toPandas())  # the dtypes pandas batches of `frame` have
    rules: list[tuple[str, str, Column, Column]] = []  # (check, column, failing row, example value)
    static: list[dict[str, Any]] = []  # failures known from the frame's schema alone
    null_dtype: list[tuple[str, str]] = []  # (check label, column) failing when the column has a null
    in_pandas: dict[str, pandera.Column] = {}  # whole columns left to Pandera
    for name, column in schema.columns.items():
        names = _matching(name, column, frame.columns)
        if column.regex and not names:
            in_pandas[name] = column
            continue
        if not names:
            if column.required:  # (Pandera names the schema as the column here)
                static.append(_case("column_in_dataframe", str(schema.name), 1, name))
            continue
        conditions = {
            actual: [_condition(check, actual, frame.schema[actual].dataType) for check in column.checks]
            for actual in names
        }
        if any(c is None for per_column in conditions.values() for c in per_column):
            in_pandas[name] = column  # the whole column (every match of a regex column) in Pandera
            continue
        for actual in names:
            data_type = frame.schema[actual].dataType
            value, na = _col(actual), _na(actual, data_type)
            example = value.cast("string")
            if column.dtype is not None:
                pd_dtype = converted[actual].dtype
                label = f"dtype('{column.dtype}')"
                if not column.dtype.check(pandas_engine.Engine.dtype(pd_dtype)):
                    static.append(_case(label, actual, 1, str(pd_dtype)))
                elif _becomes_other_dtype_with_nulls(data_type):
                    null_dtype.append((label, actual))
            if not column.nullable:
                rules.append(("not_nullable", actual, na, example))
            for check, condition in zip(column.checks, conditions[actual], strict=True):
                label = str(check.error if check.error is not None else check.name)  # as Pandera labels it
                rules.append((label, actual, ~na & ~condition, example))  # type: ignore[operator]
    frame_checks = []  # frame-wide checks left to Pandera
    for check in schema.checks:
        reads = FRAME_CHECK_COLUMNS.get(str(check.title))  # by title: names repeat across models
        if check.title in FRAME_CHECK_SQL and reads is not None and set(reads) <= set(frame.columns):
            passing = F.coalesce(F.expr(FRAME_CHECK_SQL[str(check.title)]), F.lit(False))
            shown = F.concat_ws(", ", *(F.concat(F.lit(f"{c}="), _col(c).cast("string")) for c in reads))
            rules.append((str(check.name), "*", ~passing, shown))
        else:
            frame_checks.append(check)
    spark_cases, values = _count_rules(frame, rules, null_dtype, aggregates)
    spark_cases += static
    pandas_columns = _pandas_columns(schema, in_pandas, frame_checks, frame.columns)
    pandas_cases: list[dict[str, Any]] = []
    if in_pandas or frame_checks:
        rest = pandera.DataFrameSchema(in_pandas, checks=frame_checks, strict=False, name=schema.name)
        pandas_cases = _pandera_failures(frame, rest, prepare, pandas_columns, None)[1]
    summary = sorted(spark_cases + pandas_cases, key=lambda r: -int(r["n"]))
    total = sum(int(r["n"]) for r in summary)
    return total, summary[:sample], values


def duplicate_keys(frame: DataFrame, keys: Sequence[str]) -> int:
    """Rows beyond the first per ``keys`` (0 = the keys are unique; keys of string, date, timestamp or
    integer columns). First by the keys' 64-bit hash, whose shuffle carries one long a row instead of the
    keys (~0.4 of 1.3 s saved on a day of 1.44M rows): equal keys hash alike, so no hash shared means no key
    shared; only when a hash is shared (a duplicate, or a collision, ~1e-7 at 1.44M rows) are the keys
    themselves counted."""
    from pyspark.sql import functions as F

    def extra_rows(*group: Column) -> int:
        counts = frame.groupBy(*group).count().where(F.col("count") > 1)
        row = counts.agg(F.sum(F.col("count") - 1).alias("extra")).collect()[0]
        return int(row["extra"] or 0)

    if extra_rows(F.xxhash64(*keys).alias("_key_hash")) == 0:
        return 0
    return extra_rows(*(F.col(k) for k in keys))


#: Seconds by which two steps of a series-day's grid may differ (timestamps are stored in milliseconds).
GRID_TOLERANCE_S = 1e-3


def grid_step_spread(times: Column) -> Column:
    """Aggregate over a group's timestamps (a series-day): the largest minus the smallest step in seconds
    between consecutive times (null below two rows). A group on a regular grid has a spread of 0 (up to
    ``GRID_TOLERANCE_S``). Sorting each group's times in an array is cheaper than a window over the frame,
    which sorts all its rows, and the aggregate joins the asset's other per-series-day aggregates."""
    from pyspark.sql import functions as F

    t = F.array_sort(F.collect_list(times.cast("double")))
    steps = F.zip_with(F.slice(t, 2, F.size(t)), F.slice(t, 1, F.size(t) - 1), lambda a, b: a - b)
    return F.array_max(steps) - F.array_min(steps)


# --- the SQL side ------------------------------------------------------------------------------------
def _matching(name: str, column: pandera.Column, columns: Sequence[str]) -> list[str]:
    if not column.regex:
        return [name] if name in columns else []
    pattern = re.compile(name)
    return [c for c in columns if pattern.search(c)]


def _col(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(f"`{name}`")


def _is_float(data_type: DataType) -> bool:
    from pyspark.sql.types import DoubleType, FloatType

    return isinstance(data_type, DoubleType | FloatType)


def _na(name: str, data_type: DataType) -> Column:
    """What pandas calls missing: null, and NaN in a float column (Spark keeps them apart)."""
    from pyspark.sql import functions as F

    column = _col(name)
    return column.isNull() | F.isnan(column) if _is_float(data_type) else column.isNull()


def _becomes_other_dtype_with_nulls(data_type: DataType) -> bool:
    """An integer / boolean column turns float64 / object in pandas when a batch has a null."""
    from pyspark.sql.types import BooleanType, IntegralType

    return isinstance(data_type, IntegralType | BooleanType)


def _condition(check: pandera.Check, name: str, data_type: DataType) -> Column | None:
    """``check`` as a Spark predicate on non-missing values of column ``name``; None when it has none here
    (then Pandera evaluates the column)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType, StringType

    if not check.ignore_na:
        return None
    column, stats = _col(name), check.statistics
    numeric, string = isinstance(data_type, NumericType), isinstance(data_type, StringType)
    fn = getattr(check, "_check_fn", None)
    if fn is is_str:
        return F.lit(string)
    if fn is is_finite:
        return ~F.isnan(column) & (F.abs(column) != F.lit(float("inf"))) if numeric else None
    if not check.is_builtin_check(getattr(fn, "__name__", "")):
        return None
    if numeric and check.name in _COMPARISONS:
        return _COMPARISONS[check.name](column, stats)
    if check.name in ("isin", "notin") and (numeric or string):
        values = list(stats["allowed_values" if check.name == "isin" else "forbidden_values"])
        if not all(isinstance(v, str) == string and not isinstance(v, bool) for v in values):
            return None
        inside = column.isin(values) if values else F.lit(False)
        return inside if check.name == "isin" else ~inside
    if string and check.name in _STRING_CHECKS:
        return _STRING_CHECKS[check.name](column, stats)
    return None


def _in_range(column: Column, s: dict[str, Any]) -> Column:
    low = column >= s["min_value"] if s["include_min"] else column > s["min_value"]
    high = column <= s["max_value"] if s["include_max"] else column < s["max_value"]
    return low & high


_COMPARISONS: dict[str, Callable[[Column, dict[str, Any]], Column]] = {
    "equal_to": lambda c, s: c == s["value"],
    "not_equal_to": lambda c, s: c != s["value"],
    "greater_than": lambda c, s: c > s["min_value"],
    "greater_than_or_equal_to": lambda c, s: c >= s["min_value"],
    "less_than": lambda c, s: c < s["max_value"],
    "less_than_or_equal_to": lambda c, s: c <= s["max_value"],
    "in_range": _in_range,
}


def _str_length(column: Column, s: dict[str, Any]) -> Column:
    from pyspark.sql import functions as F

    length = F.length(column)
    if s.get("exact_value") is not None:
        return length == s["exact_value"]
    low = F.lit(True) if s.get("min_value") is None else length >= s["min_value"]
    return low & (F.lit(True) if s.get("max_value") is None else length <= s["max_value"])


_STRING_CHECKS: dict[str, Callable[[Column, dict[str, Any]], Column]] = {
    # re.match: anchored at the start only; (?U): Java's \d, \w, \s match Unicode as Python's do
    "str_matches": lambda c, s: c.rlike(f"(?U)^(?:{s['pattern']})"),
    "str_contains": lambda c, s: c.rlike(f"(?U){s['pattern']}"),
    "str_startswith": lambda c, s: c.startswith(s["string"]),
    "str_endswith": lambda c, s: c.endswith(s["string"]),
    "str_length": _str_length,
}


def _case(check: str, column: str, n: int, example: Any) -> dict[str, Any]:
    return {
        "check": check,
        "column": column,
        "n": int(n),
        "example": None if example is None else str(example),
    }


def _count_rules(
    frame: DataFrame,
    rules: list[tuple[str, str, Column, Column]],
    null_dtype: list[tuple[str, str]],
    aggregates: dict[str, Column],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One aggregation over ``frame``: failing rows of every rule, whether each ``null_dtype`` column
    holds a null, and the caller's ``aggregates`` (returned by name); then, only if some rule fails, a
    second one for the first failing value of each failing rule (on good data the examples cost nothing:
    the counts alone take ~0.8 of 1.4 s on a day of 1.44M rows)."""
    from pyspark.sql import functions as F

    if not rules and not null_dtype and not aggregates:
        return [], {}
    aggs = [F.count(F.when(failing, F.lit(1))).alias(f"n{i}") for i, (_, _, failing, _) in enumerate(rules)]
    for i, (_, name) in enumerate(null_dtype):
        aggs.append(F.count(F.when(_col(name).isNull(), F.lit(1))).alias(f"d{i}"))
    names = {f"a{i}": name for i, name in enumerate(aggregates)}  # the caller's names may be any text
    aggs += [column.alias(alias) for alias, column in zip(names, aggregates.values(), strict=True)]
    row = frame.agg(*aggs).collect()[0]
    values = {name: row[alias] for alias, name in names.items()}
    failing_rules = [i for i in range(len(rules)) if row[f"n{i}"]]
    examples: dict[str, Any] = {}
    if failing_rules:
        firsts = [
            F.first(F.when(rules[i][2], F.coalesce(rules[i][3], F.lit("nan"))), ignorenulls=True).alias(
                f"e{i}"
            )
            for i in failing_rules
        ]
        examples = frame.agg(*firsts).collect()[0].asDict()
    cases = [
        _case(check, column, row[f"n{i}"], examples[f"e{i}"])
        for i, (check, column, _, _) in enumerate(rules)
        if row[f"n{i}"]
    ]
    cases += [_case(label, name, 1, "null") for i, (label, name) in enumerate(null_dtype) if row[f"d{i}"]]
    return cases, values


# --- the Pandera side --------------------------------------------------------------------------------
def _pandas_columns(
    schema: pandera.DataFrameSchema,
    in_pandas: dict[str, pandera.Column],
    frame_checks: Sequence[pandera.Check],
    columns: Sequence[str],
) -> list[str]:
    """The columns Pandera needs: those it checks whole, and those its frame-wide checks read (all the
    model's columns for a frame-wide check without declared columns)."""
    wanted = set(checked_columns(pandera.DataFrameSchema(in_pandas), columns))
    for check in frame_checks:
        declared = FRAME_CHECK_COLUMNS.get(str(check.title))
        wanted |= set(declared) if declared is not None else set(checked_columns(schema, columns))
    return [c for c in columns if c in wanted]


def _pandera_failures(
    frame: DataFrame,
    schema: pandera.DataFrameSchema,
    prepare: Callable[[pd.DataFrame], pd.DataFrame],
    columns: Sequence[str],
    sample: int | None,
) -> tuple[int, list[dict[str, Any]]]:
    """Pandera on the executors, batch by batch, over ``columns`` of ``frame``
    (:func:`tsplatform.datasets.schema_failures`)."""
    from pyspark.sql import functions as F

    from tsplatform.datasets import schema_failures as failures_of

    selected = frame.select(*(_col(c) for c in columns))

    def validate(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            cases = failures_of(schema, batch, prepare)
            if len(cases):
                yield cases

    summary = (
        selected.mapInPandas(validate, schema=CASES_DDL)
        .groupBy("check", "column")
        .agg(F.sum("n").alias("n"), F.first("failure_case").alias("example"))
        .orderBy(F.desc("n"))
        .collect()
    )
    cases = [r.asDict() for r in summary]
    return sum(int(r["n"]) for r in cases), cases if sample is None else cases[:sample]
