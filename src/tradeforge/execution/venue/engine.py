"""The venue's engine: Alpaca's order, account and position semantics over ``SimulatedBroker``.

The engine owns no fill model of its own: every order goes to a
:class:`~tradeforge.execution.brokers.simulated.SimulatedBroker`, which fills it on
``tradeforge.sim``'s market and cost model exactly as the backtester would, on a replay clock
that moves one stored bar per :meth:`VenueEngine.advance`. What the engine adds is the broker's
side of Alpaca: request validation and its error answers, ids (UUIDs, client order ids that
must be unique), notional orders, cancels, positions, account values, the clock and calendar,
historical bars up to the replay clock (never a bar that has not closed yet), the trade-update
events, and durability (every command journaled before it is applied, replayed on restart).

Thread-safe: one lock around every operation (the HTTP server calls it from its event loop,
tests may call it from theirs).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.data.panel import BarPanel
from tradeforge.domain import (
    ClientOrderId,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderType,
    SubmitOrder,
    Symbol,
    TimeInForce,
)
from tradeforge.execution.broker import BrokerOrder
from tradeforge.execution.brokers.simulated import SimulatedBroker, to_decimal
from tradeforge.execution.venue.config import VenueConfig
from tradeforge.execution.venue.errors import (
    FORBIDDEN,
    NOT_FOUND,
    UNPROCESSABLE,
    VALIDATION,
    AlpacaApiError,
    VenueError,
)
from tradeforge.execution.venue.faults import FaultPlan
from tradeforge.execution.venue.journal import JournalEntry, VenueJournal
from tradeforge.execution.venue.order_request import OrderRequest, parse_order_request
from tradeforge.execution.venue.stream import StreamHub
from tradeforge.execution.venue.wire import (
    TIMEFRAMES,
    VenueOrder,
    bar_time,
    execution_id,
    iso,
    num,
    order_json,
    trade_update,
    venue_uuid,
)
from tradeforge.sim import MarketArrays

logger = logging.getLogger(__name__)

STRATEGY = "venue"
LOG_LIMIT = 10_000
_SHARE_STEP = Decimal("0.000000001")  # Alpaca accepts up to 9 decimals of a share
Json = dict[str, Any]


def _parse_time(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise AlpacaApiError(
            422, VALIDATION, f"{name} = {value!r} is invalid; expected RFC 3339 or YYYY-MM-DD"
        ) from None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC").to_pydatetime()


class VenueEngine:
    """The local venue's state machine (see the module docstring).

    ``panel`` defaults to ``load_panel(config.data)``; ``state_dir`` None keeps the journal in
    memory (nothing survives the process). A ``state_dir`` that already holds a journal is
    replayed: the venue comes back with the same bar, orders, fills, cash and ids.
    """

    def __init__(
        self,
        config: VenueConfig | None = None,
        *,
        panel: BarPanel | None = None,
        state_dir: str | Path | None = None,
    ) -> None:
        self.config = config if config is not None else VenueConfig()
        if panel is None:
            from tradeforge.data.ingest import load_panel

            panel = load_panel(self.config.data)
        self.panel = panel
        self._broker = SimulatedBroker.from_panel(
            panel, self.config.sim, start=self._start_bar(panel)
        )
        self._col = {s: j for j, s in enumerate(self._broker.symbols)}
        self.asset_class = "crypto" if self.config.data.asset_class == "crypto" else "us_equity"
        self._orders: dict[ClientOrderId, VenueOrder] = {}
        self._by_uuid: dict[str, VenueOrder] = {}
        self._lock = threading.RLock()
        self.faults = FaultPlan()
        self.hub = StreamHub(self.faults)
        #: the last requests (for tests and `GET /admin/requests`); bounded for long replays
        self.order_log: deque[Json] = deque(maxlen=LOG_LIMIT)
        self.http_log: deque[Json] = deque(maxlen=LOG_LIMIT)
        self.listeners: list[Callable[[Json], None]] = [self.hub.publish]
        self.journal = VenueJournal(state_dir, self.config.replay_key())
        try:
            self._replay(self.journal.entries())
        except BaseException:
            self.journal.close()
            raise

    def _start_bar(self, panel: BarPanel) -> int:
        last = panel.n_bars - 2
        if last < 0:
            raise VenueError(
                f"the venue needs at least 2 bars to replay; the panel has {panel.n_bars}"
            )
        start = self.config.replay_start
        if start is None:
            return min(max(self.config.sim.vol_window, self.config.sim.adv_window), last)
        stamp = pd.Timestamp(start, tz="UTC")
        index = int(panel.index.searchsorted(stamp, side="left"))
        if index > last:
            raise VenueError(
                f"replay_start = {start}: no decision bar on or after it (the data ends "
                f"{panel.index[-1].date()}); expected a date before the last bar"
            )
        return index

    def close(self) -> None:
        """Close the journal (the engine is unusable afterwards)."""
        self.journal.close()

    # -- clock -------------------------------------------------------------------------------
    @property
    def bar(self) -> int:
        return self._broker.bar

    @property
    def now(self) -> datetime:
        return self._broker.now

    @property
    def can_advance(self) -> bool:
        return self._broker.can_advance

    @property
    def symbols(self) -> tuple[Symbol, ...]:
        return self._broker.symbols

    @property
    def market(self) -> MarketArrays:
        """The simulator's market arrays (prices, trailing volatility and ADV per bar)."""
        return self._broker.market

    def clock(self) -> Json:
        with self._lock:
            nxt = self._broker.times[self.bar + 1] if self.can_advance else self.now
            return {
                "timestamp": iso(self.now), "is_open": self.can_advance,
                "next_open": iso(nxt), "next_close": iso(nxt),
            }  # fmt: skip

    def calendar(self, start: str | None, end: str | None) -> list[Json]:
        lo, hi = _parse_time("start", start), _parse_time("end", end)
        days = sorted({ts.date() for ts in self.panel.index})
        return [
            {"date": d.isoformat(), "open": "09:30", "close": "16:00",
             "session_open": "0400", "session_close": "2000", "settlement_date": d.isoformat()}
            for d in days
            if (lo is None or d >= lo.date()) and (hi is None or d <= hi.date())
        ]  # fmt: skip

    # -- assets ------------------------------------------------------------------------------
    def _asset_id(self, symbol: str) -> str:
        return venue_uuid("asset", symbol)

    def _asset(self, symbol: Symbol) -> Json:
        sim = self.config.sim
        return {
            "id": self._asset_id(symbol), "class": self.asset_class,
            "exchange": self.config.exchange, "symbol": symbol, "name": symbol,
            "status": "active", "tradable": symbol not in self.config.untradable,
            "marginable": False, "shortable": sim.allow_short, "easy_to_borrow": sim.allow_short,
            "fractionable": sim.fractional, "min_order_size": None, "min_trade_increment": None,
            "price_increment": None, "maintenance_margin_requirement": 100.0, "attributes": [],
        }  # fmt: skip

    def assets(self, status: str | None = None, asset_class: str | None = None) -> list[Json]:
        if status not in (None, "", "active") or asset_class not in (None, "", self.asset_class):
            return []
        return [self._asset(s) for s in self.symbols]

    def _symbol_of(self, symbol_or_id: str) -> Symbol | None:
        if symbol_or_id in self._col:
            return Symbol(symbol_or_id)
        for s in self.symbols:
            if self._asset_id(s) == symbol_or_id:
                return s
        return None

    def asset(self, symbol_or_id: str) -> Json:
        symbol = self._symbol_of(symbol_or_id)
        if symbol is None:
            raise AlpacaApiError(404, NOT_FOUND, f"asset not found for {symbol_or_id!r}")
        return self._asset(symbol)

    # -- account and positions ---------------------------------------------------------------
    def _open_buy_cost(self) -> Decimal:
        total = Decimal(0)
        for order in self._orders.values():
            report = self._report(order)
            if order.side is OrderSide.BUY and report.status.is_open and order.rejected is None:
                price = order.limit_price or self._broker.last_price(order.symbol) or Decimal(0)
                total += (order.quantity - report.filled_quantity) * price
        return total

    def account(self) -> Json:
        with self._lock:
            acct = self._broker.account()
            marks = self._broker.marks()
            long_mv = short_mv = Decimal(0)
            for pos in self._broker.positions().values():
                value = pos.quantity * marks.get(pos.symbol, pos.avg_entry_price)
                if value >= 0:
                    long_mv += value
                else:
                    short_mv += value
            buying_power = acct.cash - self._open_buy_cost()
            return {
                "id": venue_uuid("account", self.config.account_number),
                "account_number": self.config.account_number, "status": "ACTIVE",
                "crypto_status": "ACTIVE", "currency": "USD", "cash": num(acct.cash),
                "buying_power": num(buying_power), "regt_buying_power": num(buying_power),
                "daytrading_buying_power": "0", "non_marginable_buying_power": num(buying_power),
                "accrued_fees": "0", "pending_transfer_in": "0", "pending_transfer_out": "0",
                "portfolio_value": num(acct.equity), "equity": num(acct.equity),
                "last_equity": num(acct.equity), "long_market_value": num(long_mv),
                "short_market_value": num(short_mv), "initial_margin": "0",
                "maintenance_margin": "0", "last_maintenance_margin": "0", "sma": "0",
                "multiplier": "1", "shorting_enabled": self.config.sim.allow_short,
                "pattern_day_trader": False, "trading_blocked": False,
                "transfers_blocked": False, "account_blocked": False,
                "trade_suspended_by_user": False, "daytrade_count": 0,
                "created_at": iso(self._broker.times[0]),
            }  # fmt: skip

    def _position_json(self, symbol: Symbol, qty: Decimal, avg: Decimal) -> Json:
        mark = self._broker.last_price(symbol) or avg
        prev = self._previous_close(symbol) or mark
        cost = qty * avg
        value = qty * mark
        pnl = value - cost
        return {
            "asset_id": self._asset_id(symbol), "symbol": symbol,
            "exchange": self.config.exchange, "asset_class": self.asset_class,
            "asset_marginable": False, "avg_entry_price": num(avg), "qty": num(qty),
            "side": "long" if qty > 0 else "short", "market_value": num(value),
            "cost_basis": num(cost), "unrealized_pl": num(pnl),
            "unrealized_plpc": num(pnl / abs(cost)) if cost else "0",
            "unrealized_intraday_pl": num(qty * (mark - prev)),
            "unrealized_intraday_plpc": num((mark - prev) / prev) if prev else "0",
            "current_price": num(mark), "lastday_price": num(prev),
            "change_today": num((mark - prev) / prev) if prev else "0",
            "qty_available": num(qty - self._open_sell_qty(symbol) if qty > 0 else qty),
        }  # fmt: skip

    def _previous_close(self, symbol: Symbol) -> Decimal | None:
        if self.bar == 0:
            return None
        value = float(self._broker.market.mark[self.bar - 1, self._col[symbol]])
        return to_decimal(value) if math.isfinite(value) and value > 0 else None

    def _open_sell_qty(self, symbol: Symbol) -> Decimal:
        total = Decimal(0)
        for order in self._orders.values():
            if order.symbol == symbol and order.side is OrderSide.SELL and order.rejected is None:
                report = self._report(order)
                if report.status.is_open:
                    total += order.quantity - report.filled_quantity
        return total

    def positions(self) -> list[Json]:
        with self._lock:
            return [
                self._position_json(p.symbol, p.quantity, p.avg_entry_price)
                for p in sorted(self._broker.positions().values(), key=lambda p: p.symbol)
            ]

    def position(self, symbol_or_id: str) -> Json:
        with self._lock:
            symbol = self._symbol_of(symbol_or_id)
            pos = self._broker.positions().get(symbol) if symbol is not None else None
            if pos is None:
                raise AlpacaApiError(404, NOT_FOUND, "position does not exist")
            return self._position_json(pos.symbol, pos.quantity, pos.avg_entry_price)

    # -- orders: reads -----------------------------------------------------------------------
    def _report(self, order: VenueOrder) -> BrokerOrder:
        report = self._broker.get_order_by_client_id(order.client_order_id)
        if report is None:  # every venue order is in the simulator; anything else is a bug
            raise VenueError(f"order {order.client_order_id} is missing from the simulator")
        return report

    def _json(self, order: VenueOrder, **kw: Any) -> Json:
        return order_json(order, self._report(order), asset_class=self.asset_class, **kw)

    def order_by_id(self, order_id: str) -> Json:
        with self._lock:
            order = self._by_uuid.get(order_id)
            if order is None:
                raise AlpacaApiError(404, NOT_FOUND, "order not found")
            return self._json(order)

    def order_by_client_id(self, client_order_id: str) -> Json:
        with self._lock:
            order = self._orders.get(ClientOrderId(client_order_id))
            if order is None:
                raise AlpacaApiError(404, NOT_FOUND, "order not found")
            return self._json(order)

    def orders(
        self,
        status: str | None = "open",
        limit: int | None = 50,
        after: str | None = None,
        until: str | None = None,
        direction: str | None = "desc",
        side: str | None = None,
        symbols: str | None = None,
    ) -> list[Json]:
        status = status or "open"
        if status not in ("open", "closed", "all"):
            raise AlpacaApiError(
                422, VALIDATION, f"status = {status!r}; expected open, closed or all"
            )
        limit = 50 if limit is None else limit
        if not 1 <= limit <= 500:
            raise AlpacaApiError(422, VALIDATION, f"limit = {limit}; expected 1 to 500")
        direction = direction or "desc"
        if direction not in ("asc", "desc"):
            raise AlpacaApiError(
                422, VALIDATION, f"direction = {direction!r}; expected asc or desc"
            )
        lo, hi = _parse_time("after", after), _parse_time("until", until)
        wanted = {s.strip() for s in symbols.split(",")} if symbols else None
        with self._lock:
            rows = []
            for order in self._orders.values():
                is_open = self._report(order).status.is_open and order.rejected is None
                if (status == "open" and not is_open) or (status == "closed" and is_open):
                    continue
                if (lo is not None and order.created_at <= lo) or (
                    hi is not None and order.created_at >= hi
                ):
                    continue
                if (side and order.side.value != side) or (wanted and order.symbol not in wanted):
                    continue
                rows.append(order)
            rows.sort(key=lambda o: o.created_at, reverse=direction == "desc")
            return [self._json(o) for o in rows[:limit]]

    # -- orders: commands --------------------------------------------------------------------
    def submit(self, body: Any) -> Json:
        """``POST /v2/orders``: validate, journal, place; the answer has status ``accepted``."""
        with self._lock:
            cid = body.get("client_order_id") if isinstance(body, dict) else None
            try:
                request = parse_order_request(body)
                payload = self._admit(request)
            except AlpacaApiError as exc:
                self.order_log.append(
                    {
                        "op": "submit",
                        "client_order_id": cid,
                        "outcome": f"{exc.status} {exc.message}",
                    }
                )
                raise
            self.journal.append("submit", payload)
            order = self._apply_submit(payload, publish=True)
            self.order_log.append({"op": "submit", "client_order_id": cid, "outcome": "created"})
            snapshot = self._json(order)
            if order.rejected is None:
                snapshot["status"] = "accepted"
            return snapshot

    def _admit(self, req: OrderRequest) -> Json:
        """Alpaca's broker-side checks; returns the journal payload of an order that passes."""
        if req.client_order_id in self._orders:
            raise AlpacaApiError(422, VALIDATION, "client_order_id must be unique")
        symbol = Symbol(req.symbol)
        if symbol not in self._col:
            raise AlpacaApiError(422, VALIDATION, f"asset {req.symbol!r} not found")
        if symbol in self.config.untradable:
            raise AlpacaApiError(422, UNPROCESSABLE, f"asset {symbol} is not tradable")
        sim = self.config.sim
        last = self._broker.last_price(symbol)
        if req.notional is not None:
            if not sim.fractional:
                raise AlpacaApiError(
                    422, VALIDATION, f"notional orders need a fractionable asset; {symbol} is not"
                )
            if last is None:
                raise AlpacaApiError(
                    422, VALIDATION, f"no last price for {symbol} to size notional"
                )
            quantity = (req.notional / last).quantize(_SHARE_STEP, rounding=ROUND_DOWN)
            if quantity <= 0:
                raise AlpacaApiError(
                    422, VALIDATION, f"notional = {req.notional} buys less than 1e-9 {symbol}"
                )
        else:  # parse_order_request guarantees exactly one of qty and notional
            quantity = req.qty if req.qty is not None else Decimal(0)
        if quantity != quantity.quantize(_SHARE_STEP, rounding=ROUND_DOWN):
            raise AlpacaApiError(
                422, VALIDATION, f"qty = {quantity} has more than 9 decimals; expected at most 9"
            )
        if not sim.fractional:
            lots = quantity / to_decimal(sim.lot_size)
            if lots != lots.to_integral_value():
                raise AlpacaApiError(
                    422, VALIDATION,
                    f"qty = {quantity} is not a multiple of {sim.lot_size} shares; fractional "
                    f"orders are not supported for {symbol}",
                )  # fmt: skip
        if req.side is OrderSide.SELL and not sim.allow_short:
            held = self._broker.positions()
            available = (
                held[symbol].quantity if symbol in held else Decimal(0)
            ) - self._open_sell_qty(symbol)
            if quantity > available:
                raise AlpacaApiError(
                    403, FORBIDDEN,
                    f"insufficient qty available for order (requested: {num(quantity)}, "
                    f"available: {num(max(available, Decimal(0)))})",
                )  # fmt: skip
        if req.side is OrderSide.BUY and self.config.check_buying_power:
            price = req.limit_price or last or Decimal(0)
            cost = quantity * price
            power = self._broker.account().cash - self._open_buy_cost()
            if cost > power:
                raise AlpacaApiError(
                    403, FORBIDDEN, "insufficient buying power",
                    buying_power=num(power), cost_basis=num(cost),
                )  # fmt: skip
        created = self.now + timedelta(microseconds=len(self._orders) + 1)
        return {
            "uuid": venue_uuid("order", self.config.account_number, req.client_order_id, iso(created)),
            "client_order_id": req.client_order_id, "symbol": symbol, "side": req.side.value,
            "type": req.order_type.value, "time_in_force": req.time_in_force.value,
            "qty": num(req.qty), "notional": num(req.notional), "quantity": num(quantity),
            "limit_price": num(req.limit_price), "stop_price": num(req.stop_price),
            "extended_hours": req.extended_hours, "created_at": iso(created),
            "reject": self.faults.take_reject(symbol),
        }  # fmt: skip

    def _apply_submit(self, p: Mapping[str, Any], *, publish: bool) -> VenueOrder:
        def dec(name: str) -> Decimal | None:
            value = p.get(name)
            return Decimal(value) if value is not None else None

        quantity = Decimal(p["quantity"])
        order = VenueOrder(
            uuid=p["uuid"], client_order_id=ClientOrderId(p["client_order_id"]),
            symbol=Symbol(p["symbol"]), asset_id=self._asset_id(p["symbol"]),
            side=OrderSide(p["side"]), order_type=OrderType(p["type"]),
            time_in_force=TimeInForce(p["time_in_force"]), qty=dec("qty"),
            notional=dec("notional"), quantity=quantity, limit_price=dec("limit_price"),
            stop_price=dec("stop_price"), extended_hours=bool(p["extended_hours"]),
            created_at=datetime.fromisoformat(p["created_at"].replace("Z", "+00:00")),
        )  # fmt: skip
        command = SubmitOrder(
            client_order_id=order.client_order_id, strategy_id=STRATEGY, symbol=order.symbol,
            side=order.side, quantity=quantity, order_type=order.order_type,
            time_in_force=order.time_in_force, limit_price=order.limit_price,
            stop_price=order.stop_price,
        )  # fmt: skip
        self._orders[order.client_order_id] = order
        self._by_uuid[order.uuid] = order
        self._broker.submit(command)
        events = self._broker.drain_events()
        if p.get("reject"):
            order.rejected = str(p["reject"])
            self._broker.cancel(order.client_order_id)
            events.extend(self._broker.drain_events())
        self._emit(events, publish)
        return order

    def cancel(self, order_id: str) -> None:
        """``DELETE /v2/orders/{id}``: 404 unknown, 422 when the order is already done."""
        with self._lock:
            order = self._by_uuid.get(order_id)
            if order is None:
                raise AlpacaApiError(404, NOT_FOUND, "order not found")
            if self._report(order).status.is_terminal:
                raise AlpacaApiError(
                    422,
                    UNPROCESSABLE,
                    f"order is not cancelable (status {order.status(self._report(order))})",
                )
            self.journal.append("cancel", {"client_order_id": order.client_order_id})
            self._apply_cancel(order.client_order_id, publish=True)

    def _apply_cancel(self, cid: str, *, publish: bool) -> None:
        self._broker.cancel(ClientOrderId(cid))
        self._emit(self._broker.drain_events(), publish)

    def cancel_all(self) -> list[Json]:
        """``DELETE /v2/orders``: cancel every open order (HTTP 207 body)."""
        with self._lock:
            out = []
            for order in list(self._orders.values()):
                if self._report(order).status.is_open:
                    self.cancel(order.uuid)
                    out.append({"id": order.uuid, "status": 200, "body": None})
            return out

    def close_position(
        self, symbol_or_id: str, qty: str | None = None, percentage: str | None = None
    ) -> Json:
        """``DELETE /v2/positions/{symbol}``: a market order that closes all or part of it."""
        with self._lock:
            pos = self.position(symbol_or_id)
            held = Decimal(pos["qty"])
            if qty is not None and percentage is not None:
                raise AlpacaApiError(422, VALIDATION, "only one of qty and percentage may be given")
            amount = abs(held)
            if qty is not None:
                amount = Decimal(qty)
            elif percentage is not None:
                amount = (abs(held) * Decimal(percentage) / 100).quantize(_SHARE_STEP, ROUND_DOWN)
            body = {"symbol": pos["symbol"], "qty": str(amount), "type": "market",
                    "time_in_force": "day", "side": "sell" if held > 0 else "buy"}  # fmt: skip
            return self.submit(body)

    def close_all_positions(self, cancel_orders: bool) -> list[Json]:
        with self._lock:
            if cancel_orders:
                self.cancel_all()
            out = []
            for pos in self.positions():
                try:
                    out.append({"symbol": pos["symbol"], "status": 200,
                                "body": self.close_position(pos["symbol"])})  # fmt: skip
                except AlpacaApiError as exc:
                    out.append({"symbol": pos["symbol"], "status": exc.status, "body": exc.body()})
            return out

    # -- the replay clock --------------------------------------------------------------------
    def advance(self, bars: int = 1) -> Json:
        """Move the replay clock ``bars`` bars: fill and expire orders on each, publish updates."""
        if bars < 1:
            raise VenueError(f"advance bars = {bars}; expected >= 1")
        with self._lock:
            fills = 0
            for _ in range(bars):
                if not self.can_advance:
                    raise VenueError(
                        f"the replay clock is at the last bar ({self.bar}, {self.now.date()}); "
                        "expected a venue with bars left to advance"
                    )
                cap = self.faults.take_partial_fill()
                self.journal.append("advance", {"participation_cap": cap})
                fills += self._apply_advance(cap, publish=True)
            return self.state()

    def _apply_advance(self, cap: float | None, *, publish: bool) -> int:
        base = self._broker.config
        if cap is not None:
            capped = min(cap, base.costs.participation_cap)
            self._broker.config = base.model_copy(
                update={"costs": base.costs.model_copy(update={"participation_cap": capped})}
            )
        try:
            self._broker.advance()
        finally:
            self._broker.config = base
        events = self._broker.drain_events()
        self._emit(events, publish)
        return sum(isinstance(e, OrderFilled) for e in events)

    def state(self) -> Json:
        with self._lock:
            open_orders = sum(
                1 for o in self._orders.values()
                if self._report(o).status.is_open and o.rejected is None
            )  # fmt: skip
            return {
                "bar": self.bar, "timestamp": iso(self.now), "can_advance": self.can_advance,
                "n_bars": self.panel.n_bars, "orders": len(self._orders),
                "open_orders": open_orders, "journal_entries": len(self.journal),
                "stream": self.hub.stats(), "faults": self.faults.pending(),
                "faults_fired": dict(self.faults.fired),
            }  # fmt: skip

    # -- events ------------------------------------------------------------------------------
    def _emit(self, events: Sequence[OrderEvent], publish: bool) -> None:
        if not publish:
            return
        positions = {s: p.quantity for s, p in self._broker.positions().items()}
        # the positions BEFORE these events: take the fills back out, then replay them in order
        for event in events:
            if isinstance(event, OrderFilled):
                positions[event.symbol] = (
                    positions.get(event.symbol, Decimal(0)) - event.signed_quantity
                )
        for event in events:
            message = self._update(event, positions)
            if message is not None:
                for listener in self.listeners:
                    listener(message)

    def _update(self, event: OrderEvent, positions: dict[Symbol, Decimal]) -> Json | None:
        order = self._orders[event.client_order_id]
        report = self._report(order)
        fills = tuple(report.fills or ())
        if isinstance(event, OrderAccepted):
            snap = self._json(order, fills=(), status="new", updated_at=order.created_at)
            return trade_update("new", snap, order.created_at)
        if isinstance(event, OrderFilled):
            upto = next(i for i, f in enumerate(fills) if f.fill_id == event.fill_id) + 1
            done = sum((f.quantity for f in fills[:upto]), Decimal(0)) == order.quantity
            status = "filled" if done else "partially_filled"
            positions[event.symbol] = (
                positions.get(event.symbol, Decimal(0)) + event.signed_quantity
            )
            snap = self._json(order, fills=fills[:upto], status=status, updated_at=event.ts)
            return trade_update(
                "fill" if done else "partial_fill", snap, event.ts, fill=event,
                exec_id=execution_id(order, event), position_qty=positions[event.symbol],
            )  # fmt: skip
        if isinstance(event, OrderCanceled | OrderExpired | OrderRejected):
            if order.rejected is not None or isinstance(event, OrderRejected):
                name = "rejected"
            else:
                name = "canceled" if isinstance(event, OrderCanceled) else "expired"
            done_fills = tuple(f for f in fills if f.ts <= event.ts)
            snap = self._json(order, fills=done_fills, status=name, updated_at=event.ts)
            return trade_update(name, snap, event.ts)
        logger.debug("venue: no trade update for %s", event.kind)
        return None

    # -- replay ------------------------------------------------------------------------------
    def _replay(self, entries: Sequence[JournalEntry] | Any) -> None:
        n = 0
        for entry in entries:
            if entry.kind == "submit":
                self._apply_submit(entry.payload, publish=False)
            elif entry.kind == "cancel":
                self._apply_cancel(entry.payload["client_order_id"], publish=False)
            elif entry.kind == "advance":
                self._apply_advance(entry.payload.get("participation_cap"), publish=False)
            n += 1
        self._broker.drain_events()
        if n:
            logger.info("venue: replayed %d journal entries; at bar %d (%s)", n, self.bar, self.now)

    # -- market data -------------------------------------------------------------------------
    def bars(
        self,
        symbols: str,
        timeframe: str,
        start: str | None = None,
        end: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
        sort: str | None = "asc",
    ) -> Json:
        """``GET /v2/stocks/bars``: bars up to the replay clock, paged like Alpaca's."""
        expected = TIMEFRAMES.get(self.panel.frequency)
        if timeframe != expected:
            raise AlpacaApiError(
                422, VALIDATION,
                f"timeframe = {timeframe!r}; this venue replays {self.panel.frequency} bars, "
                f"expected {expected!r}",
            )  # fmt: skip
        limit = 1000 if limit is None else limit
        if not 1 <= limit <= 10000:
            raise AlpacaApiError(422, VALIDATION, f"limit = {limit}; expected 1 to 10000")
        if sort not in (None, "asc", "desc"):
            raise AlpacaApiError(422, VALIDATION, f"sort = {sort!r}; expected asc or desc")
        try:
            offset = int(page_token) if page_token else 0
        except ValueError:
            raise AlpacaApiError(
                422, VALIDATION, f"page_token = {page_token!r} is invalid"
            ) from None
        lo, hi = _parse_time("start", start), _parse_time("end", end)
        names = sorted({s.strip() for s in symbols.split(",") if s.strip()})
        with self._lock:
            now = self.bar
        index = self.panel.index[: now + 1]
        mask = np.ones(len(index), dtype=bool)
        if lo is not None:
            mask &= index >= pd.Timestamp(lo)
        if hi is not None:
            mask &= index <= pd.Timestamp(hi)
        rows: list[tuple[str, int, int]] = []
        for name in names:
            j = self._col.get(Symbol(name))
            if j is None:
                continue
            ok = mask & np.isfinite(self.panel.close[: now + 1, j])
            picked = np.flatnonzero(ok)
            if sort == "desc":
                picked = picked[::-1]
            rows.extend((name, int(i), j) for i in picked)
        page = rows[offset : offset + limit]
        out: dict[str, list[Json]] = {}
        p = self.panel
        vwap = p.extra.get("vwap")
        for name, i, j in page:
            out.setdefault(name, []).append({
                "t": bar_time(index[i].to_pydatetime()), "o": float(p.open[i, j]),
                "h": float(p.high[i, j]), "l": float(p.low[i, j]), "c": float(p.close[i, j]),
                "v": float(p.volume[i, j]), "n": None,
                "vw": float(vwap[i, j]) if vwap is not None and np.isfinite(vwap[i, j]) else None,
            })  # fmt: skip
        more = offset + limit < len(rows)
        return {"bars": out, "next_page_token": str(offset + limit) if more else None}


__all__ = ["STRATEGY", "VenueEngine"]
