"""Build a :class:`~tradeforge.serve.snapshot.Snapshot` from a node's state directory.

Everything durable is read from the stores the node writes (it runs in another thread; SQLite
in WAL mode lets readers in while it writes): positions, cash, orders and fills from the order
store (``oms.sqlite``), equity marks, decisions and risk denials from the node journal
(``node.sqlite``, read-only; with the last decision's explanation when the node explains its
decisions: :meth:`StateReader.last_explanation`), the trading state, kill latch and audit log from the risk
directory (``risk/state.db``). What is only known in memory (last prices, next bar, the last
decision's latency, broker connection) comes in as :class:`LiveFacts`.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from tradeforge.audit import AuditLog
from tradeforge.core.errors import RiskError
from tradeforge.domain.events import OrderFilled
from tradeforge.domain.orders import Order
from tradeforge.domain.portfolio import Portfolio
from tradeforge.execution.store import OrderStore
from tradeforge.risk import RiskConfig, StatePaths, StateRecord, read_state_dir
from tradeforge.serve.snapshot import (
    AlertRow,
    AuditRow,
    DenialRow,
    EquityPoint,
    FillRow,
    LimitUse,
    ModelRow,
    OrderRow,
    PositionRow,
    Snapshot,
)

OPEN_STATES = {"new", "accepted", "partially_filled", "pending_cancel", "pending_replace",
               "pending_new", "submitted"}  # fmt: skip
ROWS = 50  # newest orders, fills, denials, audit entries shown
STATE_KINDS = ("risk.state", "risk.kill", "risk.resume")  # audit kinds that move the state
_SNAPSHOT_HAS_EXPLANATION = "last_explanation" in {f.name for f in fields(Snapshot)}


@dataclass
class LiveFacts:
    """What the runtime knows in memory (module docstring)."""

    last_prices: dict[str, float] = field(default_factory=dict)
    last_bar_time: datetime | None = None
    bar_arrived_at: datetime | None = None
    next_bar_time: datetime | None = None
    last_decision_time: datetime | None = None
    last_weights: dict[str, float] = field(default_factory=dict)
    last_features: Any = None  # the latest bar's pipeline features (N, F)
    decision_latency_ms: float | None = None
    broker_connected: bool = False
    reconciled: bool = False
    problems: list[str] = field(default_factory=list)
    models: list[ModelRow] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)


class StateReader:
    """Reads a node's state directory into snapshots (module docstring)."""

    def __init__(
        self, state_dir: str | Path, *, strategy_id: str, symbols: Sequence[str], mode: str,
        venue: str, risk: RiskConfig | None, periods_per_year: float = 252.0,
    ) -> None:  # fmt: skip
        self.state_dir = Path(state_dir)
        self.strategy_id, self.symbols = strategy_id, tuple(symbols)
        self.mode, self.venue, self.risk = mode, venue, risk
        self.periods_per_year = periods_per_year

    # -- stores -----------------------------------------------------------------------------------
    def _orders(self) -> tuple[list[Order], list[OrderFilled], Portfolio | None, tuple[int, int]]:
        """The newest orders (and every open one), the newest fills, the portfolio, and the
        store's activity counter; bounded reads, whatever the length of the history."""
        path = self.state_dir / "oms.sqlite"
        if not path.is_file():
            return [], [], None, (0, 0)
        store = OrderStore.open_sqlite(path)
        try:
            orders = store.recent_orders(ROWS, self.strategy_id)
            return orders, store.recent_fills(ROWS), store.load_portfolio(), store.activity()
        finally:
            store.close()

    def _journal_rows(self, sql: str) -> list[tuple[Any, ...]]:
        path = self.state_dir / "node.sqlite"
        if not path.is_file():
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:  # the node has not created its tables yet
            return []
        finally:
            conn.close()

    # -- the snapshot -----------------------------------------------------------------------------
    def snapshot(self, live: LiveFacts, now: datetime | None = None) -> Snapshot:
        now = now or datetime.now(UTC)
        orders, fills, portfolio, activity = self._orders()
        marks = [
            EquityPoint(datetime.fromisoformat(t), float(Decimal(e)))
            for t, e in self._journal_rows("SELECT bar_time, equity FROM node_marks ORDER BY bar_time")
        ]  # fmt: skip
        bars = self._journal_rows(
            "SELECT bar_time, denied FROM node_bars WHERE denied != '{}' ORDER BY bar_time DESC "
            f"LIMIT {ROWS}"
        )
        denials = [DenialRow(datetime.fromisoformat(t), cid, reason)
                   for t, body in bars for cid, reason in sorted(json.loads(body).items())]  # fmt: skip
        try:
            record, _flag = read_state_dir(self.state_dir / "risk")
        except RiskError:  # no engine has started in this directory yet
            record = StateRecord()
        audit, head, spent = self._audit(now)

        equity = marks[-1].equity if marks else None
        cash = float(portfolio.cash) if portfolio is not None else None
        positions = self._positions(portfolio, live.last_prices, equity)
        values = [p.market_value for p in positions]
        priced = all(v is not None for v in values)
        if equity is not None and cash is not None and priced and live.last_prices:
            equity = cash + sum(v or 0.0 for v in values)
        gross = net = None
        if equity and priced:
            gross = sum(abs(v or 0.0) for v in values) / equity
            net = sum(v or 0.0 for v in values) / equity
        unrealized = sum(p.unrealized_pnl or 0.0 for p in positions) if priced else None
        realized = sum(p.realized_pnl for p in positions)
        peak = max((m.equity for m in marks), default=None)
        drawdown = None
        if peak and equity is not None:
            drawdown = min(0.0, equity / max(peak, equity) - 1.0)
        day_pnl = None
        if equity is not None and marks:
            previous = [m for m in marks if m.ts.date() < marks[-1].ts.date()]
            base = previous[-1].equity if previous else marks[0].equity
            day_pnl = equity - base

        order_rows = [
            _order_row(o) for o in sorted(orders, key=lambda o: o.updated_at, reverse=True)
        ]
        fill_rows = [
            FillRow(str(f.client_order_id), str(f.fill_id), str(f.symbol), f.side.value,
                    float(f.quantity), float(f.price), float(f.fee), f.ts)
            for f in reversed(fills[-ROWS:])
        ]  # fmt: skip
        limits = self._limits(gross, net, drawdown, positions, equity, orders)
        age = None
        if live.bar_arrived_at is not None:
            age = max(0.0, (now - live.bar_arrived_at).total_seconds())
        body = Snapshot(
            generated_at=now, version="", mode=self.mode, venue=self.venue,
            strategy_id=self.strategy_id, symbols=self.symbols,
            trading_state=record.state.value, killed=record.killed,
            kill_reason=record.kill_reason, state_reason=record.reason,
            broker_connected=live.broker_connected, reconciled=live.reconciled,
            equity=equity, cash=cash, day_pnl=day_pnl, realized_pnl=realized,
            unrealized_pnl=unrealized, drawdown=drawdown,
            drawdown_limit=self.risk.max_drawdown if self.risk else None,
            gross_exposure=gross, net_exposure=net,
            max_gross=self.risk.max_gross if self.risk else None,
            max_net=self.risk.max_net if self.risk else None,
            last_bar_time=live.last_bar_time, data_age_s=age,
            last_decision_time=live.last_decision_time, last_decision=dict(live.last_weights),
            next_bar_time=live.next_bar_time, decision_latency_ms=live.decision_latency_ms,
            positions=tuple(positions),
            open_orders=tuple(r for r in order_rows if r.status in OPEN_STATES),
            recent_orders=tuple(order_rows[:ROWS]), fills=tuple(fill_rows),
            denials=tuple(denials[:ROWS]), limits=tuple(limits), models=tuple(_with_live(live.models, marks, self.periods_per_year)),
            equity_curve=tuple(marks), alerts=tuple(live.alerts), audit=tuple(audit),
            audit_head_seq=head, problems=tuple(live.problems), time_in_state_s=spent,
        )  # fmt: skip
        if _SNAPSHOT_HAS_EXPLANATION:  # the field Snapshot carries the "why" panel in
            why: dict[str, Any] = {"last_explanation": self.last_explanation()}
            body = replace(body, **why)
        return replace(body, version=_version(body, activity, live))

    def last_explanation(self) -> dict[str, Any] | None:
        """Why the newest explained decision was taken, from the journal: its ``bar_time``,
        ``method``, cost (``ms``) and, per explained output (largest move first), ``output``,
        ``value``, ``baseline_value`` and the ``top`` entries (``entry``, ``observed``,
        ``attribution``); ``error`` instead when explaining failed. None when no decision was
        explained."""
        rows = self._journal_rows(
            "SELECT bar_time, body FROM node_explanations ORDER BY bar_time DESC LIMIT 1"
        )
        if not rows:
            return None
        bar_time, body = rows[0]
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        return {"bar_time": datetime.fromisoformat(bar_time), **data}

    def _audit(self, now: datetime) -> tuple[list[AuditRow], int, dict[str, float]]:
        """The newest audit entries, the head seq, and seconds spent in each trading state
        (from the state changes in the log, since its first entry)."""
        db = StatePaths(self.state_dir / "risk").db
        if not db.is_file():
            return [], 0, {}
        with AuditLog(db, create=False) as log:
            seq, _ = log.head()
            entries = log.entries(last=ROWS)
            first = log.connection.execute(
                "SELECT ts FROM audit_log ORDER BY seq LIMIT 1"
            ).fetchall()
            moves = sorted((e for kind in STATE_KINDS for e in log.entries(kind=kind)),
                           key=lambda e: e.seq)  # fmt: skip
        rows = [AuditRow(e.seq, e.timestamp, e.kind, e.correlation_id, _summary(e.data))
                for e in reversed(entries)]  # fmt: skip
        spent: dict[str, float] = {}
        if first:
            state, since = "active", datetime.fromisoformat(first[0][0])
            for move in moves:
                data = move.data if isinstance(move.data, dict) else {}
                spent[state] = spent.get(state, 0.0) + (move.timestamp - since).total_seconds()
                state, since = str(data.get("to", state)), move.timestamp
            spent[state] = spent.get(state, 0.0) + max(0.0, (now - since).total_seconds())
        return rows, seq, spent

    def _positions(
        self, portfolio: Any, prices: dict[str, float], equity: float | None
    ) -> list[PositionRow]:
        if portfolio is None:
            return []
        rows = []
        for pos in portfolio.positions:
            if pos.quantity == 0 and pos.realized_pnl == 0:
                continue
            qty, avg = float(pos.quantity), float(pos.avg_price)
            price = prices.get(str(pos.symbol))
            value = None if price is None else qty * price
            upnl = None if price is None else qty * (price - avg)
            weight = None if value is None or not equity else value / equity
            rows.append(PositionRow(str(pos.symbol), qty, avg, price, value, upnl,
                                    float(pos.realized_pnl), weight))  # fmt: skip
        return rows

    def _limits(
        self, gross: float | None, net: float | None, drawdown: float | None,
        positions: list[PositionRow], equity: float | None, orders: list[Order],
    ) -> list[LimitUse]:  # fmt: skip
        risk = self.risk or RiskConfig()
        largest = max((abs(p.weight or 0.0) for p in positions), default=0.0)
        largest_usd = max((abs(p.market_value or 0.0) for p in positions), default=0.0)
        open_orders = sum(1 for o in orders if o.status.value in OPEN_STATES)

        def dec(value: Decimal | None) -> float | None:
            return None if value is None else float(value)

        return [
            LimitUse("max_gross", risk.max_gross, gross, "ratio"),
            LimitUse("max_net", risk.max_net, None if net is None else abs(net), "ratio"),
            LimitUse("max_position", risk.max_position, largest if equity else None, "ratio"),
            LimitUse("max_position_notional", dec(risk.max_position_notional), largest_usd, "usd"),
            LimitUse("max_drawdown", risk.max_drawdown,
                     None if drawdown is None else -drawdown, "ratio"),
            LimitUse("max_daily_loss", risk.max_daily_loss, None, "ratio"),
            LimitUse("max_open_orders", None if risk.max_open_orders is None
                     else float(risk.max_open_orders), float(open_orders), "count"),
            LimitUse("max_order_notional", dec(risk.max_order_notional), None, "usd"),
            LimitUse("price_collar_bps", risk.price_collar_bps, None, "bps"),
        ]  # fmt: skip


def _with_live(
    models: list[ModelRow], marks: list[EquityPoint], periods_per_year: float
) -> list[ModelRow]:
    """The running program's row gets its live metrics from the node's equity marks (the same
    formulas as the backtest's: total return, annualised Sharpe, max drawdown)."""
    if len(marks) < 3:
        return models
    equity = np.array([m.equity for m in marks])
    returns = equity[1:] / equity[:-1] - 1.0
    spread = float(returns.std(ddof=1))
    live = {
        "total_return": float(equity[-1] / equity[0] - 1.0),
        "sharpe": float(returns.mean() / spread * np.sqrt(periods_per_year))
        if spread > 0
        else None,
        "max_drawdown": float((equity / np.maximum.accumulate(equity) - 1.0).min()),
    }
    return [replace(m, live=live) if m.alias == "running" else m for m in models]


def _order_row(order: Order) -> OrderRow:
    cmd = order.command
    filled = float(order.filled_quantity)
    avg = float(order.filled_notional) / filled if filled > 0 else None
    return OrderRow(
        client_order_id=str(order.client_order_id), symbol=str(cmd.symbol), side=cmd.side.value,
        quantity=float(cmd.quantity), filled_quantity=filled, order_type=cmd.order_type.value,
        limit_price=None if cmd.limit_price is None else float(cmd.limit_price),
        status=order.status.value, avg_fill_price=avg, fees=float(order.fees),
        reason=order.reason, created_at=order.created_at, updated_at=order.updated_at,
    )  # fmt: skip


def _summary(data: Any) -> str:
    if not isinstance(data, dict):
        return str(data)[:160]
    keys = ("reason", "state", "to", "action", "client_order_id", "symbol", "side", "status")
    parts = [f"{k}={data[k]}" for k in keys if k in data]
    return (", ".join(parts) or json.dumps(data, sort_keys=True, default=str))[:160]


def _version(snap: Snapshot, activity: tuple[int, int], live: LiveFacts) -> str:
    """A digest of what changes what an operator sees: the order store's activity, the
    marks, the trading state, the audit head, alerts, prices and the runtime's facts (cheap:
    the full snapshot is never serialised for it)."""
    last_mark = snap.equity_curve[-1] if snap.equity_curve else None
    key = [
        activity, len(snap.equity_curve), last_mark, snap.trading_state, snap.killed,
        snap.state_reason, snap.audit_head_seq, [(a.key, a.status, a.created_at) for a in
                                                 snap.alerts[:5]], len(snap.alerts),
        sorted(live.last_prices.items()), live.last_bar_time, live.last_decision_time,
        live.next_bar_time, live.broker_connected, live.reconciled, list(live.problems),
        sorted(live.last_weights.items()), [(m.alias, m.version) for m in snap.models],
        len(snap.denials),
    ]  # fmt: skip
    text = json.dumps(key, default=_finite)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


__all__ = ["LiveFacts", "StateReader"]
