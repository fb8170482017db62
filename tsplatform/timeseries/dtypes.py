"""Input dtypes: pandas extension dtypes mapped onto the numpy dtypes the algorithms are written for.

Every public function of :mod:`tsplatform.timeseries` accepts what ``DataFrame.convert_dtypes()``,
``astype("string")``, ``astype("category")`` and pyarrow-backed reads (``dtype_backend="pyarrow"``) produce,
and gives the same results as for the numpy dtypes:

* text (``string`` with python or pyarrow storage, ``category``, pyarrow ``string`` / ``large_string``)
  becomes ``object`` holding ``str``, missing entries ``None``; a category of non-strings keeps its
  values (so a validator still sees that they are not strings);
* numbers (nullable ``Float64`` / ``Int64`` / ..., pyarrow integers and floats) become ``float64``,
  missing entries NaN;
* pyarrow timestamps become ``datetime64`` of the same unit and zone, missing entries NaT.

Anything else is returned unchanged (object and numpy columns cost one dtype check).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa


def is_text_dtype(dtype: object) -> bool:
    """``string`` (any storage), ``category`` or a pyarrow string dtype."""
    if isinstance(dtype, pd.StringDtype | pd.CategoricalDtype):
        return True
    if isinstance(dtype, pd.ArrowDtype):
        arrow = dtype.pyarrow_dtype
        return pa.types.is_string(arrow) or pa.types.is_large_string(arrow)
    return False


def _is_extension_number(dtype: object) -> bool:
    if isinstance(dtype, pd.ArrowDtype):
        arrow = dtype.pyarrow_dtype
        return pa.types.is_integer(arrow) or pa.types.is_floating(arrow)
    return isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iuf"


def _arrow_timestamp_dtype(dtype: object) -> str | None:
    """The numpy-backed pandas dtype for a pyarrow timestamp dtype, else None."""
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_timestamp(dtype.pyarrow_dtype):
        arrow = dtype.pyarrow_dtype
        return f"datetime64[{arrow.unit}, {arrow.tz}]" if arrow.tz else f"datetime64[{arrow.unit}]"
    return None


def text_as_object(s: pd.Series) -> pd.Series:
    """``s`` with a text dtype as ``object`` (``str`` values, ``None`` for missing); others unchanged."""
    if not is_text_dtype(s.dtype):
        return s
    values = s.astype(object).to_numpy()
    values[pd.isna(values)] = None
    return pd.Series(values, index=s.index, name=s.name, dtype=object)


def number_as_float(s: pd.Series) -> pd.Series:
    """``s`` with a nullable or pyarrow numeric dtype as ``float64`` (NaN for missing); others unchanged."""
    if not _is_extension_number(s.dtype):
        return s
    return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index, name=s.name)


def time_as_datetime64(s: pd.Series) -> pd.Series:
    """``s`` with a pyarrow timestamp dtype as ``datetime64`` (same unit and zone); others unchanged."""
    target = _arrow_timestamp_dtype(s.dtype)
    return s if target is None else s.astype(target)


def numpy_column(s: pd.Series) -> pd.Series:
    """One column with any of the dtypes in the module doc as its numpy-dtype equivalent."""
    return time_as_datetime64(number_as_float(text_as_object(s)))


def needs_conversion(dtype: object) -> bool:
    """True for the extension dtypes :func:`numpy_column` converts (a numpy dtype never needs it)."""
    if isinstance(dtype, np.dtype):
        return False
    return is_text_dtype(dtype) or _is_extension_number(dtype) or _arrow_timestamp_dtype(dtype) is not None


def numpy_columns(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``df`` with ``columns`` (those present) through :func:`numpy_column`: ``df`` itself when none needs
    it (checked on the dtypes alone), else a shallow copy (the input is never modified)."""
    dtypes = df.dtypes.to_numpy()
    todo = [i for i, name in enumerate(df.columns) if name in columns and needs_conversion(dtypes[i])]
    if not todo:
        return df
    out = df.copy(deep=False)
    for position in todo:
        out.isetitem(position, numpy_column(df.iloc[:, position]))
    return out


def with_datetime_index(obj: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    """``obj`` on a ``DatetimeIndex`` when its index is a pyarrow timestamp index (same unit and zone; a
    shallow copy), else ``obj`` itself."""
    target = _arrow_timestamp_dtype(obj.index.dtype)
    if target is None:
        return obj
    out = obj.copy(deep=False)
    out.index = pd.DatetimeIndex(obj.index.astype(target), name=obj.index.name)
    return out


def value_series(series: pd.Series) -> pd.Series:
    """A value series as ``float64`` (NaN for missing; numpy numbers and object values unchanged) on a
    ``DatetimeIndex`` (see :func:`with_datetime_index`); ``series`` itself when nothing needs converting."""
    return with_datetime_index(number_as_float(series))
