"""Pure pandas/numpy/statsmodels time-series algorithms (no Dagster, no Spark).

The public API is re-exported here; the names and shapes are a contract (see each function's docstring).
Exports are resolved lazily (PEP 562) so importing one algorithm does not import statsmodels for all.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

_EXPORTS: dict[str, str] = {
    # validate.py
    "readings_schema": "validate",
    "validate_readings": "validate",
    "deduplicate": "validate",
    # period.py
    "PeriodEstimate": "period",
    "estimate_period": "period",
    # gaps.py
    "GapReport": "gaps",
    "detect_gaps": "gaps",
    "regularize": "gaps",
    # impute.py
    "IMPUTATION_METHODS": "impute",
    "ImputationChoice": "impute",
    "impute": "impute",
    "select_imputation": "impute",
    # anomalies.py
    "detect_anomalies": "anomalies",
    # spikes.py
    "detect_spikes": "spikes",
    # denoise.py
    "denoise": "denoise",
    "process": "denoise",
    "select_processing": "denoise",
    # decompose.py
    "decompose": "decompose",
    "seasonal_periods": "decompose",
    # resample.py
    "resample": "resample",
    "align": "resample",
    # profile.py
    "correlations": "profile",
    "profile": "profile",
    # scale.py
    "Scaler": "scale",
    "fit_scaler": "scale",
    "make_windows": "scale",
}

__all__ = sorted(_EXPORTS)


def _bind_same_named_exports() -> None:
    """Bind eagerly the functions exported under their own module's name (decompose, denoise, impute, profile,
    resample): the first import of a submodule sets the package attribute to the *module*, which would shadow
    the lazy function export. Later imports of the submodule leave the attribute alone. Missing modules are
    skipped (they fail on first use instead)."""
    for name, module in _EXPORTS.items():
        if name == module and importlib.util.find_spec(f"{__name__}.{module}") is not None:
            globals()[name] = getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


_bind_same_named_exports()
