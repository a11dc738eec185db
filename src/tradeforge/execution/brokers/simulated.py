"""An in-process broker that fills orders on ``tradeforge.sim``'s market and cost model.

It keeps the venue's side of the story (its own orders, cash and positions) and moves on a bar
clock: orders submitted while bar ``t`` is the latest closed bar fill on bar ``t + 1`` when
:meth:`SimulatedBroker.advance` is called, exactly where ``sim.step`` fills a target decided at
close[t]. Fill rules, per order in submission order:

* the reference price is ``MarketArrays.fill_prices(SimConfig.fill_price)[t + 1]`` (the next
  bar's open by default); no fill where it is NaN or <= 0;
* market orders fill at the reference price; a buy limit ``L`` fills at the reference price if
  it is <= ``L``, else at ``L`` if the bar's low reaches ``L`` (sells mirror this with the high);
  a buy stop ``S`` triggers when the reference price or the bar's high reaches ``S`` and fills at
  ``max(reference, S)`` (sells mirror); a triggered stop-limit then behaves as its limit;
* at most ``costs.participation_cap * adv[t]`` shares per symbol and bar (the trailing ADV known
  at the decision bar, as in ``sim.step``), rounded down to lots when ``fractional`` is False;
  the rest stays open (GTC) or expires after the bar (DAY, IOC, OPG, CLS); a FOK order fills
  completely or expires;
* the fee of each fill is ``sim.costs.trade_costs`` (commission, half spread, slippage, impact)
  for that fill with ``sigma = volatility[t]`` and ``adv = adv[t]``: the very numbers the
  backtester charges, so paper fills cost what backtest fills cost. The price reported is the
  reference price; costs are in ``fee``. (``min_commission`` applies per fill; the backtester
  applies it per symbol and bar, the same thing while a strategy sends one order per symbol and
  bar.)

Not modelled (yet): carry (cash interest, borrow, margin) and buying-power rejections; shorts
are rejected when ``SimConfig.allow_short`` is False. It is idempotent on ``client_order_id``:
a second submit with a known id returns the existing order, whatever its status.
For tests, :meth:`SimulatedBroker.inject_submit_fault` makes the next submit fail with an
unknown outcome, either before the order is placed or after (the reply is lost).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

import numpy as np

from tradeforge.data.panel import BarPanel
from tradeforge.domain import (
    ClientOrderId,
    FillId,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderType,
    Portfolio,
    SubmitOrder,
    Symbol,
    TimeInForce,
    VenueOrderId,
)
from tradeforge.execution.broker import BrokerAccount, BrokerOrder, BrokerPosition
from tradeforge.execution.errors import BrokerError, BrokerUnavailableError, OrderNotFoundError
from tradeforge.sim import MarketArrays, SimConfig, trade_costs

logger = logging.getLogger(__name__)

SubmitFault = Literal["lost_request", "lost_response"]


def to_decimal(value: float) -> Decimal:
    """A float as the Decimal of its shortest repr (``187.25`` -> ``Decimal("187.25")``)."""
    return Decimal(repr(float(value)))


@dataclass
class _SimOrder:
    command: SubmitOrder
    venue_order_id: VenueOrderId
    status: OrderStatus
    created_bar: int
    fills: list[OrderFilled] = field(default_factory=list)
    reason: str = ""
    triggered: bool = False
    updated_at: datetime | None = None

    @property
    def filled(self) -> Decimal:
        return sum((f.quantity for f in self.fills), Decimal(0))

    def report(self, now: datetime) -> BrokerOrder:
        filled = self.filled
        notional = sum((f.notional for f in self.fills), Decimal(0))
        c = self.command
        return BrokerOrder(
            client_order_id=c.client_order_id, venue_order_id=self.venue_order_id,
            symbol=c.symbol, side=c.side, quantity=c.quantity, status=self.status,
            updated_at=self.updated_at or now, filled_quantity=filled,
            avg_fill_price=notional / filled if filled else None, fills=tuple(self.fills),
            reason=self.reason,
        )  # fmt: skip


class SimulatedBroker:
    """A venue on a bar clock over ``market`` (see the module docstring).

    ``symbols`` name the market's columns and ``times`` its bars (timezone-aware). ``start`` is
    the first decision bar (the latest closed bar when trading begins); ``cash`` defaults to
    ``config.initial_cash``.
    """

    def __init__(
        self,
        market: MarketArrays,
        symbols: Sequence[str],
        times: Sequence[datetime],
        config: SimConfig,
        *,
        start: int = 0,
        cash: Decimal | None = None,
    ) -> None:
        if len(symbols) != market.n_assets or len(times) != market.n_bars:
            raise BrokerError(
                f"SimulatedBroker got {len(symbols)} symbols and {len(times)} times for a market "
                f"of {market.n_assets} assets x {market.n_bars} bars; expected equal sizes"
            )
        if not 0 <= start < market.n_bars - 1:
            raise BrokerError(
                f"SimulatedBroker start = {start}; expected 0 <= start <= {market.n_bars - 2}"
            )
        self.market = market
        self.config = config
        self.symbols: tuple[Symbol, ...] = tuple(Symbol(s) for s in symbols)
        self.times = tuple(times)
        self._col = {s: j for j, s in enumerate(self.symbols)}
        self._fill_prices = market.fill_prices(config.fill_price)
        self._t = start
        self._orders: dict[ClientOrderId, _SimOrder] = {}
        self._maybe_open: dict[ClientOrderId, _SimOrder] = {}  # pruned when read
        self._events: list[OrderEvent] = []
        self._book = Portfolio(cash=cash if cash is not None else to_decimal(config.initial_cash))
        self._fault: SubmitFault | None = None
        self.submit_calls = 0

    @classmethod
    def from_panel(
        cls, panel: BarPanel, config: SimConfig, *, start: int = 0, cash: Decimal | None = None
    ) -> SimulatedBroker:
        """A broker over a bar panel, with the market built as the backtester builds it."""
        market = MarketArrays.for_config(panel, config)
        times = [ts.to_pydatetime() for ts in panel.index]
        return cls(market, panel.symbols, times, config, start=start, cash=cash)

    # -- the clock ----------------------------------------------------------------------------
    @property
    def bar(self) -> int:
        """The latest closed bar (the decision bar of orders submitted now)."""
        return self._t

    @property
    def now(self) -> datetime:
        return self.times[self._t]

    @property
    def can_advance(self) -> bool:
        return self._t + 1 < self.market.n_bars

    def last_price(self, symbol: Symbol) -> Decimal | None:
        """The last known close of ``symbol`` at the current bar (None before its first)."""
        mark = float(self.market.mark[self._t, self._column(symbol)])
        return to_decimal(mark) if np.isfinite(mark) and mark > 0 else None

    def marks(self) -> dict[Symbol, Decimal]:
        """Last known closes of every symbol that has one."""
        out: dict[Symbol, Decimal] = {}
        for s in self.symbols:
            price = self.last_price(s)
            if price is not None:
                out[s] = price
        return out

    def _column(self, symbol: Symbol) -> int:
        try:
            return self._col[symbol]
        except KeyError:
            raise BrokerError(
                f"symbol = {symbol!r} is not traded by this SimulatedBroker; expected one of "
                f"{list(self.symbols)}"
            ) from None

    # -- Broker protocol ----------------------------------------------------------------------
    def inject_submit_fault(self, fault: SubmitFault) -> None:
        """Make the next ``submit`` raise ``BrokerUnavailableError``: ``lost_request`` before
        the order is placed, ``lost_response`` after it was placed (the reply is lost)."""
        self._fault = fault

    def submit(self, command: SubmitOrder) -> BrokerOrder:
        self.submit_calls += 1
        fault, self._fault = self._fault, None
        if fault == "lost_request":
            raise BrokerUnavailableError(
                f"submit {command.client_order_id}: connection lost before the request was sent"
            )
        existing = self._orders.get(command.client_order_id)
        report = existing.report(self.now) if existing is not None else self._place(command)
        if fault == "lost_response":
            raise BrokerUnavailableError(
                f"submit {command.client_order_id}: no reply (the order may exist)"
            )
        return report

    def _place(self, command: SubmitOrder) -> BrokerOrder:
        venue_id = VenueOrderId(f"sim-{len(self._orders) + 1:08d}")
        order = _SimOrder(command, venue_id, OrderStatus.ACCEPTED, self._t, updated_at=self.now)
        self._orders[command.client_order_id] = order
        self._maybe_open[command.client_order_id] = order
        reason = self._reject_reason(command)
        self._events.append(
            OrderAccepted(client_order_id=command.client_order_id, ts=self.now,
                          venue_order_id=venue_id)
        )  # fmt: skip
        if reason:
            order.status, order.reason = OrderStatus.REJECTED, reason
            self._events.append(
                OrderRejected(client_order_id=command.client_order_id, ts=self.now, reason=reason)
            )
            logger.info("simulated broker rejected %s: %s", command.client_order_id, reason)
        return order.report(self.now)

    def _reject_reason(self, command: SubmitOrder) -> str:
        if command.symbol not in self._col:
            return f"unknown symbol {command.symbol!r}"
        if not self.config.fractional:
            lots = command.quantity / to_decimal(self.config.lot_size)
            if lots != lots.to_integral_value():
                return (
                    f"quantity {command.quantity} is not a multiple of the lot size "
                    f"{self.config.lot_size} (fractional trading is off)"
                )
        if command.side is OrderSide.SELL and not self.config.allow_short:
            held = self._book.position(command.symbol).quantity
            pending = sum(
                (o.command.quantity - o.filled for o in self._open_orders()
                 if o.command.symbol == command.symbol and o.command.side is OrderSide.SELL
                 and o.command.client_order_id != command.client_order_id),
                Decimal(0),
            )  # fmt: skip
            if command.quantity > held - pending:
                return (
                    f"insufficient qty: selling {command.quantity} {command.symbol} with "
                    f"{held} held and {pending} in open sells (shorting is off)"
                )
        return ""

    def _open_orders(self) -> list[_SimOrder]:
        """The open orders, dropping finished ones from the candidates as it goes (a sell's
        check was a scan of every order ever placed, growing with the run)."""
        finished = [cid for cid, o in self._maybe_open.items() if not o.status.is_open]
        for cid in finished:
            del self._maybe_open[cid]
        return list(self._maybe_open.values())

    def cancel(self, client_order_id: ClientOrderId) -> None:
        order = self._orders.get(client_order_id)
        if order is None:
            raise OrderNotFoundError(f"cancel: no order with client_order_id {client_order_id!r}")
        if order.status.is_terminal:
            return
        order.status, order.updated_at = OrderStatus.CANCELED, self.now
        self._events.append(
            OrderCanceled(client_order_id=client_order_id, ts=self.now, reason="canceled")
        )

    def get_order_by_client_id(self, client_order_id: ClientOrderId) -> BrokerOrder | None:
        order = self._orders.get(client_order_id)
        return order.report(self.now) if order is not None else None

    def list_open_orders(self) -> list[BrokerOrder]:
        return [o.report(self.now) for o in self._orders.values() if o.status.is_open]

    def list_orders(self) -> list[BrokerOrder]:
        """Every order this broker has seen, in submission order."""
        return [o.report(self.now) for o in self._orders.values()]

    def positions(self) -> dict[Symbol, BrokerPosition]:
        return {
            p.symbol: BrokerPosition(p.symbol, p.quantity, p.avg_price)
            for p in self._book.positions
            if p.quantity != 0
        }

    def account(self) -> BrokerAccount:
        equity = self._book.equity(self.marks())
        return BrokerAccount(cash=self._book.cash, buying_power=self._book.cash, equity=equity)

    def drain_events(self) -> list[OrderEvent]:
        events, self._events = self._events, []
        return events

    # -- the market ---------------------------------------------------------------------------
    def advance(self) -> list[OrderEvent]:
        """Move to the next bar: fill open orders on it, expire what its time in force ends.

        Returns the events this bar produced (they are also queued for ``drain_events``).
        """
        if not self.can_advance:
            raise BrokerError(f"SimulatedBroker is at the last bar ({self._t}); cannot advance")
        t, t1 = self._t, self._t + 1
        ts = self.times[t1]
        produced: list[OrderEvent] = []
        room: dict[Symbol, float] = {}
        for order in list(self._orders.values()):
            if not order.status.is_open or order.created_bar > t:
                continue
            event = self._try_fill(order, t, t1, ts, room)
            if event is not None:
                produced.append(event)
            if order.status.is_open and order.command.time_in_force is not TimeInForce.GTC:
                order.status, order.updated_at = OrderStatus.EXPIRED, ts
                produced.append(OrderExpired(client_order_id=order.command.client_order_id, ts=ts))
        self._t = t1
        self._events.extend(produced)
        return produced

    def _exec_price(self, order: _SimOrder, j: int, t1: int) -> float | None:
        ref = float(self._fill_prices[t1, j])
        if not (np.isfinite(ref) and ref > 0.0):
            return None
        c = self.market
        high = float(c.high[t1, j]) if np.isfinite(c.high[t1, j]) else ref
        low = float(c.low[t1, j]) if np.isfinite(c.low[t1, j]) else ref
        cmd = order.command
        buy = cmd.side is OrderSide.BUY
        price = ref
        if cmd.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and not order.triggered:
            stop = float(cmd.stop_price or 0)
            if buy and max(ref, high) >= stop:
                price = max(ref, stop)
            elif not buy and min(ref, low) <= stop:
                price = min(ref, stop)
            else:
                return None
            order.triggered = True
            if cmd.order_type is OrderType.STOP:
                return price
        if cmd.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            limit = float(cmd.limit_price or 0)
            if buy:
                if price <= limit:
                    return price
                return limit if low <= limit else None
            if price >= limit:
                return price
            return limit if high >= limit else None
        return price

    def _try_fill(
        self, order: _SimOrder, t: int, t1: int, ts: datetime, room: dict[Symbol, float]
    ) -> OrderFilled | None:
        cmd = order.command
        j = self._col[cmd.symbol]
        price = self._exec_price(order, j, t1)
        if price is None:
            return None
        leaves = float(cmd.quantity - order.filled)
        if cmd.symbol not in room:
            adv = float(self.market.adv[t, j])
            cap = self.config.costs.participation_cap
            limit = cap * adv if np.isfinite(adv) and adv > 0 else (np.inf if cap >= 1 else 0.0)
            if not self.config.fractional and np.isfinite(limit):
                limit = np.floor(limit / self.config.lot_size) * self.config.lot_size
            room[cmd.symbol] = float(limit)
        qty_float = min(leaves, room[cmd.symbol])
        if qty_float <= 0.0:
            return None
        if cmd.time_in_force is TimeInForce.FOK and qty_float < leaves:
            return None
        qty = cmd.quantity - order.filled if qty_float == leaves else to_decimal(qty_float)
        room[cmd.symbol] -= qty_float
        signed = qty_float * cmd.side.sign
        costs = trade_costs(
            np.array([signed]), np.array([price]), self.market.volatility[t, j : j + 1],
            self.market.adv[t, j : j + 1], self.config.costs,
        )  # fmt: skip
        fee = float(costs.commission[0] + costs.spread[0] + costs.slippage[0] + costs.impact[0])
        fill = OrderFilled(
            client_order_id=cmd.client_order_id,
            ts=ts,
            fill_id=FillId(f"{order.venue_order_id}-{len(order.fills) + 1}"),
            symbol=cmd.symbol,
            side=cmd.side,
            quantity=qty,
            price=to_decimal(price),
            fee=to_decimal(fee),
        )
        order.fills.append(fill)
        order.updated_at = ts
        order.status = (
            OrderStatus.FILLED if order.filled == cmd.quantity else OrderStatus.PARTIALLY_FILLED
        )
        self._book = self._book.apply_fill(fill)
        return fill


__all__ = ["SimulatedBroker", "SubmitFault", "to_decimal"]
