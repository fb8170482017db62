"""Forecasting models, metrics and tuning; pure Python (torch, numpy, statsmodels, Ray), no Dagster/Spark.

- :mod:`tsplatform.ml.models`: the :class:`Forecaster` interface, the families, safe save/load.
- :mod:`tsplatform.ml.evaluation`: MSE/RMSE/MAE/MAPE and rolling-origin evaluation.
- :mod:`tsplatform.ml.tuning`: Ray Tune + ASHA search returning a fitted champion.
"""

from tsplatform.ml.evaluation import forecast_metrics, rolling_origin_evaluate
from tsplatform.ml.models import FAMILIES, Forecaster, ensemble_of, load_forecaster, make_forecaster

__all__ = [
    "FAMILIES",
    "Forecaster",
    "ensemble_of",
    "forecast_metrics",
    "load_forecaster",
    "make_forecaster",
    "rolling_origin_evaluate",
]
