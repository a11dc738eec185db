"""Target weights -> orders: pure functions, no broker, no clock.

:func:`plan_orders` turns the weights a policy wants into order intents the way ``sim.step``
sizes a target, so paper orders match backtest trades:

1. weights: NaN (or a symbol left out) holds that symbol: no order. ``+/-inf`` is an error.
   A negative weight needs ``SizingConfig.allow_short`` and a shortable instrument; otherwise it
   is clipped to 0 (the position is sold, no short opened).
2. target quantity = ``weight * max(equity, 0) / last_price``, rounded toward zero (with the
   backtester's 1e-9-lot tolerance for float noise) to whole multiples of ``lot_size``, or to
   ``quantity_increment`` for a fractionable instrument; the order is the difference to the
   current position.
3. orders worth less than ``max(instrument.min_notional, config.min_trade_value)`` at the last
   price are skipped; so are instruments that are not tradable or have no positive price.
4. buying power: buys cost ``quantity * limit_price`` (limit orders) or ``quantity * last *
   (1 + buy_buffer_bps)`` (market orders); sells free ``quantity * last`` (or their limit)
   when ``use_sell_proceeds``. When the buys cost more than that money, every buy is scaled by
   the same factor and rounded down again.
5. sells come before buys (each group sorted by symbol), so sell proceeds exist when buys fill.

Prices: ``market`` orders carry none; ``limit`` orders are placed at the last price moved
``limit_offset_bps`` to the passive side; ``marketable_limit`` orders are limits
``collar_bps`` through the last price (a buy at ``last * (1 + collar)``, rounded DOWN to the tick
so the collar is never exceeded; a sell at ``last * (1 - collar)``, rounded UP): they fill like
market orders unless the price runs away by more than the collar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Literal

from pydantic import Field

from tradeforge.core.config import FrozenConfig
from tradeforge.domain import (
    Instrument,
    OrderSide,
    OrderType,
    StrategyId,
    SubmitOrder,
    Symbol,
    TimeInForce,
)
from tradeforge.execution.errors import SizingError
from tradeforge.execution.ids import client_order_id

_BPS = Decimal("0.0001")
_LOT_EPS = Decimal("1e-9")  # the backtester's lot-rounding tolerance (sim.step._ROUND_EPS)

SizingOrderType = Literal["market", "limit", "marketable_limit"]


class SizingConfig(FrozenConfig):
    """How :func:`plan_orders` prices and limits orders (see the module docstring)."""

    order_type: SizingOrderType = "market"
    collar_bps: float = Field(default=50.0, ge=0.0)
    limit_offset_bps: float = Field(default=0.0, ge=0.0)
    time_in_force: TimeInForce = TimeInForce.DAY
    allow_short: bool = False
    min_trade_value: float = Field(default=0.0, ge=0.0)
    buy_buffer_bps: float = Field(default=0.0, ge=0.0)
    use_sell_proceeds: bool = True


@dataclass(frozen=True)
class OrderIntent:
    """One order to place (before it gets a client order id)."""

    symbol: Symbol
    side: OrderSide
    quantity: Decimal
    order_type: OrderType
    reference_price: Decimal
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY

    @property
    def notional(self) -> Decimal:
        """Quantity at the reference (last) price."""
        return self.quantity * self.reference_price


@dataclass(frozen=True)
class Skipped:
    """A symbol that got no order, and why."""

    symbol: Symbol
    reason: str


@dataclass(frozen=True)
class OrderPlan:
    """The intents (sells first), what was skipped, and the factor buys were scaled by to fit
    the buying power (1 when they fit)."""

    intents: tuple[OrderIntent, ...]
    skipped: tuple[Skipped, ...]
    buy_scale: Decimal = Decimal(1)


def round_quantity(quantity: Decimal, instrument: Instrument) -> Decimal:
    """``quantity`` rounded toward zero to what ``instrument`` can trade (lots or increments),
    with a 1e-9-lot tolerance (99.9999999999 lots counts as 100) like the backtester."""
    step = instrument.quantity_increment if instrument.fractionable else instrument.lot_size
    lots = quantity / step
    sign = 1 if lots >= 0 else -1
    nudged = lots + sign * _LOT_EPS if not instrument.fractionable else lots
    return nudged.to_integral_value(rounding=ROUND_DOWN) * step


def collar_price(last: Decimal, side: OrderSide, bps: float, tick: Decimal) -> Decimal:
    """The marketable limit ``bps`` through ``last``: a buy's rounded down to ``tick``, a sell's
    rounded up, so the limit never lies beyond the collar."""
    frac = Decimal(repr(bps)) * _BPS
    if side is OrderSide.BUY:
        return (last * (1 + frac) / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
    return (last * (1 - frac) / tick).to_integral_value(rounding=ROUND_CEILING) * tick


def _passive_price(last: Decimal, side: OrderSide, bps: float, tick: Decimal) -> Decimal:
    frac = Decimal(repr(bps)) * _BPS
    if side is OrderSide.BUY:
        return (last * (1 - frac) / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
    return (last * (1 + frac) / tick).to_integral_value(rounding=ROUND_CEILING) * tick


def _as_decimal(value: Decimal | float, what: str) -> Decimal | None:
    """``value`` as a Decimal, None for NaN; inf raises."""
    if isinstance(value, Decimal):
        if value.is_nan():
            return None
        if value.is_infinite():
            raise SizingError(f"{what} = {value}; expected a finite number or NaN (hold)")
        return value
    number = float(value)
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise SizingError(f"{what} = {value!r}; expected a finite number or NaN (hold)")
    return Decimal(repr(number))


def _price(intent_side: OrderSide, last: Decimal, inst: Instrument, config: SizingConfig) -> tuple[OrderType, Decimal | None]:  # fmt: skip
    if config.order_type == "market":
        return OrderType.MARKET, None
    if config.order_type == "limit":
        return OrderType.LIMIT, _passive_price(last, intent_side, config.limit_offset_bps,
                                               inst.price_increment)  # fmt: skip
    return OrderType.LIMIT, collar_price(last, intent_side, config.collar_bps, inst.price_increment)


def _make_intent(
    symbol: Symbol, delta: Decimal, last: Decimal, inst: Instrument, config: SizingConfig
) -> OrderIntent:
    side = OrderSide.BUY if delta > 0 else OrderSide.SELL
    order_type, limit = _price(side, last, inst, config)
    return OrderIntent(symbol, side, abs(delta), order_type, last, limit, config.time_in_force)


def _buy_cost(intent: OrderIntent, config: SizingConfig) -> Decimal:
    if intent.limit_price is not None:
        return intent.quantity * intent.limit_price
    return (
        intent.quantity * intent.reference_price * (1 + Decimal(repr(config.buy_buffer_bps)) * _BPS)
    )


def plan_orders(
    target_weights: Mapping[Symbol, Decimal | float],
    positions: Mapping[Symbol, Decimal],
    prices: Mapping[Symbol, Decimal],
    equity: Decimal,
    instruments: Mapping[Symbol, Instrument],
    buying_power: Decimal,
    config: SizingConfig | None = None,
) -> OrderPlan:
    """The orders that move ``positions`` to ``target_weights`` of ``equity`` (module docstring).

    ``prices`` are the last known prices (the decision bar's close); every symbol with a
    weight needs an entry in ``instruments``.
    """
    cfg = config or SizingConfig()
    if not equity.is_finite() or not buying_power.is_finite():
        raise SizingError(
            f"equity = {equity}, buying_power = {buying_power}; expected finite numbers"
        )
    sizing_equity = max(equity, Decimal(0))
    skipped: list[Skipped] = []
    sells: list[OrderIntent] = []
    buys: list[OrderIntent] = []
    for symbol in sorted(target_weights):
        weight = _as_decimal(target_weights[symbol], f"target_weights[{symbol!r}]")
        if weight is None:
            continue
        inst = instruments.get(symbol)
        if inst is None:
            raise SizingError(
                f"instruments has no entry for {symbol!r}; expected one for every symbol with a "
                "target weight"
            )
        if not inst.tradable:
            skipped.append(Skipped(symbol, "not tradable"))
            continue
        last = prices.get(symbol)
        if last is None or not last.is_finite() or last <= 0:
            skipped.append(Skipped(symbol, f"no positive last price ({last})"))
            continue
        if weight < 0 and not (cfg.allow_short and inst.shortable):
            skipped.append(Skipped(symbol, f"weight {weight} clipped to 0: shorting not allowed"))
            weight = Decimal(0)
        target = round_quantity(weight * sizing_equity / last, inst)
        delta = target - positions.get(symbol, Decimal(0))
        if delta == 0:
            continue
        minimum = max(inst.min_notional, Decimal(repr(cfg.min_trade_value)))
        if abs(delta) * last < minimum:
            skipped.append(Skipped(symbol, f"order of {abs(delta) * last} below minimum {minimum}"))
            continue
        intent = _make_intent(symbol, delta, last, inst, cfg)
        (buys if intent.side is OrderSide.BUY else sells).append(intent)

    available = buying_power
    if cfg.use_sell_proceeds:
        available += sum(
            (s.quantity * (s.limit_price or s.reference_price) for s in sells), Decimal(0)
        )
    cost = sum((_buy_cost(b, cfg) for b in buys), Decimal(0))
    scale = Decimal(1)
    if buys and cost > available:  # no buys: nothing to scale (0 / 0 otherwise)
        scale = max(available, Decimal(0)) / cost
        scaled: list[OrderIntent] = []
        for b in buys:
            inst = instruments[b.symbol]
            qty = round_quantity(b.quantity * scale, inst)
            # rounding toward zero keeps the total within the money; drop what vanished
            if qty <= 0 or qty * b.reference_price < max(
                inst.min_notional, Decimal(repr(cfg.min_trade_value))
            ):
                skipped.append(Skipped(b.symbol, f"buy scaled by {scale:.6f} to fit buying power "
                                                 "fell below the minimum"))  # fmt: skip
                continue
            scaled.append(replace(b, quantity=qty))
        buys = scaled
    return OrderPlan(intents=(*sells, *buys), skipped=tuple(skipped), buy_scale=scale)


def to_commands(
    plan: OrderPlan,
    strategy_id: StrategyId,
    bar_time: datetime,
    revision: int = 0,
) -> list[SubmitOrder]:
    """The plan's intents as ``SubmitOrder`` commands with deterministic client order ids
    (leg = symbol: one order per symbol and bar; ``execution.ids.client_order_id``)."""
    return [
        SubmitOrder(
            client_order_id=client_order_id(strategy_id, bar_time, intent.symbol, revision),
            strategy_id=strategy_id,
            symbol=intent.symbol,
            side=intent.side,
            quantity=intent.quantity,
            order_type=intent.order_type,
            time_in_force=intent.time_in_force,
            limit_price=intent.limit_price,
        )
        for intent in plan.intents
    ]


__all__ = [
    "OrderIntent",
    "OrderPlan",
    "SizingConfig",
    "SizingOrderType",
    "Skipped",
    "collar_price",
    "plan_orders",
    "round_quantity",
    "to_commands",
]
