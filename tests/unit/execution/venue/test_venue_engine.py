"""tradeforge.execution.venue.engine: Alpaca's order semantics over SimulatedBroker, on a replay
clock, with Alpaca's error answers; fills and fees are the simulator's own."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from venue_helpers import COSTS, make_engine, market, venue_config

from tradeforge.data.panel import BarPanel
from tradeforge.domain import OrderSide, SubmitOrder, Symbol
from tradeforge.execution import SimulatedBroker
from tradeforge.execution.venue import AlpacaApiError, VenueEngine, VenueError
from tradeforge.execution.venue.faults import PartialFillFault, RejectFault
from tradeforge.sim import SimConfig, trade_costs


@pytest.fixture
def engine(equities_panel: BarPanel) -> VenueEngine:
    eng, _ = make_engine(equities_panel)
    yield eng
    eng.close()


def _error(engine: VenueEngine, body: object) -> AlpacaApiError:
    with pytest.raises(AlpacaApiError) as info:
        engine.submit(body)
    return info.value


def test_replay_starts_at_the_first_bar_on_or_after_replay_start(engine: VenueEngine) -> None:
    assert engine.now == pd.Timestamp("2010-01-04", tz="UTC")
    assert engine.clock() == {
        "timestamp": "2010-01-04T00:00:00.000000Z", "is_open": True,
        "next_open": "2010-01-05T00:00:00.000000Z", "next_close": "2010-01-05T00:00:00.000000Z",
    }  # fmt: skip


def test_market_order_fills_on_the_next_bar_like_the_simulated_broker(
    engine: VenueEngine, equities_panel: BarPanel
) -> None:
    accepted = engine.submit(market("AAPL", "25", client_order_id="c1"))
    assert (accepted["status"], accepted["qty"], accepted["filled_qty"]) == ("accepted", "25", "0")
    assert engine.order_by_client_id("c1")["status"] == "new"
    engine.advance()
    # the same order on a bare SimulatedBroker at the same bar fills identically
    twin = SimulatedBroker.from_panel(equities_panel, SimConfig(costs=COSTS), start=engine.bar - 1)
    assert venue_config().sim == twin.config
    twin.submit(SubmitOrder(client_order_id="c1", strategy_id="s", symbol="AAPL",
                            side=OrderSide.BUY, quantity=Decimal(25)))  # fmt: skip
    (fill,) = twin.advance()
    done = engine.order_by_client_id("c1")
    assert done["status"] == "filled"
    assert Decimal(done["filled_avg_price"]) == fill.price
    assert Decimal(done["tf_fees"]) == fill.fee > 0
    assert done["tf_fills"][0]["qty"] == "25"
    j = twin.symbols.index(Symbol("AAPL"))
    t = engine.bar - 1
    expected = trade_costs(np.array([25.0]), np.array([twin.market.open[t + 1, j]]),
                           twin.market.volatility[t, j:j + 1], twin.market.adv[t, j:j + 1], COSTS)  # fmt: skip
    assert float(fill.fee) == pytest.approx(sum(float(p[0]) for p in expected), rel=1e-15)
    account = engine.account()
    assert Decimal(account["cash"]) == Decimal("1000000.0") - 25 * fill.price - fill.fee
    (position,) = engine.positions()
    assert (position["symbol"], position["qty"], position["side"]) == ("AAPL", "25", "long")


def test_duplicate_client_order_id_is_422_even_after_cancel(engine: VenueEngine) -> None:
    first = engine.submit(market(client_order_id="dup-1"))
    err = _error(engine, market(qty="3", client_order_id="dup-1"))
    assert (err.status, err.code, err.message) == (422, 40010001, "client_order_id must be unique")
    engine.cancel(first["id"])
    assert engine.order_by_id(first["id"])["status"] == "canceled"
    err = _error(engine, market(client_order_id="dup-1"))
    assert (err.status, err.code) == (422, 40010001)
    assert len(engine.orders(status="all")) == 1
    assert [e["outcome"] for e in engine.order_log] == [
        "created", "422 client_order_id must be unique", "422 client_order_id must be unique"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        ("not an object", 400, 40010000, "request body format is invalid"),
        (market(qty=None), 422, 40010001, "exactly one of qty and notional"),
        (market(notional=100.0), 422, 40010001, "exactly one of qty and notional"),
        (market(qty="0"), 422, 40010001, "qty = 0.0 is invalid"),
        (market(qty="-5"), 422, 40010001, "qty = -5.0 is invalid"),
        (market(qty="nan"), 422, 40010001, "qty = nan is invalid"),
        (market(qty="inf"), 422, 40010001, "qty = inf is invalid"),
        (market(type="limit"), 422, 40010001, "limit_price is required for limit orders"),
        (market(limit_price=10.0), 422, 40010001, "limit_price = 10.0 is invalid for market"),
        (
            market(extended_hours=True),
            422,
            40010001,
            "expected a limit order with time_in_force day",
        ),
        (market(type="trailing_stop"), 422, 40010001, "trailing_stop"),
        (market(time_in_force="gtd"), 422, 40010001, "time_in_force = 'gtd' is invalid"),
        (market(side="hold"), 422, 40010001, "side = 'hold' is invalid"),
        (market("ZZZZ"), 422, 40010001, "asset 'ZZZZ' not found"),
        (market(client_order_id="x" * 49), 422, 40010001, "at most 48 characters"),
        (
            market(side="sell"),
            403,
            40310000,
            "insufficient qty available for order (requested: 10, available: 0)",
        ),
        (market(qty="0.0000000001"), 422, 40010001, "more than 9 decimals"),
    ],
)
def test_invalid_orders_get_alpacas_error_answers(
    engine: VenueEngine, body: object, status: int, code: int, fragment: str
) -> None:
    err = _error(engine, body)
    assert (err.status, err.code) == (status, code)
    assert fragment in err.message
    assert engine.orders(status="all") == []
    assert len(engine.journal) == 0  # nothing refused reaches the journal


def test_untradable_asset_and_whole_shares(equities_panel: BarPanel) -> None:
    eng, _ = make_engine(equities_panel, untradable=("IBM",),
                         sim=SimConfig(costs=COSTS, fractional=False))  # fmt: skip
    try:
        assert eng.asset("IBM")["tradable"] is False
        assert eng.asset("AAPL")["fractionable"] is False
        err = _error(eng, market("IBM"))
        assert (err.status, err.code, err.message) == (422, 42210000, "asset IBM is not tradable")
        err = _error(eng, market(qty="1.5"))
        assert "not a multiple of 1.0 shares" in err.message
        err = _error(eng, market(qty=None, notional=100.0))
        assert "fractionable" in err.message
    finally:
        eng.close()


def test_notional_order_is_sized_at_the_last_close_rounded_down(
    engine: VenueEngine, equities_panel: BarPanel
) -> None:
    reply = engine.submit(market("MSFT", qty=None, notional=1000.5, client_order_id="n1"))
    assert (reply["qty"], reply["notional"]) == (None, "1000.5")
    close = Decimal(repr(float(equities_panel.close[engine.bar, equities_panel.column("MSFT")])))
    expected = (Decimal("1000.5") / close).quantize(Decimal("1e-9"), rounding="ROUND_DOWN")
    engine.advance()
    done = engine.order_by_client_id("n1")
    assert Decimal(done["filled_qty"]) == expected
    assert Decimal(done["filled_qty"]) * close <= Decimal("1000.5")


def test_buying_power_check_is_403_with_alpacas_fields(equities_panel: BarPanel) -> None:
    eng, _ = make_engine(equities_panel, check_buying_power=True)
    try:
        close = Decimal(repr(float(equities_panel.close[eng.bar, equities_panel.column("AAPL")])))
        err = _error(eng, market(qty="100000"))
        assert (err.status, err.code, err.message) == (403, 40310000, "insufficient buying power")
        assert err.body()["buying_power"] == "1000000"
        assert Decimal(err.body()["cost_basis"]) == 100000 * close
        eng.submit(market(qty="1000"))
        assert Decimal(eng.account()["buying_power"]) == Decimal(1_000_000) - 1000 * close
    finally:
        eng.close()


def test_trade_updates_new_fill_with_position_qty(equities_panel: BarPanel) -> None:
    eng, updates = make_engine(equities_panel)
    try:
        eng.submit(market("AAPL", "10", client_order_id="a"))
        eng.submit(market("AAPL", "5", client_order_id="b"))
        assert [u["data"]["event"] for u in updates] == ["new", "new"]
        eng.advance()
        data = [u["data"] for u in updates[2:]]
        assert [(d["event"], d["qty"], d["position_qty"]) for d in data] == [
            ("fill", "10", "10"), ("fill", "5", "15")
        ]  # fmt: skip
        assert all(d["order"]["status"] == "filled" for d in data)
        assert data[0]["execution_id"] == eng.order_by_client_id("a")["tf_fills"][0]["execution_id"]
        assert Decimal(data[0]["tf_fee"]) > 0
    finally:
        eng.close()


def test_day_orders_that_do_not_fill_expire_and_gtc_stay(engine: VenueEngine) -> None:
    engine.submit(market(type="limit", limit_price=0.01, client_order_id="day"))
    engine.submit(
        market(type="limit", limit_price=0.01, time_in_force="gtc", client_order_id="gtc")
    )
    engine.advance()
    assert engine.order_by_client_id("day")["status"] == "expired"
    assert engine.order_by_client_id("gtc")["status"] == "new"
    assert [o["client_order_id"] for o in engine.orders()] == ["gtc"]
    assert [o["client_order_id"] for o in engine.orders(status="closed")] == ["day"]


def test_cancel_rules(engine: VenueEngine) -> None:
    with pytest.raises(AlpacaApiError) as info:
        engine.cancel("00000000-0000-0000-0000-000000000000")
    assert (info.value.status, info.value.code) == (404, 40410000)
    order = engine.submit(market(client_order_id="f"))
    engine.advance()
    with pytest.raises(AlpacaApiError) as info:
        engine.cancel(order["id"])
    assert (info.value.status, info.value.code) == (422, 42210000)
    assert "not cancelable (status filled)" in info.value.message


def test_partial_fill_fault_caps_fills_at_participation_times_adv(
    equities_panel: BarPanel,
) -> None:
    eng, updates = make_engine(equities_panel)
    try:
        j = eng.panel.column("AAPL")
        adv = float(eng.market.adv[eng.bar, j])
        eng.faults.add(PartialFillFault(participation_cap=40 / adv))
        eng.submit(market("AAPL", "100", time_in_force="gtc", client_order_id="p"))
        eng.advance()
        part = eng.order_by_client_id("p")
        assert part["status"] == "partially_filled"
        assert Decimal(part["filled_qty"]) == pytest.approx(Decimal(40), abs=Decimal("1e-6"))
        assert updates[-1]["data"]["event"] == "partial_fill"
        eng.advance()  # the fault is used up: the rest fills
        assert eng.order_by_client_id("p")["status"] == "filled"
        assert eng.order_by_client_id("p")["filled_qty"] == "100"
    finally:
        eng.close()


def test_reject_fault_acknowledges_then_rejects_and_never_fills(equities_panel: BarPanel) -> None:
    eng, updates = make_engine(equities_panel)
    try:
        eng.faults.add(RejectFault(symbol="MSFT", reason="halted"))
        eng.submit(market("AAPL", client_order_id="ok"))
        reply = eng.submit(market("MSFT", client_order_id="no"))
        assert reply["status"] == "rejected"
        eng.advance()
        assert eng.order_by_client_id("no")["status"] == "rejected"
        assert eng.order_by_client_id("no")["filled_qty"] == "0"
        assert [(u["data"]["event"], u["data"]["order"]["client_order_id"]) for u in updates] == [
            ("new", "ok"), ("new", "no"), ("rejected", "no"), ("fill", "ok")
        ]  # fmt: skip
    finally:
        eng.close()


def test_advance_past_the_last_bar_is_an_error(equities_panel: BarPanel) -> None:
    short = equities_panel.iloc(slice(0, 30))
    eng = VenueEngine(venue_config(replay_start=None), panel=short)
    try:
        assert eng.bar == 20
        eng.advance(9)
        assert not eng.can_advance
        assert eng.clock()["is_open"] is False
        with pytest.raises(VenueError, match="last bar"):
            eng.advance()
    finally:
        eng.close()


def test_bars_stop_at_the_replay_clock_and_page(
    engine: VenueEngine, equities_panel: BarPanel
) -> None:
    out = engine.bars("AAPL,MSFT", "1Day", start="2009-12-28")
    assert sorted(out["bars"]) == ["AAPL", "MSFT"]
    stamps = [b["t"] for b in out["bars"]["AAPL"]]
    assert stamps[-1] == "2010-01-04T00:00:00Z"  # nothing after the replay clock
    j, i = equities_panel.column("AAPL"), engine.bar
    last = out["bars"]["AAPL"][-1]
    assert (last["o"], last["c"], last["v"]) == (
        equities_panel.open[i, j],
        equities_panel.close[i, j],
        equities_panel.volume[i, j],
    )
    assert (last["n"], last["vw"]) == (None, None)
    pages, token = [], None
    while True:
        page = engine.bars("AAPL,MSFT", "1Day", start="2009-12-28", limit=3, page_token=token)
        pages.append(page["bars"])
        token = page["next_page_token"]
        if token is None:
            break
    joined: dict[str, list[object]] = {}
    for page_bars in pages:
        for sym, rows in page_bars.items():
            joined.setdefault(sym, []).extend(rows)
    assert joined == out["bars"]
    engine.advance()
    assert (
        engine.bars("AAPL", "1Day", start="2010-01-05")["bars"]["AAPL"][0]["t"]
        == "2010-01-05T00:00:00Z"
    )
    assert engine.bars("ZZZZ", "1Day") == {"bars": {}, "next_page_token": None}
    with pytest.raises(AlpacaApiError, match="expected '1Day'"):
        engine.bars("AAPL", "1Hour")


def test_calendar_and_assets(engine: VenueEngine) -> None:
    days = engine.calendar("2010-01-01", "2010-01-06")
    assert [(d["date"], d["open"], d["close"]) for d in days] == [
        ("2010-01-04", "09:30", "16:00"), ("2010-01-05", "09:30", "16:00"), ("2010-01-06", "09:30", "16:00"),
    ]  # fmt: skip
    assert [a["symbol"] for a in engine.assets()] == ["AAPL", "IBM", "MSFT"]
    aapl = engine.asset("AAPL")
    assert engine.asset(aapl["id"]) == aapl
    with pytest.raises(AlpacaApiError) as info:
        engine.asset("ZZZZ")
    assert (info.value.status, info.value.code) == (404, 40410000)


def test_close_position_sells_what_is_held(engine: VenueEngine) -> None:
    engine.submit(market("AAPL", "10"))
    engine.advance()
    order = engine.close_position("AAPL", percentage="50")
    assert (order["side"], order["qty"]) == ("sell", "5")
    engine.advance()
    assert engine.position("AAPL")["qty"] == "5"
    with pytest.raises(AlpacaApiError) as info:
        engine.position("MSFT")
    assert info.value.status == 404
    assert engine.orders(status="all", limit=1, direction="desc")[0]["side"] == "sell"
