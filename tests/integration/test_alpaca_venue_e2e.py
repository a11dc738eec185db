"""The unmodified alpaca-py client against the local venue: account, clock, calendar, assets,
orders by quantity and by notional, get by client id, cancel, positions, bars, and trade updates
over the websocket; the venue's state survives a restart on its --state folder."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("alpaca")

import test_alpaca_venue_support as support
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetCalendarRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)
from alpaca.trading.stream import TradingStream
from test_alpaca_venue_support import KEY, SECRET, Admin, start_venue, wait_for

from tradeforge.data.panel import BarPanel
from tradeforge.execution.venue import VenueServer

# fixtures shared by the venue integration tests (pytest finds them as module attributes)
admin, no_thread_left, trading_client, venue = (
    support.admin,
    support.no_thread_left,
    support.trading_client,
    support.venue,
)


def test_account_clock_calendar_assets(trading_client: TradingClient) -> None:
    account = trading_client.get_account()
    assert (account.status.value, account.cash, account.equity) == ("ACTIVE", "1000000", "1000000")
    clock = trading_client.get_clock()
    assert clock.timestamp.isoformat() == "2010-01-04T00:00:00+00:00"
    assert clock.is_open is True
    days = trading_client.get_calendar(
        GetCalendarRequest(start=datetime(2010, 1, 4).date(), end=datetime(2010, 1, 8).date())
    )
    assert [d.date.isoformat() for d in days] == [f"2010-01-0{i}" for i in range(4, 9)]
    assets = trading_client.get_all_assets()
    assert sorted(a.symbol for a in assets) == ["AAPL", "IBM", "MSFT"]
    assert trading_client.get_asset("AAPL").fractionable is True
    with pytest.raises(APIError) as info:
        trading_client.get_asset("ZZZZ")
    assert (info.value.status_code, info.value.code) == (404, 40410000)


def test_orders_by_quantity_and_notional_cancel_positions(
    trading_client: TradingClient, admin: Admin, equities_panel: BarPanel
) -> None:
    by_qty = trading_client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=10, side=OrderSide.BUY,
                           time_in_force=TimeInForce.DAY, client_order_id="e2e-qty")
    )  # fmt: skip
    assert (by_qty.status, by_qty.qty, by_qty.client_order_id) == (
        OrderStatus.ACCEPTED, "10", "e2e-qty"
    )  # fmt: skip
    by_notional = trading_client.submit_order(
        MarketOrderRequest(symbol="MSFT", notional=1000.5, side=OrderSide.BUY,
                           time_in_force=TimeInForce.DAY, client_order_id="e2e-notional")
    )  # fmt: skip
    assert (by_notional.qty, by_notional.notional) == (None, "1000.5")
    resting = trading_client.submit_order(
        LimitOrderRequest(symbol="IBM", qty=2, side=OrderSide.BUY, limit_price=1.0,
                          time_in_force=TimeInForce.GTC, client_order_id="e2e-limit")
    )  # fmt: skip
    open_orders = trading_client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert sorted(o.client_order_id for o in open_orders) == [
        "e2e-limit",
        "e2e-notional",
        "e2e-qty",
    ]
    assert trading_client.get_order_by_client_id("e2e-qty").id == by_qty.id
    assert trading_client.get_order_by_id(by_qty.id).client_order_id == "e2e-qty"
    trading_client.cancel_order_by_id(resting.id)
    assert trading_client.get_order_by_client_id("e2e-limit").status is OrderStatus.CANCELED
    admin.advance()
    filled = trading_client.get_order_by_client_id("e2e-qty")
    assert (filled.status, filled.filled_qty) == (OrderStatus.FILLED, "10")
    j, t = equities_panel.column("AAPL"), admin.state()["bar"]
    assert float(filled.filled_avg_price) == equities_panel.open[t, j]  # type: ignore[arg-type]
    positions = {p.symbol: p for p in trading_client.get_all_positions()}
    assert sorted(positions) == ["AAPL", "MSFT"]
    assert positions["AAPL"].qty == "10"
    msft_close = Decimal(repr(float(equities_panel.close[t - 1, equities_panel.column("MSFT")])))
    expected_msft = (Decimal("1000.5") / msft_close).quantize(
        Decimal("1e-9"), rounding="ROUND_DOWN"
    )
    assert Decimal(positions["MSFT"].qty) == expected_msft
    assert trading_client.get_open_position("AAPL").avg_entry_price == filled.filled_avg_price
    closing = trading_client.close_position("AAPL", ClosePositionRequest(qty="4"))
    assert (closing.side, closing.qty) == (OrderSide.SELL, "4")
    admin.advance()
    assert trading_client.get_open_position("AAPL").qty == "6"
    account = trading_client.get_account()
    cash, equity = Decimal(account.cash or "0"), Decimal(account.equity or "0")
    marks = {s: Decimal(repr(float(equities_panel.close[t + 1, equities_panel.column(s)])))
             for s in ("AAPL", "MSFT")}  # fmt: skip
    assert equity == cash + 6 * marks["AAPL"] + expected_msft * marks["MSFT"]
    with pytest.raises(APIError) as info:
        trading_client.cancel_order_by_id(by_qty.id)
    assert (info.value.status_code, info.value.code) == (422, 42210000)


def test_bars_match_the_stored_data_and_stop_at_the_replay_clock(
    venue: VenueServer, admin: Admin, equities_panel: BarPanel
) -> None:
    data = StockHistoricalDataClient(KEY, SECRET, url_override=venue.url)
    try:
        request = StockBarsRequest(symbol_or_symbols=["AAPL", "IBM"], timeframe=TimeFrame.Day,
                                   start=datetime(2009, 12, 1))  # fmt: skip
        bars = data.get_stock_bars(request)
        aapl = bars["AAPL"]
        assert aapl[-1].timestamp.isoformat() == "2010-01-04T00:00:00+00:00"
        rows = np.flatnonzero(
            (equities_panel.index >= "2009-12-01") & (equities_panel.index <= "2010-01-04")
        )
        j = equities_panel.column("AAPL")
        assert [b.close for b in aapl] == list(equities_panel.close[rows, j])
        assert [b.volume for b in aapl] == list(equities_panel.volume[rows, j])
        admin.advance(2)
        assert data.get_stock_bars(request)["IBM"][-1].timestamp.isoformat() == (
            "2010-01-06T00:00:00+00:00"
        )
    finally:
        data._session.close()


def test_trade_updates_over_the_websocket(trading_client: TradingClient, venue: VenueServer,
                                          admin: Admin) -> None:  # fmt: skip
    received: list[Any] = []

    async def on_update(update: Any) -> None:
        received.append(update)

    stream = TradingStream(KEY, SECRET, paper=True, url_override=venue.stream_url)
    stream.subscribe_trade_updates(on_update)
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: admin.state()["stream"]["listeners"] == 1)
        order = trading_client.submit_order(
            MarketOrderRequest(symbol="AAPL", qty=3, side=OrderSide.BUY,
                               time_in_force=TimeInForce.DAY, client_order_id="ws-1")
        )  # fmt: skip
        admin.advance()
        wait_for(lambda: len(received) >= 2)
        new, fill = received
        assert (new.event, new.order.id, new.order.status) == ("new", order.id, OrderStatus.NEW)
        assert (fill.event, fill.qty, fill.position_qty) == ("fill", 3.0, 3.0)
        assert fill.order.status is OrderStatus.FILLED
        assert fill.execution_id is not None
        assert fill.price == float(trading_client.get_order_by_id(order.id).filled_avg_price)  # type: ignore[arg-type]
    finally:
        if stream._loop is not None:
            asyncio.run_coroutine_threadsafe(stream.stop_ws(), stream._loop).result(5)
            asyncio.run_coroutine_threadsafe(stream.close(), stream._loop).result(5)
        thread.join(10)
    assert not thread.is_alive()


def test_wrong_keys_are_refused(venue: VenueServer) -> None:
    client = TradingClient("nope", "nope", paper=True, url_override=venue.url)
    try:
        with pytest.raises(APIError) as info:
            client.get_account()
        assert info.value.status_code == 401
        assert str(info.value) == '{"message":"unauthorized"}'
    finally:
        client._session.close()


def test_state_survives_a_venue_restart(equities_panel: BarPanel, tmp_path: Path) -> None:
    server = start_venue(equities_panel, state_dir=tmp_path)
    client = TradingClient(KEY, SECRET, paper=True, url_override=server.url)
    admin = Admin(server.url)
    try:
        client.submit_order(MarketOrderRequest(symbol="IBM", qty=7, side=OrderSide.BUY,
                                               time_in_force=TimeInForce.GTC,
                                               client_order_id="keep-1"))  # fmt: skip
        admin.advance(3)
        before = (client.get_order_by_client_id("keep-1"), client.get_all_positions(),
                  client.get_account().cash, client.get_clock().timestamp)  # fmt: skip
    finally:
        client._session.close()
        admin.close()
        server.stop()
    server = start_venue(equities_panel, state_dir=tmp_path)
    client = TradingClient(KEY, SECRET, paper=True, url_override=server.url)
    try:
        after = (client.get_order_by_client_id("keep-1"), client.get_all_positions(),
                 client.get_account().cash, client.get_clock().timestamp)  # fmt: skip
        assert after == before
        client._retry = 0  # one POST: show the venue's answer, not the SDK's retries
        with pytest.raises(APIError) as info:
            client.submit_order(MarketOrderRequest(symbol="IBM", qty=1, side=OrderSide.BUY,
                                                   time_in_force=TimeInForce.DAY,
                                                   client_order_id="keep-1"))  # fmt: skip
        assert (info.value.status_code, info.value.code, info.value.message) == (
            422, 40010001, "client_order_id must be unique"
        )  # fmt: skip
    finally:
        client._session.close()
        server.stop()
