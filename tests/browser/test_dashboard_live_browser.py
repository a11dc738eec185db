"""The dashboard on the REAL service: the node trades the torch-free program on the local venue
(alpaca-py against our paper exchange, one stored bar every 1.5 s). A fill on the venue shows in
the positions table and the P&L tile within 2 s; the kill button (typed reason, confirm) halts
the node, cancels its orders, writes the audit log, and HALTED survives a reload."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "serve"))
from serve_ui_support import API_KEY, serve_in_thread
from test_dashboard_browser import (  # noqa: F401  (fixtures)
    LIVE_UPDATE_S,
    Dashboard,
    Watch,
    _login,
    _page,
    _shots,
    _wait_until,
    browser,
    context,
)

from tradeforge.execution.node import NodeConfig
from tradeforge.experiment.paper import PaperConfig
from tradeforge.risk import RiskConfig
from tradeforge.serve.app import create_app
from tradeforge.serve.auth import Authenticator
from tradeforge.serve.config import ReplayConfig, ServeConfig
from tradeforge.serve.runtime import TradingService
from tradeforge.testing.programs import numpy_program

pytestmark = pytest.mark.browser


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Dashboard]:
    config = ServeConfig(
        policy=str(tmp_path / "unused"), venue="local", state_dir=str(tmp_path / "svc"),
        replay=ReplayConfig(start="2010-01-04", end="2010-06-30", bar_interval_s=1.5),
        paper=PaperConfig(node=NodeConfig(strategy_id="swing"), risk=RiskConfig(max_gross=2.0)),
    )  # fmt: skip
    service = TradingService(config, numpy_program()).start()
    try:
        with serve_in_thread(create_app(service, Authenticator(API_KEY))) as server:
            yield Dashboard(server.url, API_KEY, lambda: None, service)
    finally:
        service.stop()


def _fills(service: Any) -> int:
    return len(service.snapshot().fills)


def test_a_venue_fill_reaches_the_page_within_two_seconds_and_the_kill_halts(
    live: Dashboard,
    context: tuple[Any, Watch],  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    ctx, watch = context
    page = _page(ctx, watch)
    _login(page, live, watch, "/positions")
    overview = _page(ctx, watch)
    overview.goto(live.url + "/")
    table = page.get_by_test_id("positions-table")
    pnl = overview.get_by_test_id("tile-day-pnl")
    _wait_until(lambda: _fills(live.service) > 0, 30.0, "the first fill on the venue")
    time.sleep(0.5)
    lags = []
    for _ in range(2):  # two fills in a row, each timed from when the store has it
        seen, table_before, pnl_before = _fills(live.service), table.inner_text(), pnl.inner_text()
        _wait_until(lambda seen=seen: _fills(live.service) > seen, 10.0, "the next fill")
        filled_at = time.monotonic()
        _wait_until(lambda b=table_before: table.inner_text() != b, LIVE_UPDATE_S, "table change")
        _wait_until(lambda b=pnl_before: pnl.inner_text() != b, LIVE_UPDATE_S, "P&L change")
        lags.append(time.monotonic() - filled_at)
    assert max(lags) < LIVE_UPDATE_S
    symbols = {p.symbol for p in live.service.snapshot().positions}
    assert symbols
    assert all(s in table.inner_text() for s in symbols)
    overview.screenshot(path=str(_shots(tmp_path) / "dashboard-live-overview.png"))

    overview.get_by_test_id("kill-reason").fill("browser drill on the venue")
    overview.get_by_test_id("kill-button").click()
    overview.wait_for_url(live.url + "/ui/kill")
    overview.get_by_test_id("kill-confirm").click()
    overview.wait_for_url(live.url + "/")
    assert overview.get_by_test_id("trading-state").inner_text() == "HALTED"
    overview.reload()
    assert overview.get_by_test_id("trading-state").inner_text() == "HALTED"
    _wait_until(lambda: page.get_by_test_id("trading-state").inner_text() == "HALTED",
                LIVE_UPDATE_S, "HALTED on the positions page")  # fmt: skip
    snap = live.service.snapshot()
    assert snap.killed
    assert snap.kill_reason == "browser drill on the venue"
    kills = [a for a in snap.audit if a.kind.endswith("kill") or "kill" in a.kind]
    assert kills, [a.kind for a in snap.audit]
    _wait_until(lambda: not live.service.snapshot().open_orders, 1.0, "open orders canceled")
    assert watch.external == []
    assert watch.errors == []
