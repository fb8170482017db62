"""Series identity: the untrusted key (position, type_name) and the path-safe ``series_id``.

``series_id`` is ``<slug>-<digest>``:

* ``slug``: the key's ASCII letters and digits, lower-cased, runs of anything else replaced by a single
  ``_``, ``position`` and ``type_name`` joined by ``__``, truncated to 48 characters (readability only);
* ``digest``: the first 16 hex digits of SHA-256 over the UTF-8 JSON array ``[position, type_name]``
  (the identity; 64 bits, collision-free in practice for millions of series).

So ``("광 주 A", "C02")`` becomes ``a__c02-<16 hex>`` and ``("../../etc/x", "T")`` becomes
``etc_x__t-<16 hex>``. The id matches ``^[a-z0-9_]{0,48}-[0-9a-f]{16}$``: it is safe in file paths,
Hive partition values, MongoDB ``_id`` and Dagster partition keys. The key itself is never used in a path.
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pandas as pd

SERIES_ID_PATTERN = re.compile(r"^[a-z0-9_]{0,48}-[0-9a-f]{16}$")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def series_id(position: str, type_name: str) -> str:
    """Stable, path-safe id of the series keyed by ``(position, type_name)``; see the module doc."""
    key = json.dumps([position, type_name], ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    parts = [_NON_ALNUM.sub("_", s.lower()).strip("_") for s in (position, type_name)]
    slug = "__".join(parts).strip("_")[:48]
    slug = slug.encode("ascii", "ignore").decode("ascii")
    return f"{slug}-{digest}"


def series_ids(position: pd.Series, type_name: pd.Series) -> pd.Series:
    """Vectorised :func:`series_id` (computed once per distinct key)."""
    keys = pd.DataFrame({"p": position.astype(str).to_numpy(), "t": type_name.astype(str).to_numpy()})
    uniq = keys.drop_duplicates()
    mapping = {(p, t): series_id(p, t) for p, t in zip(uniq["p"], uniq["t"], strict=True)}
    out = np.fromiter(
        (mapping[(p, t)] for p, t in zip(keys["p"], keys["t"], strict=True)), dtype=object, count=len(keys)
    )
    return pd.Series(out, index=position.index, dtype=object)


def is_series_id(value: str) -> bool:
    """True when ``value`` has the shape of a :func:`series_id` (use before touching a path with it)."""
    return bool(SERIES_ID_PATTERN.match(value))
