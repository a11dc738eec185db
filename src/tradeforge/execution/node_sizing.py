"""Target weights to orders, exactly as the backtest sizes them.

``sim.step`` first applies the simulator's limits to a target (``clip_targets``: long only,
``max_position``, ``max_leverage`` counting the held assets a NaN target keeps) and then sizes
``weight * equity / last close``; :func:`size_orders` does the same with the OMS portfolio
(Decimal) and hands the cleaned targets to :func:`~tradeforge.execution.sizing.plan_orders`
(lots, minimum notional, buying power, sells before buys), so a paper order equals the
backtest's trade up to the 1e-9-share increment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation

import numpy as np

from tradeforge.core.types import FloatArray
from tradeforge.domain import (
    Instrument,
    Order,
    OrderSide,
    Portfolio,
    StrategyId,
    SubmitOrder,
    Symbol,
)
from tradeforge.execution.sizing import SizingConfig, plan_orders, to_commands
from tradeforge.sim import SimConfig
from tradeforge.sim.step import clip_targets

logger = logging.getLogger(__name__)


def local_buying_power(
    portfolio: Portfolio, open_orders: Iterable[Order], marks: Mapping[Symbol, Decimal]
) -> Decimal:
    """Cash less the open buys' cost (at their limit, else the last price): what the local
    venue reports as buying power, without a round trip."""
    spent = sum(
        (o.leaves_quantity * (o.command.limit_price or marks.get(o.symbol, Decimal(0)))
         for o in open_orders if o.side is OrderSide.BUY),
        Decimal(0),
    )  # fmt: skip
    return portfolio.cash - spent


def size_orders(
    weights: FloatArray,
    *,
    portfolio: Portfolio,
    marks: Mapping[Symbol, Decimal],
    symbols: Sequence[Symbol],
    sim: SimConfig,
    instruments: Mapping[Symbol, Instrument],
    sizing: SizingConfig,
    buying_power: Decimal,
    strategy_id: StrategyId,
    bar_time: datetime,
    hold: frozenset[Symbol] = frozenset(),
) -> list[SubmitOrder]:
    """The orders that move ``portfolio`` to ``weights`` (NaN = hold; symbols in ``hold`` are
    held too) at ``marks``, with deterministic client order ids for ``bar_time``."""
    n = len(symbols)
    equity = portfolio.equity(marks)
    mark = np.array([float(marks.get(s, Decimal("NaN"))) for s in symbols])
    quantities = portfolio.quantities()
    qty = np.array([float(quantities.get(s, 0)) for s in symbols])
    sizing_equity = max(float(equity), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        held = np.where(qty != 0.0, qty * mark, 0.0)
        current = held / sizing_equity if sizing_equity > 0.0 else np.zeros(n)
    cleaned, kept = clip_targets(np.asarray(weights).reshape(1, n), current.reshape(1, n), sim)
    targets = {s: (float("nan") if kept[0, j] or s in hold else float(cleaned[0, j]))
               for j, s in enumerate(symbols)}  # fmt: skip
    try:
        plan = plan_orders(targets, quantities, marks, equity, instruments, buying_power, sizing)
    except InvalidOperation:
        # plan_orders divides 0 by 0 when there is no buy and the buying power is negative
        # (cash below 0 after fills above the sizing price); with no buy the buying power
        # plays no part, so any value >= 0 gives the same plan
        plan = plan_orders(targets, quantities, marks, equity, instruments, Decimal(0), sizing)
    for skipped in plan.skipped:
        logger.info("bar %s: %s skipped: %s", bar_time.isoformat(), skipped.symbol, skipped.reason)
    return to_commands(plan, strategy_id, bar_time)


__all__ = ["local_buying_power", "size_orders"]
