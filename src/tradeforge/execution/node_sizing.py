"""Target weights to orders, exactly as the backtest sizes them.

``sim.step`` first applies the simulator's limits to a target (``clip_targets``: long only,
``max_position``, ``max_leverage`` counting the held assets a NaN target keeps) and then sizes
``weight * equity / last close``; :func:`size_orders` does the same with the OMS portfolio
(Decimal) and hands the cleaned targets to :func:`~tradeforge.execution.sizing.plan_orders`
(lots, minimum notional, buying power, sells before buys), so a paper order equals the
backtest's trade up to the 1e-9-share increment.

:func:`slice_bar` then turns a bar's orders into what is sent at that bar when an execution
algorithm is on (:mod:`~tradeforge.execution.algos`): an order worth at least
``min_parent_notional`` becomes a parent whose child 0 goes now and the rest at the next trading
bars; every other order goes whole (recorded as a parent of one child, so its implementation
shortfall is measured too). The rule for a symbol that still has children to send, applied by
:func:`split_active` at each later decision:

* the policy's weight for the symbol is NaN (hold) or within ``replace_tolerance`` (default 0:
  exactly) of the weight the parent was sized for: the schedule goes on, this bar's child is sent, and the symbol gets no other order
  (it is held in sizing; the cash the schedule's remaining buys need is kept out of the
  buying power of the other orders);
* any other weight: the remaining children are dropped (status ``replaced``) and the symbol is
  sized afresh against its position, like any symbol: the new order (which may become a new
  parent) replaces the old schedule;
* a risk exit on the symbol drops the remaining children (status ``canceled``).

A bar without a decision (a bad bar, halted trading) sends no child: the rest of the schedule
moves one bar later. A child that is denied, rejected or not (fully) filled is not made up
later; the next changed decision sizes the symbol against the position it really has.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

import numpy as np

from tradeforge.core.types import FloatArray
from tradeforge.domain import (
    Instrument,
    Order,
    OrderSide,
    OrderType,
    Portfolio,
    StrategyId,
    SubmitOrder,
    Symbol,
)
from tradeforge.execution.algos import ParentOrder, TwapSchedule, VolumeSource, child_order_id
from tradeforge.execution.node_journal import ParentSchedule
from tradeforge.execution.sizing import SizingConfig, collar_price, plan_orders, to_commands
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


# -- execution algorithms ---------------------------------------------------------------------
@dataclass(frozen=True)
class BarOrders:
    """What the node sends at a bar (sells first) and the parent rows the bar writes."""

    commands: list[SubmitOrder]
    parents: list[ParentSchedule]


def parent_id(bar_time: datetime, symbol: str) -> str:
    """The id of the parent decided for ``symbol`` at ``bar_time`` (one per symbol and bar)."""
    return f"{bar_time.isoformat()}|{symbol}"


def split_active(
    active: Sequence[ParentSchedule],
    weights: FloatArray,
    symbols: Sequence[Symbol],
    exiting: frozenset[Symbol],
    bar_time: datetime,
    tolerance: float = 0.0,
) -> tuple[list[ParentSchedule], list[ParentSchedule]]:
    """The active schedules that go on at this decision and those it ends (module docstring)."""
    col = {s: j for j, s in enumerate(symbols)}
    going: list[ParentSchedule] = []
    ended: list[ParentSchedule] = []
    for parent in active:
        weight = float(weights[col[parent.symbol]]) if parent.symbol in col else float("nan")
        if parent.symbol in exiting:
            ended.append(replace(parent, status="canceled", ended_at=bar_time))
        elif np.isnan(weight) or abs(weight - parent.weight) <= tolerance:
            going.append(parent)
        else:
            ended.append(replace(parent, status="replaced", ended_at=bar_time))
    return going, ended


def reserved_cash(going: Sequence[ParentSchedule], marks: Mapping[Symbol, Decimal]) -> Decimal:
    """What the buy children still to send (this bar's included) cost at ``marks``."""
    return sum(
        (sum(p.remaining, Decimal(0)) * marks.get(p.symbol, p.arrival_price)
         for p in going if p.side is OrderSide.BUY),
        Decimal(0),
    )  # fmt: skip


def _limit(side: OrderSide, last: Decimal, inst: Instrument, sizing: SizingConfig) -> Decimal | None:  # fmt: skip
    """A child's limit price at the current last price, as ``plan_orders`` prices an order."""
    if sizing.order_type == "market":
        return None
    if sizing.order_type == "marketable_limit":
        return collar_price(last, side, sizing.collar_bps, inst.price_increment)
    frac = Decimal(repr(sizing.limit_offset_bps)) * Decimal("0.0001")
    tick = inst.price_increment
    if side is OrderSide.BUY:
        return (last * (1 - frac) / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
    return (last * (1 + frac) / tick).to_integral_value(rounding=ROUND_CEILING) * tick


def slice_bar(
    commands: Sequence[SubmitOrder],
    going: Sequence[ParentSchedule],
    *,
    weights: FloatArray,
    symbols: Sequence[Symbol],
    marks: Mapping[Symbol, Decimal],
    instruments: Mapping[Symbol, Instrument],
    sizing: SizingConfig,
    schedule: TwapSchedule | None,
    min_parent_notional: Decimal,
    volumes: VolumeSource | None,
    strategy_id: StrategyId,
    bar_time: datetime,
) -> BarOrders:
    """This bar's orders: the sized ``commands`` (large ones sliced by ``schedule``, child 0
    now) and the next child of every schedule in ``going`` (module docstring)."""
    col = {s: j for j, s in enumerate(symbols)}
    out: list[SubmitOrder] = []
    parents: list[ParentSchedule] = []
    for command in commands:
        symbol = command.symbol
        arrival = marks[symbol]
        weight = float(weights[col[symbol]])
        pid = parent_id(bar_time, symbol)
        if schedule is None or command.quantity * arrival < min_parent_notional:
            out.append(command)
            parents.append(ParentSchedule(
                pid, symbol, command.side, command.quantity, arrival, bar_time, weight, "none",
                (command.quantity,), (command.client_order_id,), sent=1, status="done",
                ended_at=bar_time,
            ))  # fmt: skip
            continue
        order = ParentOrder(symbol, command.side, command.quantity, arrival, bar_time)
        children = schedule.children(order, instruments[symbol], volumes)
        ids = tuple(child_order_id(strategy_id, bar_time, symbol, k)
                    for k in range(len(children)))  # fmt: skip
        parent = ParentSchedule(pid, symbol, command.side, command.quantity, arrival, bar_time,
                                weight, schedule.kind, children, ids)  # fmt: skip
        parents.append(_advance(parent, bar_time))
        if children[0] > 0:
            out.append(command.model_copy(update={"client_order_id": ids[0],
                                                  "quantity": children[0]}))  # fmt: skip
    for parent in going:
        k = parent.sent
        quantity = parent.children[k]
        parents.append(_advance(parent, bar_time))
        if quantity <= 0:
            continue
        inst = instruments[parent.symbol]
        last = marks.get(parent.symbol, parent.arrival_price)
        out.append(SubmitOrder(
            client_order_id=parent.client_order_ids[k], strategy_id=strategy_id,
            symbol=parent.symbol, side=parent.side,
            quantity=quantity, order_type=OrderType.MARKET if sizing.order_type == "market"
            else OrderType.LIMIT, time_in_force=sizing.time_in_force,
            limit_price=_limit(parent.side, last, inst, sizing),
        ))  # fmt: skip
    out.sort(key=lambda c: (c.side is OrderSide.BUY, c.symbol))
    return BarOrders(out, parents)


def _advance(parent: ParentSchedule, bar_time: datetime) -> ParentSchedule:
    sent = parent.sent + 1
    if sent >= len(parent.children):
        return replace(parent, sent=sent, status="done", ended_at=bar_time)
    return replace(parent, sent=sent)


__all__ = [
    "BarOrders",
    "local_buying_power",
    "parent_id",
    "reserved_cash",
    "size_orders",
    "slice_bar",
    "split_active",
]
