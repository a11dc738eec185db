"""Portfolio controls: per-position stop-loss and trailing stop (they become exit intents), and
the breakers (daily loss, maximum drawdown, loss streak) that move the trading state.

Pure functions of a portfolio view, the time and a :class:`ControlMemory` (what the controls
remember between calls: peak equity, the day and its starting equity, the loss streak, each
position's best price since entry); each returns the new memory, which the engine persists.

* stop-loss: a long exits when the last price is at or below ``avg_price * (1 - stop_loss)``
  (a short at or above ``avg_price * (1 + stop_loss)``);
* trailing stop: a long exits at or below ``peak * (1 - trailing_stop)``, ``peak`` being the
  highest last price seen since the position was opened (its entry price at first); a short
  mirrors it with the lowest price;
* daily loss: equity below ``day_start * (1 - max_daily_loss)``, ``day_start`` being the first
  equity seen on that UTC date;
* drawdown: equity below ``peak_equity * (1 - max_drawdown)``;
* loss streak: ``max_loss_streak`` closing trades in a row with a loss (fees included); a
  winning trade resets the count, a break-even one leaves it.

An exit's quantity is the position less what open reducing orders already cover.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from tradeforge.core.errors import RiskError
from tradeforge.domain import OrderFilled, OrderSide, Position, Symbol
from tradeforge.risk.checks import PortfolioView
from tradeforge.risk.config import RiskConfig
from tradeforge.risk.state import TradingState

_ZERO = Decimal(0)


class ExitReason(StrEnum):
    STOP_LOSS = "stop_loss"
    TRAILING_STOP = "trailing_stop"
    KILL_FLATTEN = "kill_flatten"


class Breaker(StrEnum):
    DAILY_LOSS = "daily_loss"
    DRAWDOWN = "drawdown"
    LOSS_STREAK = "loss_streak"


@dataclass(frozen=True)
class ExitIntent:
    """An order the controls want placed to close (part of) a position; execution gives it a
    client order id and sends it through the risk engine like any order (it reduces risk, so
    it passes in REDUCING)."""

    symbol: Symbol
    side: OrderSide
    quantity: Decimal
    reason: ExitReason
    reference_price: Decimal
    message: str = ""


@dataclass(frozen=True)
class Trip:
    """A breaker that fired and the state it asks for."""

    breaker: Breaker
    action: TradingState
    message: str


@dataclass(frozen=True)
class ControlMemory:
    """What the controls remember (JSON round trip: :meth:`to_json` / :meth:`from_json`)."""

    peak_equity: Decimal | None = None
    day: str | None = None
    day_start_equity: Decimal | None = None
    loss_streak: int = 0
    trail: Mapping[Symbol, tuple[int, Decimal]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "peak_equity": None if self.peak_equity is None else str(self.peak_equity),
            "day": self.day,
            "day_start_equity": None if self.day_start_equity is None
            else str(self.day_start_equity),
            "loss_streak": self.loss_streak,
            "trail": {s: [sign, str(p)] for s, (sign, p) in sorted(self.trail.items())},
        }  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ControlMemory:
        def dec(v: Any) -> Decimal | None:
            return None if v is None else Decimal(str(v))

        return cls(
            peak_equity=dec(raw.get("peak_equity")), day=raw.get("day"),
            day_start_equity=dec(raw.get("day_start_equity")),
            loss_streak=int(raw.get("loss_streak", 0)),
            trail={Symbol(s): (int(v[0]), Decimal(str(v[1])))
                   for s, v in dict(raw.get("trail", {})).items()},
        )  # fmt: skip


def _action(name: str) -> TradingState:
    return TradingState.HALTED if name == "halted" else TradingState.REDUCING


def mark_equity(view: PortfolioView) -> Decimal:
    """Cash plus every position at its last price; raises :class:`RiskError` naming a held
    symbol without a positive last price."""
    equity = view.portfolio.cash
    for pos in view.portfolio.positions:
        if pos.quantity == 0:
            continue
        price = view.last_prices.get(pos.symbol)
        if price is None or not price.is_finite() or price <= 0:
            raise RiskError(
                f"last_prices[{pos.symbol!r}] = {price!r}; expected a positive price for every "
                "held symbol"
            )
        equity += pos.quantity * price
    return equity


def update_breakers(
    memory: ControlMemory, equity: Decimal, now: datetime, config: RiskConfig
) -> tuple[ControlMemory, list[Trip]]:
    """Roll the day, raise the equity peak, and fire the daily-loss and drawdown breakers."""
    day = now.date().isoformat()
    same_day = memory.day == day and memory.day_start_equity is not None
    start = memory.day_start_equity if same_day else equity
    peak = equity if memory.peak_equity is None else max(memory.peak_equity, equity)
    new = replace(memory, day=day, day_start_equity=start, peak_equity=peak)
    trips: list[Trip] = []
    if config.max_daily_loss is not None and start is not None and start > 0:
        floor = start * (1 - Decimal(repr(config.max_daily_loss)))
        if equity < floor:
            trips.append(Trip(Breaker.DAILY_LOSS, _action(config.daily_loss_action),
                              f"equity {equity} < day start {start} x (1 - "
                              f"{config.max_daily_loss})"))  # fmt: skip
    if config.max_drawdown is not None and peak > 0:
        floor = peak * (1 - Decimal(repr(config.max_drawdown)))
        if equity < floor:
            trips.append(Trip(Breaker.DRAWDOWN, _action(config.drawdown_action),
                              f"equity {equity} < peak {peak} x (1 - {config.max_drawdown})"))  # fmt: skip
    return new, trips


def stop_exits(
    view: PortfolioView, memory: ControlMemory, config: RiskConfig
) -> tuple[ControlMemory, list[ExitIntent]]:
    """Update each position's trailing peak and return the stop-loss and trailing exits."""
    pending: dict[tuple[Symbol, OrderSide], Decimal] = {}
    for order in view.open_orders:
        if order.is_open:
            key = (order.symbol, order.side)
            pending[key] = pending.get(key, _ZERO) + order.leaves_quantity
    trail: dict[Symbol, tuple[int, Decimal]] = {}
    exits: list[ExitIntent] = []
    for pos in view.portfolio.positions:
        if pos.quantity == 0:
            continue
        price = view.last_prices.get(pos.symbol)
        if price is None or not price.is_finite() or price <= 0:
            raise RiskError(f"last_prices[{pos.symbol!r}] = {price!r}; expected a positive price")
        sign = 1 if pos.quantity > 0 else -1
        old = memory.trail.get(pos.symbol)
        if old is None or old[0] != sign:
            peak = max(pos.avg_price, price) if sign > 0 else min(pos.avg_price, price)
        else:
            peak = max(old[1], price) if sign > 0 else min(old[1], price)
        trail[pos.symbol] = (sign, peak)
        exit_side = OrderSide.SELL if sign > 0 else OrderSide.BUY
        quantity = abs(pos.quantity) - pending.get((pos.symbol, exit_side), _ZERO)
        reason = _stop_reason(pos, price, peak, sign, config)
        if reason is not None and quantity > 0:
            exits.append(ExitIntent(pos.symbol, exit_side, quantity, reason[0], price, reason[1]))
    return replace(memory, trail=trail), exits


def _stop_reason(
    pos: Position, price: Decimal, peak: Decimal, sign: int, config: RiskConfig
) -> tuple[ExitReason, str] | None:
    if config.stop_loss is not None:
        level = pos.avg_price * (1 - sign * Decimal(repr(config.stop_loss)))
        if price * sign <= level * sign:
            return ExitReason.STOP_LOSS, (
                f"last {price} crossed the stop {level} (entry {pos.avg_price}, "
                f"stop_loss {config.stop_loss})"
            )
    if config.trailing_stop is not None:
        level = peak * (1 - sign * Decimal(repr(config.trailing_stop)))
        if price * sign <= level * sign:
            return ExitReason.TRAILING_STOP, (
                f"last {price} crossed the trailing stop {level} (best {peak}, "
                f"trailing_stop {config.trailing_stop})"
            )
    return None


def flatten_exits(view: PortfolioView) -> list[ExitIntent]:
    """Exits that close every position (the kill switch's optional flatten)."""
    exits = []
    for pos in view.portfolio.positions:
        if pos.quantity == 0:
            continue
        side = OrderSide.SELL if pos.quantity > 0 else OrderSide.BUY
        price = view.last_prices.get(pos.symbol, pos.avg_price)
        exits.append(ExitIntent(pos.symbol, side, abs(pos.quantity), ExitReason.KILL_FLATTEN,
                                price, "kill switch flatten"))  # fmt: skip
    return exits


def trade_pnl(fill: OrderFilled, before: Position) -> Decimal | None:
    """The P&L of the part of ``fill`` that closes ``before`` (its share of the fee
    included); None when the fill only opens or adds."""
    q = before.quantity
    if q == 0 or (q > 0) == (fill.side is OrderSide.BUY):
        return None
    closed = min(fill.quantity, abs(q))
    sign = 1 if q > 0 else -1
    return closed * (fill.price - before.avg_price) * sign - fill.fee * closed / fill.quantity


def update_streak(
    memory: ControlMemory, pnl: Decimal, config: RiskConfig
) -> tuple[ControlMemory, Trip | None]:
    """Count a closing trade's P&L into the loss streak; fire the breaker at its limit."""
    streak = memory.loss_streak + 1 if pnl < 0 else (0 if pnl > 0 else memory.loss_streak)
    new = replace(memory, loss_streak=streak)
    if config.max_loss_streak is not None and pnl < 0 and streak >= config.max_loss_streak:
        return new, Trip(Breaker.LOSS_STREAK, _action(config.loss_streak_action),
                         f"{streak} losing trades in a row (max_loss_streak "
                         f"{config.max_loss_streak})")  # fmt: skip
    return new, None


__all__ = [
    "Breaker",
    "ControlMemory",
    "ExitIntent",
    "ExitReason",
    "Trip",
    "flatten_exits",
    "mark_equity",
    "stop_exits",
    "trade_pnl",
    "update_breakers",
    "update_streak",
]
