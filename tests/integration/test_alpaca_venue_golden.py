"""Golden request/response fixtures (tests/fixtures/alpaca): the exact JSON the venue answers to
the exact requests alpaca-py sends, step by step on a fresh venue, plus the trade updates it
publishes. A change to either side shows up as a diff of these files.

The request bodies are what alpaca-py 0.4x builds (``to_request_fields``); that is checked too,
so a new SDK that sends something else fails here first. Regenerate after an intended change
with ``TF_UPDATE_GOLDEN=1 pytest tests/integration/test_alpaca_venue_golden.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests

pytest.importorskip("alpaca")

import test_alpaca_venue_support as support
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from test_alpaca_venue_support import KEY, SECRET

from tradeforge.data.panel import BarPanel

no_thread_left = support.no_thread_left

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "alpaca"
UPDATE = os.environ.get("TF_UPDATE_GOLDEN") == "1"
AUTH = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


def _sdk_body(request: Any) -> dict[str, Any]:
    return json.loads(json.dumps(request.to_request_fields(), default=str))


ORDER_QTY = MarketOrderRequest(symbol="AAPL", qty=10, side=OrderSide.BUY,
                               time_in_force=TimeInForce.DAY, client_order_id="g-qty")  # fmt: skip
ORDER_NOTIONAL = MarketOrderRequest(symbol="MSFT", notional=1000.5, side=OrderSide.BUY,
                                    time_in_force=TimeInForce.DAY,
                                    client_order_id="g-notional")  # fmt: skip
ORDER_LIMIT = LimitOrderRequest(symbol="IBM", qty=2, side=OrderSide.BUY, limit_price=1.25,
                                time_in_force=TimeInForce.GTC, client_order_id="g-limit")  # fmt: skip

#: (name, method, path, params, body, headers): run in this order on one fresh venue.
STEPS: list[tuple[str, str, str, dict[str, Any] | None, Any, dict[str, str]]] = [
    ("01_get_account", "GET", "/v2/account", None, None, AUTH),
    ("02_get_clock", "GET", "/v2/clock", None, None, AUTH),
    ("03_get_calendar", "GET", "/v2/calendar", {"start": "2010-01-04", "end": "2010-01-05"}, None, AUTH),
    ("04_get_asset", "GET", "/v2/assets/AAPL", None, None, AUTH),
    ("05_submit_market_qty", "POST", "/v2/orders", None, _sdk_body(ORDER_QTY), AUTH),
    ("06_submit_market_notional", "POST", "/v2/orders", None, _sdk_body(ORDER_NOTIONAL), AUTH),
    ("07_submit_limit_gtc", "POST", "/v2/orders", None, _sdk_body(ORDER_LIMIT), AUTH),
    ("08_submit_duplicate_id", "POST", "/v2/orders", None, _sdk_body(ORDER_QTY), AUTH),
    ("09_get_by_client_order_id", "GET", "/v2/orders:by_client_order_id",
     {"client_order_id": "g-qty"}, None, AUTH),
    ("10_cancel_limit", "DELETE", "/v2/orders/{g-limit}", None, None, AUTH),
    ("11_cancel_again_not_cancelable", "DELETE", "/v2/orders/{g-limit}", None, None, AUTH),
    ("12_admin_advance", "POST", "/admin/advance", None, {"bars": 1}, {}),
    ("13_get_positions", "GET", "/v2/positions", None, None, AUTH),
    ("14_get_orders_all", "GET", "/v2/orders", {"status": "all", "direction": "asc"}, None, AUTH),
    ("15_get_bars_page", "GET", "/v2/stocks/bars",
     {"symbols": "AAPL,MSFT", "timeframe": "1Day", "start": "2009-12-30T00:00:00Z", "limit": 3,
      "adjustment": "all", "feed": "iex"}, None, AUTH),
    ("16_get_order_unknown", "GET", "/v2/orders/00000000-0000-0000-0000-000000000000", None, None, AUTH),
    ("17_sell_more_than_held", "POST", "/v2/orders", None,
     {"symbol": "IBM", "qty": 1.0, "side": "sell", "type": "market", "time_in_force": "day"}, AUTH),
    ("18_unauthorized", "GET", "/v2/account", None, None, {"APCA-API-KEY-ID": "x", "APCA-API-SECRET-KEY": "y"}),
]  # fmt: skip


def _check(name: str, actual: dict[str, Any]) -> None:
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return
    assert path.is_file(), f"missing golden file {path}; run with TF_UPDATE_GOLDEN=1"
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert actual == expected, f"{name} differs from its golden file"


def test_sdk_request_bodies_are_what_the_fixtures_hold() -> None:
    for name, request in (("05_submit_market_qty", ORDER_QTY),
                          ("06_submit_market_notional", ORDER_NOTIONAL),
                          ("07_submit_limit_gtc", ORDER_LIMIT)):  # fmt: skip
        if not UPDATE:
            stored = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
            assert stored["request"]["json"] == _sdk_body(request)


def test_golden_exchanges(equities_panel: BarPanel) -> None:
    server = support.start_venue(equities_panel)
    updates: list[dict[str, Any]] = []
    server.engine.listeners.append(updates.append)
    http = requests.Session()
    ids: dict[str, str] = {}
    try:
        for name, method, path, params, body, headers in STEPS:
            for cid, oid in ids.items():
                path = path.replace("{" + cid + "}", oid)
            reply = http.request(method, server.url + path, params=params, json=body,
                                 headers=headers, timeout=10)  # fmt: skip
            content = reply.json() if reply.content else None
            if method == "POST" and path == "/v2/orders" and reply.status_code == 200:
                ids[content["client_order_id"]] = content["id"]
            _check(name, {"request": {"method": method, "path": path, "params": params,
                                      "json": body},
                          "status": reply.status_code, "response": content})  # fmt: skip
        _check("19_trade_updates", {"messages": updates})
    finally:
        http.close()
        server.stop()
