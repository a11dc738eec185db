"""What the operator sees, as plain data: one :class:`Snapshot` of a running service.

The API (``/api/v1/*``), the dashboard pages and their live updates, and the Prometheus gauges
all read the same snapshot, built by :mod:`tradeforge.serve.view` from the node's durable
stores (orders, fills, positions, marks, decisions, risk state) and the runtime's live facts
(last prices, next bar, latencies). Values are floats in account currency unless named
otherwise; times are timezone-aware UTC ``datetime`` (None when not known yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol


@dataclass(frozen=True)
class PositionRow:
    symbol: str
    quantity: float
    avg_price: float
    last_price: float | None
    market_value: float | None
    unrealized_pnl: float | None
    realized_pnl: float
    weight: float | None  # market value / equity


@dataclass(frozen=True)
class OrderRow:
    client_order_id: str
    symbol: str
    side: str
    quantity: float
    filled_quantity: float
    order_type: str
    limit_price: float | None
    status: str  # the order state machine's state (new, accepted, partially_filled, filled, ...)
    avg_fill_price: float | None
    fees: float
    reason: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class FillRow:
    client_order_id: str
    fill_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    timestamp: datetime


@dataclass(frozen=True)
class DenialRow:
    bar_time: datetime
    client_order_id: str
    reason: str


@dataclass(frozen=True)
class LimitUse:
    """A risk limit and how much of it is used now (``used`` in the limit's own unit)."""

    name: str
    limit: float | None
    used: float | None
    unit: str  # "ratio", "usd", "count", "shares", "bps", "bool"

    @property
    def utilisation(self) -> float | None:
        if self.limit is None or self.used is None or self.limit == 0:
            return None
        return abs(self.used) / abs(self.limit)


@dataclass(frozen=True)
class ModelRow:
    alias: str  # "running" for the program the node trades; registry aliases otherwise
    name: str
    version: str
    backtest: dict[str, float | None] = field(default_factory=dict)
    live: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertRow:
    key: str
    severity: str
    title: str
    channel: str
    status: str  # sent | failed | suppressed | pending
    attempts: int
    error: str
    created_at: datetime


@dataclass(frozen=True)
class AuditRow:
    seq: int
    ts: datetime
    kind: str
    correlation_id: str
    summary: str


@dataclass(frozen=True)
class EquityPoint:
    ts: datetime
    equity: float


@dataclass(frozen=True)
class Snapshot:
    """The service at one instant (module docstring). ``version`` changes whenever anything an
    operator sees changes: the live event stream sends a new snapshot only then."""

    generated_at: datetime
    version: str
    mode: str  # "paper" or "live"
    venue: str
    strategy_id: str
    symbols: tuple[str, ...]
    trading_state: str  # active | reducing | halted
    killed: bool
    kill_reason: str
    state_reason: str
    broker_connected: bool
    reconciled: bool
    equity: float | None
    cash: float | None
    day_pnl: float | None
    realized_pnl: float
    unrealized_pnl: float | None
    drawdown: float | None  # <= 0: equity / running peak - 1
    drawdown_limit: float | None  # the risk config's max_drawdown (a positive fraction)
    gross_exposure: float | None  # sum |market value| / equity
    net_exposure: float | None
    max_gross: float | None
    max_net: float | None
    last_bar_time: datetime | None
    data_age_s: float | None  # seconds since the last bar's data arrived (wall clock)
    last_decision_time: datetime | None
    last_decision: dict[str, float]  # symbol -> target weight of the last decision
    next_bar_time: datetime | None
    decision_latency_ms: float | None  # the last decision's policy latency
    positions: tuple[PositionRow, ...]
    open_orders: tuple[OrderRow, ...]
    recent_orders: tuple[OrderRow, ...]  # newest first
    fills: tuple[FillRow, ...]  # newest first
    denials: tuple[DenialRow, ...]  # newest first
    limits: tuple[LimitUse, ...]
    models: tuple[ModelRow, ...]
    equity_curve: tuple[EquityPoint, ...]
    alerts: tuple[AlertRow, ...]  # newest first
    audit: tuple[AuditRow, ...]  # newest first
    audit_head_seq: int
    time_in_state_s: dict[str, float] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # what keeps the service from being ready
    # the canary sleeve (share, equity, last decision, rolled back, reason) and the shadow
    # runner (agreement with the policy, simulated equity); None when not configured
    canary: dict[str, Any] | None = None
    shadow: dict[str, Any] | None = None
    # why the newest explained decision was taken (``StateReader.last_explanation``): the
    # overview's "why" panel; None when no decision was explained
    last_explanation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO strings); built once per snapshot and shared, so
        callers must not modify it."""
        return self._as_dict

    @cached_property
    def _as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _jsonable(self)
        return out


class ServiceHandle(Protocol):
    """What the API and dashboard need from a running service (``serve.runtime`` implements
    it; tests may pass a stand-in). ``kill``/``resume`` are audited and return the new
    snapshot; ``reason`` must be non-empty (``ConfigError`` otherwise)."""

    def snapshot(self) -> Snapshot: ...

    def kill(self, reason: str, *, source: str = "api") -> Snapshot: ...

    def resume(self, reason: str, *, source: str = "api") -> Snapshot: ...


def _jsonable(value: Any) -> Any:
    """Dataclasses, tuples and dicts to JSON-ready values (no deep copies: ``asdict`` copies
    every leaf and is several times slower on a snapshot)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


__all__ = [
    "AlertRow",
    "AuditRow",
    "DenialRow",
    "EquityPoint",
    "FillRow",
    "LimitUse",
    "ModelRow",
    "OrderRow",
    "PositionRow",
    "ServiceHandle",
    "Snapshot",
]
