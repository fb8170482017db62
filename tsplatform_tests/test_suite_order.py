"""The suite's scheduling list names real modules (a renamed module would silently start last again)."""

from __future__ import annotations

from tsplatform_tests.conftest import LONG_MODULES_FIRST, REPO_ROOT


def test_every_long_module_listed_first_exists_once() -> None:
    missing = [path for path in LONG_MODULES_FIRST if not (REPO_ROOT / path).is_file()]
    assert missing == []
    assert len(set(LONG_MODULES_FIRST)) == len(LONG_MODULES_FIRST)


def test_makefile_keeps_the_collection_order_for_xdist() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    workers = next(line for line in makefile.splitlines() if line.startswith("PYTEST_WORKERS ?="))
    assert "--dist=loadfile" in workers and "--no-loadscope-reorder" in workers
