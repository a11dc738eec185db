"""``BarRisk``: the risk engine on a simulated account, one bar at a time (backtests and envs).

The backtester (``tradeforge.backtest.engine``) and the envs (``tradeforge.envs.engine``) call
this one class, and it calls :class:`~tradeforge.risk.engine.RiskEngine` and
:func:`~tradeforge.risk.gate.gate_orders` exactly as the trading node does at each bar:

1. **controls**: ``RiskEngine.update`` with the simulated portfolio at the bar's close (the
   breakers may move the state; stop-loss and trailing stops come back as exits), the exits
   checked as market orders (``trading_halted`` denies them when HALTED);
2. **orders**: the simulator's own sizing, run dry (``simulate``) on the policy's targets with
   the exiting symbols held, gives the orders the rebalance needs; they are checked in the
   node's order (sells first, then by symbol), each against the orders of the bar already
   approved;
3. the targets the caller then steps: unchanged when nothing was denied and nothing exits
   (so a run the controls never bind is bit-identical to one without them), else the exact
   target of each approved order, 0 for an approved exit, NaN (hold) for a denied order;
4. **fills**: :meth:`BarRisk.filled` applies the bar's fills (the simulator's shares, price and
   costs) to a domain :class:`~tradeforge.domain.Portfolio` (entry prices for the stops) and
   calls ``RiskEngine.on_fill`` (loss streak); its cash and quantities then take the
   simulator's values (carry included; a position the simulator closed is flat, with no
   decimal residue of the float shares).

The engine runs on a :class:`~tradeforge.core.clock.TestClock` set to each bar's time, so the
daily-loss breaker counts days of bar time, like the node's bar clock. What the controls did is
counted in :class:`RiskTally` (denials by reason, stops hit by reason and symbol, breaker trips,
decision bars spent in each state).

The simulator is handed in as a callable (risk does not import ``tradeforge.sim``):
``simulate(weights) -> BarFill`` must be pure (the caller's state does not move).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

from tradeforge.core.clock import TestClock
from tradeforge.core.errors import RiskError
from tradeforge.core.types import FloatArray
from tradeforge.domain import (
    ClientOrderId,
    FillId,
    Instrument,
    OrderFilled,
    OrderSide,
    Portfolio,
    StrategyId,
    SubmitOrder,
    Symbol,
)
from tradeforge.risk.checks import PortfolioView
from tradeforge.risk.config import RiskConfig
from tradeforge.risk.engine import RiskEngine
from tradeforge.risk.gate import exit_orders, gate_orders
from tradeforge.risk.state import TradingState

_STRATEGY = StrategyId("backtest")


# the keys that need the engine: order-level checks, stops and breakers. The projection's keys
# (max_position, max_gross, max_turnover, long_only) act on targets already; the breakers'
# actions and flatten_on_kill change nothing on their own.
ENGINE_KEYS = (
    "max_net", "max_order_quantity", "max_order_notional", "max_position_notional",
    "price_collar_bps", "max_orders_per_second", "max_orders_per_minute", "duplicate_window_s",
    "restricted_symbols", "max_open_orders", "buying_power_buffer_bps",
    "stop_loss", "trailing_stop", "max_daily_loss", "max_drawdown", "max_loss_streak",
)  # fmt: skip


def needs_engine(config: RiskConfig | None) -> bool:
    """True when ``config`` sets an order-level check, a stop or a breaker (one of
    :data:`ENGINE_KEYS` away from its default); else the fast vectorised paths run unchanged."""
    if config is None:
        return False
    defaults = RiskConfig()
    return any(getattr(config, k) != getattr(defaults, k) for k in ENGINE_KEYS)


@dataclass(frozen=True)
class BarFill:
    """What the simulator did (or would do) for one account at one bar: signed shares traded,
    the fill price and all trade costs per symbol, and the cash and shares after the bar."""

    traded: FloatArray
    price: FloatArray
    fees: FloatArray
    cash: float
    shares: FloatArray


Simulate = Callable[[FloatArray], BarFill]


@dataclass
class RiskTally:
    """What the risk engine did over a run (see ``docs/risk.md``)."""

    orders: int = 0
    approved: int = 0
    denied: Counter[str] = field(default_factory=Counter)
    stops: Counter[str] = field(default_factory=Counter)
    stops_by_symbol: dict[str, Counter[str]] = field(default_factory=dict)
    trips: Counter[str] = field(default_factory=Counter)
    state_bars: Counter[str] = field(default_factory=Counter)
    final_state: str = TradingState.ACTIVE.value

    def to_json(self) -> dict[str, Any]:
        """JSON-ready counts; ``state_share`` is each state's share of the decision bars."""
        bars = sum(self.state_bars.values())
        states = [s.value for s in TradingState]
        return {
            "orders": self.orders,
            "approved": self.approved,
            "denied": dict(sorted(self.denied.items())),
            "stops": dict(sorted(self.stops.items())),
            "stops_by_symbol": {s: dict(sorted(c.items()))
                                for s, c in sorted(self.stops_by_symbol.items())},
            "trips": dict(sorted(self.trips.items())),
            "state_bars": {s: int(self.state_bars.get(s, 0)) for s in states},
            "state_share": {s: (self.state_bars.get(s, 0) / bars if bars else 0.0)
                            for s in states},
            "final_state": self.final_state,
        }  # fmt: skip


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value)))


class BarRisk:
    """The risk engine on one simulated account (see the module docstring).

    ``symbols``: the panel's columns; ``shortable``: the simulator allows shorts (the
    instruments' flag, as the node sets it); ``initial_cash``: the account's starting cash.
    """

    def __init__(
        self,
        config: RiskConfig,
        symbols: Sequence[str],
        *,
        initial_cash: float,
        shortable: bool,
        start: datetime,
    ) -> None:
        self.config = config
        self.symbols = tuple(Symbol(s) for s in symbols)
        self.engine = RiskEngine(config, clock=TestClock(start))
        self._clock: TestClock = self.engine.clock  # type: ignore[assignment]
        self.instruments = {s: Instrument(symbol=s, shortable=shortable) for s in self.symbols}
        self.portfolio = Portfolio(cash=_dec(initial_cash))
        self.tally = RiskTally()
        self._sent: list[SubmitOrder] = []
        self._marks: dict[Symbol, Decimal] = {}

    @property
    def state(self) -> TradingState:
        return self.engine.state

    def _at(self, when: datetime) -> None:
        now = self._clock.now()
        if when < now:
            raise RiskError(f"bar time {when.isoformat()} is before {now.isoformat()}; "
                            "expected bars in time order")  # fmt: skip
        self._clock.advance(when - now)

    def _view(self) -> PortfolioView:
        return PortfolioView(portfolio=self.portfolio, last_prices=dict(self._marks),
                             instruments=self.instruments)  # fmt: skip

    def _id(self, when: datetime, leg: str) -> ClientOrderId:
        return ClientOrderId(f"bt-{when:%Y%m%dT%H%M%S}-{leg}"[:48])

    def decide(
        self,
        when: datetime,
        weights: FloatArray,
        shares: FloatArray,
        cash: float,
        mark: FloatArray,
        simulate: Simulate,
    ) -> FloatArray:
        """The targets to step at the bar ``when`` (decision at its close, see the module
        docstring): ``weights`` the policy's (N,) targets (NaN = hold), ``shares`` and ``cash``
        the account before the bar's fills, ``mark`` the (N,) closes it is valued at."""
        self._at(when)
        for j, symbol in enumerate(self.symbols):
            if math.isfinite(mark[j]) and mark[j] > 0:
                self._marks[symbol] = _dec(mark[j])
        self.portfolio = self.portfolio.model_copy(update={"cash": _dec(cash)})
        view = self._view()
        self.engine.poll(view)
        report = self.engine.update(view)
        for e in report.exits:
            self.tally.stops[e.reason.value] += 1
            self.tally.stops_by_symbol.setdefault(e.symbol, Counter())[e.reason.value] += 1
        exits = exit_orders(report.exits, _STRATEGY, lambda e: self._id(when, f"exit:{e.symbol}"))
        gated = gate_orders(self.engine, exits, view, when)
        self._count(gated.denied, len(exits))
        exiting = {o.symbol for o in gated.approved}
        self.tally.state_bars[self.state.value] += 1
        w = np.array(weights, dtype=np.float64, copy=True)
        col = {s: j for j, s in enumerate(self.symbols)}
        for symbol in exiting:
            w[col[symbol]] = np.nan
        dry = simulate(w)
        orders = self._orders(when, dry.traded)
        decided = gate_orders(self.engine, orders, view, when)
        self._count(decided.denied, len(orders))
        open_now = [*gated.approved, *decided.approved]
        self._sent = open_now
        self._sync()
        if not exiting and not decided.denied:
            return np.asarray(weights, dtype=np.float64)
        held = np.where(shares != 0.0, shares * mark, 0.0)
        sizing_equity = max(float(cash + held.sum()), 0.0)
        out = np.full(len(self.symbols), np.nan)
        for order in open_now:
            j = col[order.symbol]
            if order.symbol in exiting:
                out[j] = 0.0
            elif sizing_equity > 0.0:
                out[j] = (shares[j] + dry.traded[j]) * mark[j] / sizing_equity
        return out

    def _orders(self, when: datetime, traded: FloatArray) -> list[SubmitOrder]:
        orders = []
        for j, symbol in enumerate(self.symbols):
            q = float(traded[j])
            if q == 0.0 or not math.isfinite(q):
                continue
            side = OrderSide.BUY if q > 0 else OrderSide.SELL
            orders.append(SubmitOrder(client_order_id=self._id(when, symbol),
                                      strategy_id=_STRATEGY, symbol=symbol, side=side,
                                      quantity=_dec(abs(q))))  # fmt: skip
        orders.sort(key=lambda o: (o.side is OrderSide.BUY, o.symbol))
        return orders

    def _count(self, denied: Sequence[tuple[SubmitOrder, Any]], total: int) -> None:
        self.tally.orders += total
        self.tally.approved += total - len(denied)
        for _, refusal in denied:
            self.tally.denied[refusal.reason.value] += 1

    def filled(self, when: datetime, fill: BarFill) -> None:
        """Apply the bar's fills (at ``when``, the fill bar) in the order the orders were
        sent; the portfolio's cash becomes ``fill.cash`` (the simulator's, carry included)."""
        col = {s: j for j, s in enumerate(self.symbols)}
        for n, order in enumerate(self._sent):
            j = col[order.symbol]
            q, price = float(fill.traded[j]), float(fill.price[j])
            if q == 0.0 or not (math.isfinite(price) and price > 0):
                continue
            event = OrderFilled(
                client_order_id=order.client_order_id, ts=when,
                fill_id=FillId(f"{order.client_order_id}-{n}"), symbol=order.symbol,
                side=OrderSide.BUY if q > 0 else OrderSide.SELL, quantity=_dec(abs(q)),
                price=_dec(price), fee=_dec(max(float(fill.fees[j]), 0.0)),
            )  # fmt: skip
            self.engine.on_fill(event, self.portfolio.position(order.symbol))
            self.portfolio = self.portfolio.apply_fill(event)
        self._sent = []
        positions = []
        for pos in self.portfolio.positions:  # the simulator's holdings (no Decimal residue)
            held = _dec(fill.shares[col[pos.symbol]])
            update: dict[str, Any] = {"quantity": held}
            if held == 0:
                update["avg_price"] = Decimal(0)
            positions.append(pos.model_copy(update=update))
        self.portfolio = self.portfolio.model_copy(
            update={"cash": _dec(fill.cash), "positions": tuple(positions)}
        )
        self._sync()

    def _sync(self) -> None:
        # breaker trips (those that moved the state), from update and from on_fill
        self.tally.trips = Counter(self.engine.stats.trips)
        self.tally.final_state = self.state.value


__all__ = ["ENGINE_KEYS", "BarFill", "BarRisk", "RiskTally", "Simulate", "needs_engine"]
