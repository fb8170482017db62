"""Unit tests of the consumer prefetch thread and the Arrow memory pool choice of ingestion."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pyarrow as pa
import pytest

from tsplatform.ingest.consuming import prefetched
from tsplatform.ingest.pipeline import use_jemalloc_for_arrow


def test_prefetched_yields_every_item_in_order_from_another_thread() -> None:
    threads: list[str] = []

    def source() -> Iterator[int]:
        for i in range(50):
            threads.append(threading.current_thread().name)
            yield i

    assert list(prefetched(source(), depth=3)) == list(range(50))
    assert set(threads) == {"kafka-consume"}


def test_prefetched_reraises_the_consumer_error_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("broker gone")

    got = []
    with pytest.raises(RuntimeError, match="broker gone"):
        for item in prefetched(source()):
            got.append(item)
    assert got == [1, 2]


def test_prefetched_stops_and_closes_the_consumer_when_the_caller_stops_early() -> None:
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            yield from range(10_000)
        finally:
            closed.set()

    before = {t for t in threading.enumerate() if t.name == "kafka-consume"}
    stream = prefetched(source(), depth=2)
    assert next(stream) == 0
    (consumer,) = {t for t in threading.enumerate() if t.name == "kafka-consume"} - before
    stream.close()  # the caller gives up (e.g. a decode error)
    assert closed.wait(60), "the consumer generator was not closed"
    consumer.join(60)  # waits for the thread to end instead of guessing how long that takes
    assert not consumer.is_alive()


def test_ingestion_allocates_arrow_memory_from_jemalloc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    before = pa.default_memory_pool()
    try:
        assert use_jemalloc_for_arrow() is True  # manylinux pyarrow wheels are built with jemalloc
        assert pa.default_memory_pool().backend_name == "jemalloc"
        assert pa.array([1.0, 2.0]).sum().as_py() == 3.0
    finally:
        pa.set_memory_pool(before)
