"""tsplatform: automated time-series MLOps for sensor data."""

__version__ = "0.1.0"
