"""``BarRisk`` and the shared order gate (``tradeforge.risk.bars``, ``tradeforge.risk.gate``).

The property test drives random target and price sequences through :class:`BarRisk` with a
cost-free one-line simulator (the backtester's and the envs' path with ``sim`` swapped out):
every fill must keep the limits its order was checked against, and a bar decided while HALTED
trades nothing (REDUCING: only trades that shrink a position). Its default run is small; the
``slow`` variant runs 10,000 cases.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from risk_helpers import BUY, SELL, T0, order, view

from tradeforge.core.types import FloatArray
from tradeforge.domain import ClientOrderId, OrderSide, StrategyId, Symbol
from tradeforge.risk import DenyReason, ExitIntent, ExitReason, RiskConfig, RiskEngine
from tradeforge.risk.bars import ENGINE_KEYS, BarFill, BarRisk, RiskTally, needs_engine
from tradeforge.risk.gate import exit_orders, gate_orders


# -- the gate ----------------------------------------------------------------------------------
def test_the_gate_counts_the_orders_of_the_bar_already_approved() -> None:
    engine = RiskEngine(RiskConfig(max_position_notional=Decimal(15_000)))
    first, second = order(BUY, 100), order(BUY, 100)  # $10,000 each at 100
    gated = gate_orders(engine, [first, second], view(prices={"AAPL": 100}), T0)
    assert gated.approved == [first]
    assert [(o, d.reason) for o, d in gated.denied] == [(second, DenyReason.POSITION_NOTIONAL_EXCEEDS_MAX)]  # fmt: skip
    alone = gate_orders(engine, [second], view(prices={"AAPL": 100}), T0)
    assert alone.approved == [second]  # the same order alone passes


def test_the_gate_passes_known_and_repeated_ids_unchecked() -> None:
    calls: list[str] = []

    class Deny:
        def validate(self, o: Any, v: Any) -> None:
            calls.append(o.client_order_id)
            return None

    sent = order(BUY, 1, cid="sent")
    fresh = order(SELL, 1, cid="fresh")
    gated = gate_orders(Deny(), [sent, fresh, fresh], view(prices={"AAPL": 100}), T0,
                        known=lambda cid: cid == "sent")  # fmt: skip
    assert calls == ["fresh"]
    assert gated.approved == [sent, fresh, fresh]


def test_exit_orders_are_market_orders_for_the_whole_intent() -> None:
    intent = ExitIntent(Symbol("AAPL"), OrderSide.SELL, Decimal("12.5"), ExitReason.STOP_LOSS,
                        Decimal(90))  # fmt: skip
    (o,) = exit_orders([intent], StrategyId("s"), lambda e: ClientOrderId(f"x-{e.symbol}"))
    assert (o.client_order_id, o.symbol, o.side, o.quantity) == ("x-AAPL", "AAPL", SELL, Decimal("12.5"))  # fmt: skip
    assert o.limit_price is None
    assert o.stop_price is None


# -- what starts the engine ----------------------------------------------------------------------
@pytest.mark.parametrize("key", ENGINE_KEYS)
def test_each_order_check_stop_and_breaker_starts_the_engine(key: str) -> None:
    value: object = {"restricted_symbols": ["GME"], "buying_power_buffer_bps": 10.0,
                     "max_loss_streak": 3}.get(key, 1 if "orders" in key else 0.5)  # fmt: skip
    assert needs_engine(RiskConfig.model_validate({key: value}))


def test_projection_keys_and_actions_alone_do_not_start_the_engine() -> None:
    assert not needs_engine(None)
    assert not needs_engine(RiskConfig())
    assert not needs_engine(RiskConfig(max_position=0.2, max_gross=1.0, max_turnover=0.5,
                                       long_only=True, drawdown_action="reducing",
                                       flatten_on_kill=True))  # fmt: skip


def test_the_tally_reports_shares_of_the_decision_bars() -> None:
    tally = RiskTally()
    tally.state_bars.update({"active": 3, "halted": 1})
    tally.denied["trading_halted"] = 2
    out = tally.to_json()
    assert out["state_bars"] == {"active": 3, "reducing": 0, "halted": 1}
    assert out["state_share"] == {"active": 0.75, "reducing": 0.0, "halted": 0.25}
    assert out["denied"] == {"trading_halted": 2}
    assert RiskTally().to_json()["state_share"]["active"] == 0.0


# -- properties over random targets and prices ------------------------------------------------------
class _Account:
    """A cost-free one-line simulator: targets sized at the decision close, filled at the next
    bar's price."""

    def __init__(self, cash: float, n: int) -> None:
        self.cash, self.shares = cash, np.zeros(n)

    def simulate(self, w: FloatArray, mark: FloatArray, nxt: FloatArray) -> BarFill:
        equity = max(self.cash + float(self.shares @ mark), 0.0)
        target = np.where(np.isnan(w), self.shares, np.nan_to_num(w) * equity / mark)
        traded = np.where(np.isnan(w), 0.0, target - self.shares)
        cash = self.cash - float(traded @ nxt)
        return BarFill(traded, nxt.copy(), np.zeros_like(nxt), cash, self.shares + traded)


SYMBOLS = ("AAPL", "MSFT")
FAST, SLOW = 200, 10_000

limits_st = st.builds(
    RiskConfig,
    long_only=st.booleans(),
    max_order_notional=st.none() | st.integers(2_000, 60_000).map(Decimal),
    max_position_notional=st.none() | st.integers(5_000, 90_000).map(Decimal),
    stop_loss=st.none() | st.floats(0.01, 0.2),
    max_drawdown=st.none() | st.floats(0.01, 0.2),
    drawdown_action=st.sampled_from(["reducing", "halted"]),
)
weights_st = st.lists(st.none() | st.floats(-0.6, 1.2), min_size=2, max_size=2)
price_st = st.floats(20.0, 200.0)


def _path(data: st.DataObject) -> None:
    config = data.draw(limits_st)
    gate = BarRisk(config, SYMBOLS, initial_cash=100_000.0, shortable=True, start=T0)
    account = _Account(100_000.0, 2)
    prices = np.array([data.draw(price_st), data.draw(price_st)])
    for bar in range(data.draw(st.integers(2, 5))):
        raw = data.draw(weights_st)
        w = np.array([np.nan if x is None else x for x in raw])
        moves = np.array([data.draw(st.floats(-0.15, 0.15)) for _ in SYMBOLS])
        nxt = prices * (1.0 + moves)
        when = T0 + timedelta(days=bar)
        state = gate.state.value

        def simulate(row: FloatArray, mark: FloatArray = prices, n: FloatArray = nxt) -> BarFill:
            return account.simulate(row, mark, n)

        final = gate.decide(when, w, account.shares.copy(), account.cash, prices, simulate)
        fill = simulate(final)
        traded = fill.traded
        decided = gate.state.value  # the state the bar's orders were checked in
        if decided == "halted":
            assert not np.any(traded), (state, decided, traded)
        for j in range(2):
            q0, q1, x = account.shares[j], fill.shares[j], abs(traded[j])
            if x == 0.0:
                continue
            tol = 1e-6 * max(1.0, abs(q0), abs(q1))
            if decided == "reducing":
                assert abs(q1) <= abs(q0) + tol, (q0, q1)
                assert q0 * q1 >= -tol, (q0, q1)
            if config.max_order_notional is not None:
                assert x * prices[j] <= float(config.max_order_notional) * (1 + 1e-9) + 1e-6
            limit = config.max_position_notional
            if limit is not None and abs(q1) > abs(q0) + tol:
                assert abs(q1) * prices[j] <= float(limit) * (1 + 1e-9) + 1e-6
            if config.long_only:
                assert q1 >= -tol
        gate.filled(when + timedelta(hours=12), fill)
        account.cash, account.shares = fill.cash, fill.shares
        prices = nxt


def _settings(n: int) -> Callable[[Any], Any]:
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck))


test_no_fill_breaks_a_limit_over_random_targets_and_prices = _settings(FAST)(
    given(st.data())(_path)
)
test_no_fill_breaks_a_limit_over_random_targets_and_prices_10k = pytest.mark.slow(
    _settings(SLOW)(given(st.data())(_path))
)
