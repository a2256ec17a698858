"""One real browser: headless Chromium loads the served dashboard and a workflow deep link."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from choreoscope.nats_server import free_port
from collector.segment_writer import SegmentWriter
from dashboard.controls import REFRESH_S
from store import StoreLayout
from tests.dashboard.browser_helpers import (
    HeadlessChromium,
    chromium_binary,
    serve_dashboard,
    stop_process,
)
from tests.dashboard.fixture_store import FAILED_WORKFLOW, HOSTILE_WORKFLOW, STALLED_WORKFLOW
from tests.dashboard.scenario_spans import heartbeat_rows


@contextlib.contextmanager
def _browsing(data: Path, tmp_path: Path) -> Iterator[tuple[HeadlessChromium, str]]:
    """The dashboard served over ``data``, and a headless Chromium; yields the browser
    and the dashboard's URL."""
    binary = chromium_binary()
    if binary is None:
        pytest.fail("chromium is not installed: run .ci/run (as root) or apt-get install chromium")
    port = free_port()
    server = serve_dashboard(data, port=port, log=tmp_path / "dashboard.log")
    try:
        with HeadlessChromium(binary=binary, profile_dir=tmp_path / "chromium") as browser:
            yield browser, f"http://127.0.0.1:{port}"
    finally:
        stop_process(server)


@pytest.mark.timeout(180)
def test_chromium_opens_the_dashboard_and_a_workflow_deep_link(
    recruitment_store: Path, tmp_path: Path
):
    with _browsing(recruitment_store, tmp_path) as (browser, url):
        browser.open(f"{url}/")
        overview = browser.wait_for_text("Overview", "Started", "Worst hops")
        assert "Traceback" not in overview

        browser.open(f"{url}/?workflow={FAILED_WORKFLOW}")
        detail = browser.wait_for_text("Workflow detail", FAILED_WORKFLOW, "Timeline", "Steps")
        assert "Traceback" not in detail
        browser.wait_for_elements("canvas, svg.marks")  # the waterfall was drawn
        shot = tmp_path / "workflow-detail.png"
        browser.screenshot(shot)

        # A completed run's status reads whole, not "compl…".
        browser.open(f"{url}/?workflow={HOSTILE_WORKFLOW}")
        browser.wait_for_text(HOSTILE_WORKFLOW, "completed", "Timeline")
        assert cut_metric_values(browser) == []

        # Clicking a row of the Workflows table opens that workflow (stalled first).
        browser.open(f"{url}/workflows")
        browser.wait_for_text("Workflows", "select a row")
        browser.wait_for_elements("[data-testid='stDataFrame'] canvas")
        time.sleep(1.0)  # the grid lays out its rows after its canvas appears
        browser.click_first_table_row()
        browser.wait_for_text("Workflow detail", STALLED_WORKFLOW, "Timeline")
        assert f"workflow={STALLED_WORKFLOW}" in browser.current_url()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


@pytest.mark.timeout(180)
def test_an_open_page_refreshes_itself_until_paused(tmp_path: Path):
    layout = StoreLayout.at(tmp_path / "data")
    layout.ensure()
    writer = SegmentWriter(layout=layout, writer_id="live")
    now = dt.datetime.now(dt.UTC)
    writer.write("heartbeats", heartbeat_rows([("intake", now, 0)]), at=now)
    try:
        with _browsing(layout.root, tmp_path) as (browser, url):
            browser.open(f"{url}/services")
            browser.wait_for_text("Services", "Instances alive")
            later = dt.datetime.now(dt.UTC)
            writer.write("heartbeats", heartbeat_rows([("latecomer", later, 0)]), at=later)
            # No reload: the live fragment reruns every few seconds and picks it up.
            browser.wait_for_elements("[data-testid='stMetricValue']", count=3)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and "2" not in alive_tile(browser):
                time.sleep(0.5)
            assert alive_tile(browser) == "2"

            # Paused, the page holds still while the user reads it...
            click_label(browser, "Live refresh")
            time.sleep(2.0)  # the rerun the toggle itself causes
            third = dt.datetime.now(dt.UTC)
            writer.write("heartbeats", heartbeat_rows([("third", third, 0)]), at=third)
            time.sleep(3 * REFRESH_S)
            assert alive_tile(browser) == "2"
            # ...and live again, it catches up.
            click_label(browser, "Live refresh")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and alive_tile(browser) != "3":
                time.sleep(0.5)
            assert alive_tile(browser) == "3"
    finally:
        writer.close()


def click_label(browser: HeadlessChromium, text: str) -> None:
    """Click the widget whose label starts with ``text`` (a toggle, a checkbox), with the
    mouse: Streamlit's toggles answer pointer events, not a scripted click()."""
    found = browser.call(
        "Runtime.evaluate",
        expression=(
            "(() => { const l = Array.from(document.querySelectorAll('label'))"
            f".find(e => e.innerText.trim().startsWith({text!r})); "
            "return l ? JSON.stringify(l.getBoundingClientRect()) : ''; })()"
        ),
        returnByValue=True,
    )["result"].get("value")
    assert found, f"no widget labelled {text!r}"
    box = json.loads(found)
    x, y = box["x"] + 16, box["y"] + box["height"] / 2  # the switch sits left of its text
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        browser.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def cut_metric_values(browser: HeadlessChromium) -> list[str]:
    """The metric values the page shows cut short (with an ellipsis)."""
    selector = "[data-testid='stMetricValue'], [data-testid='stMetricValue'] *"
    return browser.call(
        "Runtime.evaluate",
        expression=(
            f"Array.from(document.querySelectorAll({json.dumps(selector)}))"
            ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"
        ),
        returnByValue=True,
    )["result"]["value"]


def alive_tile(browser: HeadlessChromium) -> str:
    result = browser.call(
        "Runtime.evaluate",
        expression="document.querySelector(\"[data-testid='stMetricValue']\").innerText",
    )
    return str(result["result"].get("value", "")).strip()


@pytest.mark.timeout(180)
def test_a_page_opened_first_after_a_start_has_the_app_s_navigation(
    recruitment_store: Path, tmp_path: Path
):
    # with a pages/ directory beside app.py, Streamlit ran a page deep-linked before
    # anyone opened the root on its own: file names as navigation ("app", "sql
    # console"), the app's layout and routing skipped
    with _browsing(recruitment_store, tmp_path) as (browser, url):
        browser.open(f"{url}/workflows")
        text = browser.wait_for_text("select a row to open it")
        assert "Choreography map" in text and "SQL console" in text
        assert "sql console" not in text
