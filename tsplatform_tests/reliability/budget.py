"""How much the reliability suite does: bounded in the default suite, full with
``TSPLATFORM_RELIABILITY_FULL=1`` (figures for BENCHMARKS.md, section "Reliability")."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

FULL = os.environ.get("TSPLATFORM_RELIABILITY_FULL", "") == "1"


def scaled(bounded: int, full: int) -> int:
    """``full`` under ``TSPLATFORM_RELIABILITY_FULL=1``, else ``bounded``."""
    return full if FULL else bounded


def fuzz_examples(bounded: int, full: int) -> int:
    """Hypothesis examples per fuzz test: ``TSPLATFORM_FUZZ_EXAMPLES`` if set, else :func:`scaled`."""
    return int(os.environ.get("TSPLATFORM_FUZZ_EXAMPLES") or scaled(bounded, full))


@contextlib.contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise ``TimeoutError`` naming ``what`` if the block runs longer than ``seconds`` (main thread only):
    a hang is a failure with its input, not a stuck suite."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"{what} did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
