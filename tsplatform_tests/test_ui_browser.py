"""The Dagster UI in a real browser: Debian's headless Chromium driven by selenium (chromium-driver).

A real ``dagster-webserver`` (from the repo root, as ``dagster dev`` runs it) serves an instance in which
``dagster asset materialize`` (the CLI, a real run on Spark) has materialized ``validated_readings`` for one
day of a small lake. The test then looks at the pages a user opens first and checks what they show:

- the global lineage (every group expanded) shows every asset of the definitions and one edge per
  dependency between them;
- the partitioned asset's partitions tab shows the materialized day;
- the asset's checks tab shows its checks and their passing result;
- the automation page shows the automation sensor switched on.

Screenshots of each page are kept in ``$TSPLATFORM_TEST_ARTIFACTS`` (default ``<repo>/test-artifacts``)
under ``ui/``, so a CI run leaves them for people to look at.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from tsplatform.dagster_processes import DagsterProcesses
from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
from tsplatform.instance import new_dagster_home
from tsplatform.lake import Lake
from tsplatform.services.process import free_port
from tsplatform_tests.test_clean import raw_day

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAY = dt.date(2024, 3, 5)
START = DAY - dt.timedelta(days=3)  # the instance's first partition: a short partition range
STARTUP_TIMEOUT_S = 240.0
PAGE_TIMEOUT_S = 90.0
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def artifacts_dir() -> Path:
    """Screenshots' folder: ``$TSPLATFORM_TEST_ARTIFACTS/ui`` (default ``<repo>/test-artifacts/ui``)."""
    root = Path(os.environ.get("TSPLATFORM_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path = root / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _environment(tmp: Path) -> dict[str, str]:
    home = new_dagster_home(tmp / "dagster_home")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TSPLATFORM_") or k == "TSPLATFORM_JARS_DIR"
    }
    env.update(
        DAGSTER_HOME=str(home),
        TSPLATFORM_STATE_DIR=str(tmp / "state"),
        TSPLATFORM_START_DATE=START.isoformat(),
        TSPLATFORM_SPARK_MASTER="local[1]",
        DAGSTER_DISABLE_TELEMETRY="1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


@dataclass(frozen=True)
class RunningUI:
    """A webserver over a small materialized instance: its URL, temp dir and process environment."""

    base: str
    tmp: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUI]:
    """A webserver over an instance with one materialized day of validated_readings."""
    tmp = tmp_path_factory.mktemp("ui")
    env = _environment(tmp)
    lake = Lake(str(tmp / "state" / "lake"))
    lake.write_file(
        "raw_readings", DAY, "part-1.parquet", pa.Table.from_pandas(raw_day(DAY), schema=RAW_READINGS_SCHEMA)
    )
    materialize = subprocess.run(
        [
            *(str(BIN / "dagster"), "asset", "materialize", "-m", "tsplatform.definitions"),
            *("--select", "validated_readings", "--partition", DAY.isoformat()),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = materialize.stdout + materialize.stderr
    assert materialize.returncode == 0, f"dagster asset materialize failed:\n{output[-6000:]}"
    assert "RUN_SUCCESS" in output

    dagster = DagsterProcesses(env=env, logs=tmp, port=free_port(), daemon=False)
    try:
        dagster.start()
        dagster.wait_until_serving(STARTUP_TIMEOUT_S)
        yield RunningUI(dagster.url, tmp, env)
    finally:
        dagster.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium driven by selenium through Debian's chromium-driver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
        "chromium and chromium-driver (Debian packages) are required: `make system-deps` installs them"
    )
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1900,1200")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for(driver: object, condition: Callable[[], object], what: str, shot: str) -> object:
    """Poll ``condition`` until it returns something truthy; on timeout save a screenshot and fail."""
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    while True:
        _dismiss_newsletter(driver)
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            driver.save_screenshot(str(artifacts_dir() / f"{shot}-timeout.png"))  # type: ignore[attr-defined]
            pytest.fail(f"the UI never showed {what}")
        time.sleep(0.5)


def _dismiss_newsletter(driver: object) -> None:
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):  # type: ignore[attr-defined]
        if button.is_displayed():
            button.click()


def _click(driver: object, xpath: str) -> None:
    """Click the element at ``xpath``; a dialog that opens over the page meanwhile (the UI's newsletter
    prompt, a toast's backdrop) is dismissed and the click retried, up to PAGE_TIMEOUT_S."""
    from selenium.common.exceptions import ElementClickInterceptedException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    deadline = time.monotonic() + PAGE_TIMEOUT_S
    while True:
        _dismiss_newsletter(driver)
        try:
            driver.find_element(By.XPATH, xpath).click()  # type: ignore[attr-defined]
            return
        except ElementClickInterceptedException:
            if time.monotonic() > deadline:
                driver.save_screenshot(str(artifacts_dir() / "click-intercepted.png"))  # type: ignore[attr-defined]
                raise
            driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)  # type: ignore[attr-defined]
            time.sleep(0.5)


def _body_text(driver: object) -> str:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    try:
        return driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    except WebDriverException:
        return ""


def _shown_names(text: str) -> list[Callable[[str], bool]]:
    """Matchers for the names a page shows: the graph truncates long labels in the middle
    (``regulari…_readings``), so a label ``a…b`` matches a name that starts with a and ends with b."""
    matchers: list[Callable[[str], bool]] = []
    for label in text.split():
        if "…" in label:
            head, _, tail = label.partition("…")
            matchers.append(lambda name, h=head, t=tail: name.startswith(h) and name.endswith(t))
        else:
            matchers.append(lambda name, label=label: name == label)
    return matchers


def _definitions() -> tuple[dict[str, str], set[tuple[str, str]]]:
    """(asset -> group, dependency edges) of the loaded definitions."""
    from tsplatform.definitions import defs

    graph = defs.resolve_asset_graph()
    groups, edges = {}, set()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        name = key.to_user_string()
        groups[name] = node.group_name
        edges |= {(parent.to_user_string(), name) for parent in node.parent_keys}
    return groups, edges


@pytest.mark.integration
def test_ui_shows_the_graph_partitions_checks_and_automation(ui: RunningUI, browser: object) -> None:
    from selenium.webdriver.common.by import By

    base = ui.base
    driver = browser
    shots = artifacts_dir()
    groups, edges = _definitions()

    # 1. The global lineage with every group expanded: each asset's node and one edge per dependency.
    expanded = ",".join(f"global@global:{group}" for group in sorted(set(groups.values())))
    driver.get(f"{base}/asset-groups?expanded={urllib.parse.quote(expanded)}")  # type: ignore[attr-defined]

    def graph_ready() -> bool:
        shown = _shown_names(_body_text(driver))
        return all(any(matches(name) for matches in shown) for name in groups)

    _wait_for(driver, graph_ready, f"every asset node ({sorted(groups)})", "lineage")
    time.sleep(1)  # edges are laid out with the nodes; let the last frame paint before the screenshot
    driver.save_screenshot(str(shots / "lineage.png"))  # type: ignore[attr-defined]
    drawn = driver.find_elements(By.CSS_SELECTOR, "svg path[marker-end]")  # type: ignore[attr-defined]
    assert len(drawn) >= len(edges), f"{len(drawn)} lineage edges drawn for {len(edges)} dependencies"

    # 2. The partitioned asset's partitions: the one materialized day among the instance's few days.
    driver.get(f"{base}/assets/validated_readings?view=partitions")  # type: ignore[attr-defined]
    _wait_for(driver, lambda: "Materialized (1)" in _body_text(driver), "one materialized partition", "parts")
    assert "Missing (" in _body_text(driver)  # the other days of the range are shown as missing
    # Hide the missing days: the list then shows the materialized day.
    _click(driver, "//label[starts-with(normalize-space(), 'Missing (')]")
    _wait_for(driver, lambda: DAY.isoformat() in _body_text(driver), f"the materialized day {DAY}", "parts")
    driver.save_screenshot(str(shots / "partitions.png"))  # type: ignore[attr-defined]

    # 3. The asset's checks and their results.
    driver.get(f"{base}/assets/validated_readings?view=checks")  # type: ignore[attr-defined]
    checks = ("matches_reading_schema", "unique_series_timestamps", "every_raw_reading_accounted_for")
    _wait_for(driver, lambda: all(c in _body_text(driver) for c in checks), "the asset checks", "checks")
    _wait_for(driver, lambda: "Passed" in _body_text(driver), "a passed check result", "checks")
    driver.save_screenshot(str(shots / "checks.png"))  # type: ignore[attr-defined]
    assert _body_text(driver).count("Succeeded") >= len(checks), "every check's last run succeeded"

    # 4. The automation sensor, switched on.
    driver.get(f"{base}/automation")  # type: ignore[attr-defined]
    _wait_for(
        driver, lambda: "automation_sensor" in _body_text(driver), "the automation sensor", "automation"
    )
    # The row of the automation sensor: the smallest block that names it and no other automation. It holds
    # two checkboxes once loaded, the row's selection box and then the on/off switch (until the sensor's
    # state has loaded, only the selection box and a placeholder are drawn).
    others = [n for n in ("kafka_offset_sensor", "retention_schedule") if n in _body_text(driver)]
    exclude = "".join(f"[not(contains(., '{n}'))]" for n in others)
    row_boxes = f"//input[@type='checkbox'][ancestor::*[contains(., 'automation_sensor')]{exclude}]"

    def row_with_switch() -> list[object] | None:
        found = driver.find_elements(By.XPATH, row_boxes)  # type: ignore[attr-defined]
        return found if len(found) >= 2 else None

    switches = _wait_for(driver, row_with_switch, "the automation sensor's switch", "automation")
    switch = switches[-1]  # type: ignore[index]
    driver.save_screenshot(str(shots / "automation.png"))  # type: ignore[attr-defined]
    assert switch.is_selected(), "the automation sensor is shown switched off"


@pytest.mark.integration
def test_report_plots_render_in_the_browser(ui: RunningUI, browser: object) -> None:
    """``tsplatform report`` on the same lake, opened from disk (no network): every figure draws."""
    from selenium.webdriver.common.by import By

    out = ui.tmp / "report.html"
    result = subprocess.run(
        [str(BIN / "tsplatform"), "report", "--out", str(out)],
        cwd=REPO,
        env=ui.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = int(result.stdout.split(" figures")[0].rsplit(" ", 1)[1])
    assert figures >= 2  # one raw-vs-cleaned figure per series of the day (two series)
    driver = browser
    driver.get(out.as_uri())  # type: ignore[attr-defined]

    def drawn() -> int:
        return len(driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot svg.main-svg"))  # type: ignore[attr-defined]

    _wait_for(driver, lambda: drawn() >= figures, f"{figures} drawn plotly figures", "report")
    driver.save_screenshot(str(artifacts_dir() / "report.png"))  # type: ignore[attr-defined]
    points = driver.find_elements(
        By.CSS_SELECTOR, ".js-plotly-plot .scatterlayer .point, .js-plotly-plot canvas"
    )  # type: ignore[attr-defined]
    assert points, "the report's figures have no drawn points"
