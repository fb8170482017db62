"""Where the benchmarks find the shared real data sets, and a clear error when they are absent.

Resolution order: ``--datasets-dir`` (each script's option), else ``TSPLATFORM_DATASETS_DIR``, else
``<repo>/../shared/datasets`` (the layout of a checkout next to its shared folder). Tests never read it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Each data set's folder and its public origin (named in the error when the folder is missing).
ORIGINS: dict[str, str] = {
    "nab": "Numenta Anomaly Benchmark, https://github.com/numenta/NAB (data/, labels/; MIT)",
    "ett": "ETDataset ETT-small, https://github.com/zhouhaoyi/ETDataset (CC BY-ND 4.0)",
    "occupancy_uci": "UCI Occupancy Detection, https://github.com/LuisM78/Occupancy-detection-data (UCI 357)",
    "b4b_co2": (
        "Brains4Buildings Windesheim 2022 CO2, "
        "https://github.com/energietransitie/twomes-dataset-windesheim-brains4buildings2022 (CC BY 4.0)"
    ),
}


def default_datasets_dir() -> Path:
    """``TSPLATFORM_DATASETS_DIR`` if set, else ``<repo>/../shared/datasets``."""
    configured = os.environ.get("TSPLATFORM_DATASETS_DIR")
    return Path(configured) if configured else (REPO_ROOT.parent / "shared" / "datasets").resolve()


DEFAULT_DATASETS_DIR = default_datasets_dir()


def require_datasets(root: Path, *names: str) -> Path:
    """Return ``root`` if every named data set folder exists in it; else exit with a message naming the
    missing sets' public origins (``SystemExit``, so a benchmark stops with one clear line per set)."""
    missing = [name for name in names if not (Path(root) / name).is_dir()]
    if missing:
        lines = [f"  {name}/: {ORIGINS.get(name, 'see the data sets README')}" for name in missing]
        raise SystemExit(
            f"data sets missing under {root} (set --datasets-dir or TSPLATFORM_DATASETS_DIR):\n"
            + "\n".join(lines)
        )
    return Path(root)
