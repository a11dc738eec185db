"""tradeforge.execution.brokers.simulated: fills on tradeforge.sim's market and cost model,
idempotent on client_order_id; paper fills cost exactly what the backtest step charges."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from exec_helpers import make_command

from tradeforge.data.panel import BarPanel
from tradeforge.domain import (
    ClientOrderId,
    OrderSide,
    OrderStatus,
    OrderType,
    Symbol,
    TimeInForce,
)
from tradeforge.execution import BrokerError, OrderNotFoundError, SimulatedBroker
from tradeforge.sim import MarketArrays, SimConfig, initial_state, step, trade_costs
from tradeforge.testing.sim import EVERY_COST

START = 300  # a decision bar with a full volatility and ADV history
COSTS = EVERY_COST.model_copy(
    update={"borrow_bps_annual": 0.0, "cash_rate_annual": 0.0, "margin_spread_annual": 0.0}
)
AAPL = Symbol("AAPL")


@pytest.fixture
def broker(equities_panel: BarPanel) -> SimulatedBroker:
    return SimulatedBroker.from_panel(equities_panel, SimConfig(costs=COSTS), start=START)


def test_market_order_fills_next_open_with_the_sim_cost_model(broker: SimulatedBroker) -> None:
    market = broker.market
    report = broker.submit(make_command("c1", quantity="25"))
    assert (report.status, report.venue_order_id) == (OrderStatus.ACCEPTED, "sim-00000001")
    events = broker.advance()
    assert [e.kind for e in events] == ["filled"]
    fill = events[0]
    j = broker.symbols.index(AAPL)
    expected_fee = trade_costs(np.array([25.0]), np.array([market.open[START + 1, j]]),
                               market.volatility[START, j:j + 1], market.adv[START, j:j + 1],
                               COSTS)  # fmt: skip
    fee = sum(float(part[0]) for part in expected_fee)
    assert float(fill.price) == market.open[START + 1, j]
    assert float(fill.fee) == pytest.approx(fee, rel=1e-15)
    assert fill.fee > Decimal("0.5")  # at least the min commission
    assert fill.ts == broker.times[START + 1]
    final = broker.get_order_by_client_id(ClientOrderId("c1"))
    assert final is not None
    assert final.status is OrderStatus.FILLED
    assert final.filled_quantity == 25
    assert final.fills == (fill,)
    assert broker.positions()[AAPL].quantity == 25
    assert broker.account().cash == Decimal(repr(1_000_000.0)) - 25 * fill.price - fill.fee


def test_submit_is_idempotent_on_client_order_id(broker: SimulatedBroker) -> None:
    first = broker.submit(make_command("c1", quantity="5"))
    again = broker.submit(make_command("c1", quantity="7"))  # same id, other quantity
    assert again == first
    assert len(broker.list_orders()) == 1
    assert broker.submit_calls == 2
    broker.advance()
    assert broker.submit(make_command("c1", quantity="5")).status is OrderStatus.FILLED
    assert len(broker.list_orders()) == 1


def test_events_ack_then_fill_and_drain_empties(broker: SimulatedBroker) -> None:
    broker.submit(make_command("c1"))
    broker.advance()
    assert [e.kind for e in broker.drain_events()] == ["accepted", "filled"]
    assert broker.drain_events() == []


def test_rejections(broker: SimulatedBroker) -> None:
    sell = broker.submit(make_command("c1", side=OrderSide.SELL, quantity="1"))
    assert sell.status is OrderStatus.REJECTED
    assert "insufficient qty" in sell.reason
    unknown = broker.submit(make_command("c2", symbol="TSLA"))
    assert unknown.status is OrderStatus.REJECTED
    assert "unknown symbol" in unknown.reason
    assert [e.kind for e in broker.drain_events()] == ["accepted", "rejected"] * 2


def test_limit_orders_fill_only_when_the_bar_reaches_them(broker: SimulatedBroker) -> None:
    j = broker.symbols.index(AAPL)
    o, lo = broker.market.open[START + 1, j], broker.market.low[START + 1, j]
    below_low = Decimal(repr(round(float(lo) * 0.9, 2)))
    between = Decimal(repr(round(float(o + lo) / 2, 2)))
    broker.submit(make_command("far", order_type=OrderType.LIMIT, limit_price=below_low,
                               time_in_force=TimeInForce.GTC))  # fmt: skip
    broker.submit(make_command("near", order_type=OrderType.LIMIT, limit_price=between))
    broker.submit(make_command("day", order_type=OrderType.LIMIT, limit_price=below_low))
    events = broker.advance()
    kinds = {(e.client_order_id, e.kind) for e in events}
    assert kinds == {("near", "filled"), ("day", "expired")}
    near = broker.get_order_by_client_id(ClientOrderId("near"))
    assert near is not None
    assert near.avg_fill_price == between
    far = broker.get_order_by_client_id(ClientOrderId("far"))
    assert far is not None
    assert far.status is OrderStatus.ACCEPTED
    assert [r.client_order_id for r in broker.list_open_orders()] == ["far"]


def test_stop_triggers_on_the_high(broker: SimulatedBroker) -> None:
    j = broker.symbols.index(AAPL)
    o, hi = broker.market.open[START + 1, j], broker.market.high[START + 1, j]
    stop = Decimal(repr(round(float(o + hi) / 2, 2)))
    assert float(stop) > o
    broker.submit(make_command("stop", order_type=OrderType.STOP, stop_price=stop))
    broker.advance()
    order = broker.get_order_by_client_id(ClientOrderId("stop"))
    assert order is not None
    assert order.avg_fill_price == stop


def test_participation_cap_gives_partial_fills(equities_panel: BarPanel) -> None:
    costs = COSTS.model_copy(update={"participation_cap": 1e-7})
    broker = SimulatedBroker.from_panel(equities_panel, SimConfig(costs=costs), start=START)
    j = broker.symbols.index(AAPL)
    cap = float(1e-7 * broker.market.adv[START, j])  # fractional: not rounded to lots
    broker.submit(make_command("big", quantity="100", time_in_force=TimeInForce.GTC))
    broker.submit(make_command("fok", quantity="100", time_in_force=TimeInForce.FOK))
    broker.advance()
    big = broker.get_order_by_client_id(ClientOrderId("big"))
    assert big is not None
    assert big.status is OrderStatus.PARTIALLY_FILLED
    assert big.filled_quantity == Decimal(repr(cap))
    assert 0 < cap < 100
    fok = broker.get_order_by_client_id(ClientOrderId("fok"))
    assert fok is not None
    assert (fok.status, fok.filled_quantity) == (OrderStatus.EXPIRED, 0)


def test_cancel(broker: SimulatedBroker) -> None:
    broker.submit(make_command("c1", order_type=OrderType.LIMIT, limit_price=Decimal("0.01"),
                               time_in_force=TimeInForce.GTC))  # fmt: skip
    broker.cancel(ClientOrderId("c1"))
    broker.cancel(ClientOrderId("c1"))  # done already: not an error
    report = broker.get_order_by_client_id(ClientOrderId("c1"))
    assert report is not None
    assert report.status is OrderStatus.CANCELED
    with pytest.raises(OrderNotFoundError, match="no order with client_order_id 'nope'"):
        broker.cancel(ClientOrderId("nope"))


def test_clock_limits(equities_panel: BarPanel) -> None:
    last = equities_panel.n_bars - 2
    broker = SimulatedBroker.from_panel(equities_panel, SimConfig(), start=last)
    broker.advance()
    assert not broker.can_advance
    with pytest.raises(BrokerError, match="cannot advance"):
        broker.advance()
    with pytest.raises(BrokerError, match="expected 0 <= start"):
        SimulatedBroker.from_panel(equities_panel, SimConfig(), start=last + 1)


def test_whole_share_fills_match_the_backtest_step(equities_panel: BarPanel) -> None:
    """One bar, three assets, lots of 1: the broker's fills and cash equal sim.step's."""
    config = SimConfig(costs=COSTS, fractional=False)
    market = MarketArrays.for_config(equities_panel, config)
    weights = np.array([0.3, 0.2, 0.4])
    state, result = step(initial_state(config, 1, 3), weights, market, START, config)
    broker = SimulatedBroker.from_panel(equities_panel, config, start=START)
    for j, symbol in enumerate(broker.symbols):
        qty = result.traded_shares[0, j]
        broker.submit(make_command(f"c{j}", symbol=symbol, quantity=repr(float(qty))))
    broker.advance()
    fees = {e.symbol: float(e.fee) for e in broker.drain_events() if e.kind == "filled"}  # type: ignore[union-attr]
    for j, symbol in enumerate(broker.symbols):
        sim_fee = (result.commission + result.spread + result.slippage + result.impact)[0, j]
        assert fees[symbol] == pytest.approx(sim_fee, rel=1e-12)
    assert float(broker.account().cash) == pytest.approx(state.cash[0], rel=1e-12)
    assert float(broker.account().equity) == pytest.approx(result.equity[0], rel=1e-12)
