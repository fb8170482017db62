"""Synthetic seasonal series for the ML tests (no shared data at test time)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

SEASON = 24


def seasonal_series(n: int = 1200, level: float = 10.0, amplitude: float = 3.0, phase: float = 0.0,
                    trend: float = 0.002, noise: float = 0.3, seed: int = 0) -> np.ndarray:  # fmt: skip
    """``level + amplitude * sin(2 pi t / 24 + phase) + trend * t`` plus Gaussian noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return (
        level
        + amplitude * np.sin(2 * np.pi * t / SEASON + phase)
        + trend * t
        + noise * rng.standard_normal(n)
    )


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Small models on a shared machine: one thread is faster; the previous count is restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
