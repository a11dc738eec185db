"""The operator dashboard in headless Chromium (Playwright driving Debian's chromium) against a
real uvicorn server on 127.0.0.1: login, live updates after a fill, the kill switch, no request
leaving the host, and a non-blank 1280x800 screenshot of every page.

The app and the service behind it come from ONE fixture, :func:`dashboard`; today it wires the
stand-in service of ``tests/unit/serve/serve_ui_support.py``, later the real ``TradingService``
on the local venue can take its place (it must offer ``simulate_fill``: one fill that changes
the positions and the equity).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image, ImageStat

# the stand-in service and the server helper live next to the dashboard's unit tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "serve"))
from serve_ui_support import (
    API_KEY,
    StandInService,
    make_app,
    serve_in_thread,
    simulate_fill,
)

pytestmark = pytest.mark.browser

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 800}
LIVE_UPDATE_S = 2.0

# page path -> text it must show
PAGE_TEXT = {
    "/": ["Overview", "Equity", "Today's P&L", "Trading control"],
    "/positions": ["Positions & orders", "AAPL", "MSFT", "Open orders", "Risk denials"],
    "/models": ["Models", "ppo-demo", "champion", "challenger"],
    "/risk": ["Limits and their use", "max_gross_exposure", "Time in each trading state"],
    "/audit": ["Audit log", "Head of the audit chain", "order.submitted"],
    "/alerts": ["Alerts", "AAPL data is stale", "connection refused"],
}


@dataclass
class Dashboard:
    """A running dashboard: where it is, how to log in, and how to make a fill happen."""

    url: str
    api_key: str
    simulate_fill: Callable[[], Any]
    service: Any


@pytest.fixture
def dashboard() -> Iterator[Dashboard]:
    """The app and its service, served on 127.0.0.1 (the one place to swap in the real
    service)."""
    service = StandInService()
    app = make_app(service, poll_s=0.1, heartbeat_s=1.0)
    with serve_in_thread(app) as server:
        yield Dashboard(server.url, API_KEY, lambda: simulate_fill(service), service)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Watch:
    """What pages tried that they should not: requests off the host, console errors."""

    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def context(browser: Any) -> Iterator[tuple[Any, Watch]]:
    watch = Watch()
    ctx = browser.new_context(viewport=VIEWPORT)

    def gate(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith("data:") or host == "127.0.0.1":
            route.continue_()
        else:
            watch.external.append(route.request.url)
            route.abort()

    ctx.route("**/*", gate)
    try:
        yield ctx, watch
    finally:
        ctx.close()


def _page(ctx: Any, watch: Watch) -> Any:
    page = ctx.new_page()
    page.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watch.errors.append(str(e)))
    return page


def _login(page: Any, dash: Dashboard, watch: Watch, path: str = "/") -> None:
    page.goto(dash.url + path)
    page.get_by_test_id("login-key").fill(dash.api_key)
    page.get_by_test_id("login-button").click()
    page.wait_for_url(dash.url + path)
    watch.errors.clear()  # the login page itself comes with status 401, which chromium logs


def _wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until ``check()`` is true (polled from Python: the pages' CSP forbids the eval
    that ``page.wait_for_function`` needs)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{what} not seen within {timeout_s} s")


def _wait_change(locator: Any, before: str, timeout_s: float) -> float:
    """Seconds until ``locator``'s text differs from ``before`` (fails after ``timeout_s``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if locator.inner_text() != before:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"text stayed {before!r} for {timeout_s} s")


def _shots(tmp_path: Path) -> Path:
    """Where screenshots go: ``$TF_DASHBOARD_SHOTS`` (kept as artefacts) or the test's tmp."""
    shots = Path(os.environ.get("TF_DASHBOARD_SHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def test_login_live_update_and_kill(
    dashboard: Dashboard, context: tuple[Any, Watch], tmp_path: Path
) -> None:
    ctx, watch = context
    page = _page(ctx, watch)
    page.goto(dashboard.url + "/")
    assert page.get_by_test_id("login-form").is_visible()
    page.screenshot(path=str(_shots(tmp_path) / "dashboard-login.png"))
    page.get_by_test_id("login-key").fill("wrong-key-wrong-key-000")
    page.get_by_test_id("login-button").click()
    assert "That API key is not valid." in page.get_by_test_id("login-error").inner_text()
    _login(page, dashboard, watch)
    equity = page.get_by_test_id("tile-equity")
    before = dashboard.service.snapshot()
    assert f"{before.equity:,.2f}" in equity.inner_text()
    assert page.get_by_test_id("trading-state").inner_text() == "ACTIVE"
    heartbeat = page.get_by_test_id("heartbeat")
    _wait_until(lambda: "hb-ok" in (heartbeat.get_attribute("class") or ""), 5.0, "stream open")

    positions = _page(ctx, watch)
    positions.goto(dashboard.url + "/positions")
    table = positions.get_by_test_id("positions-table")
    assert table.locator("tbody tr").count() == 2
    pnl_before = page.get_by_test_id("tile-day-pnl").inner_text()
    table_before = table.inner_text()

    after = dashboard.simulate_fill()
    pnl_s = _wait_change(page.get_by_test_id("tile-day-pnl"), pnl_before, LIVE_UPDATE_S)
    table_s = _wait_change(table, table_before, LIVE_UPDATE_S)
    assert f"{after.day_pnl:+,.2f}" in page.get_by_test_id("tile-day-pnl").inner_text()
    assert f"{after.equity:,.2f}" in equity.inner_text()
    assert table.locator("tbody tr").count() == 3
    assert "IBM" in table.inner_text()
    print(f"live update: P&L tile {pnl_s * 1000:.0f} ms, positions table {table_s * 1000:.0f} ms")

    # heartbeats keep coming while nothing changes
    def beats() -> int:
        return int(heartbeat.get_attribute("data-beats") or "0")

    seen = beats()
    _wait_until(lambda: beats() > seen, 3.0, "a heartbeat")

    # the kill switch: a typed reason, a confirm step, HALTED, still HALTED after a reload
    page.get_by_test_id("kill-button").click()  # empty reason: the browser refuses to submit
    assert page.url == dashboard.url + "/"
    assert dashboard.service.calls == []
    page.get_by_test_id("kill-reason").fill("operator drill")
    page.get_by_test_id("kill-button").click()
    page.wait_for_url(dashboard.url + "/ui/kill")
    assert page.get_by_test_id("confirm-reason").inner_text() == "operator drill"
    page.get_by_test_id("kill-confirm").click()
    page.wait_for_url(dashboard.url + "/")
    assert page.get_by_test_id("trading-state").inner_text() == "HALTED"
    assert dashboard.service.calls == [("kill", "operator drill", "dashboard")]
    page.reload()
    assert page.get_by_test_id("trading-state").inner_text() == "HALTED"
    assert page.get_by_test_id("resume-form").is_visible()
    assert not page.get_by_test_id("kill-form").is_visible()
    page.screenshot(path=str(_shots(tmp_path) / "dashboard-overview-halted.png"))
    # the other open page learns it from the stream
    other = positions.get_by_test_id("trading-state")
    _wait_until(lambda: other.inner_text() == "HALTED", LIVE_UPDATE_S, "HALTED on /positions")

    assert watch.external == []
    assert watch.errors == []


def test_every_page_renders_non_blank_with_no_request_off_the_host(
    dashboard: Dashboard, context: tuple[Any, Watch], tmp_path: Path
) -> None:
    ctx, watch = context
    page = _page(ctx, watch)
    _login(page, dashboard, watch)
    shots = _shots(tmp_path)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    for path, expected in PAGE_TEXT.items():
        page.goto(dashboard.url + path)
        if path == "/":
            page.wait_for_selector("#equity-chart .main-svg")  # plotly drew the chart
        text = page.inner_text("body").lower()  # headings are upper-cased by the CSS
        for needle in expected:
            assert needle.lower() in text, (path, needle)
        name = "overview" if path == "/" else path.strip("/")
        file = shots / f"dashboard-{name}.png"
        page.screenshot(path=str(file))
        with Image.open(file) as img:
            assert img.size == (VIEWPORT["width"], VIEWPORT["height"])
            gray = img.convert("L")
            stat = ImageStat.Stat(gray)
            assert stat.stddev[0] > 10, (path, stat.stddev)  # not one flat colour
            assert len(gray.getcolors(maxcolors=65536) or []) > 20, path
    assert requested, "no requests were recorded"
    assert all(urlsplit(u).hostname == "127.0.0.1" or u.startswith("data:") for u in requested)
    assert any(u.endswith("/static/plotly.min.js") for u in requested)
    assert watch.external == []
    assert watch.errors == []
