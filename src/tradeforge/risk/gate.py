"""Orders through the risk engine, one bar at a time: the shared part of the trading node and the
backtester ("targets -> orders -> checks").

* :func:`gate_orders` checks a bar's orders in turn, each against the view plus the orders of
  this bar already approved (as open orders: orders approved one by one cannot add up past a
  limit), and splits them into approved and denied;
* :func:`exit_orders` turns the controls' :class:`~tradeforge.risk.controls.ExitIntent` into
  market orders with the ids the caller derives.

The trading node (``tradeforge.execution.node``) and the backtester's risk path
(:class:`tradeforge.risk.bars.BarRisk`) both call these, so an order is approved or denied by the
same code in a backtest, an env and a paper or live run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from tradeforge.domain import (
    ClientOrderId,
    Order,
    OrderSubmitted,
    StrategyId,
    SubmitOrder,
)
from tradeforge.risk.checks import Denied, PortfolioView
from tradeforge.risk.controls import ExitIntent


class OrderValidator(Protocol):
    """What :func:`gate_orders` calls (``RiskEngine`` fits)."""

    def validate(self, order: SubmitOrder, view: PortfolioView) -> Denied | None: ...


@dataclass(frozen=True)
class GateResult:
    """A bar's orders after the checks, each list in the order given."""

    approved: list[SubmitOrder]
    denied: list[tuple[SubmitOrder, Denied]]


def gate_orders(
    risk: OrderValidator,
    commands: Sequence[SubmitOrder],
    view: PortfolioView,
    at: datetime,
    *,
    known: Callable[[ClientOrderId], bool] | None = None,
) -> GateResult:
    """Check ``commands`` in order against ``view`` (its open orders plus this bar's approved
    ones, created at ``at``). A command whose id ``known`` reports (already sent, e.g. before a
    restart) or that repeats an id of this call passes unchecked: it was checked when first
    decided and is not counted twice."""
    approved: list[SubmitOrder] = []
    denied: list[tuple[SubmitOrder, Denied]] = []
    pending: list[Order] = []
    seen: set[ClientOrderId] = set()
    for command in commands:
        cid = command.client_order_id
        if cid not in seen and (known is None or not known(cid)):
            checked = replace(view, open_orders=[*view.open_orders, *pending])
            refusal = risk.validate(command, checked)
            if refusal is not None:
                denied.append((command, refusal))
                continue
            pending.append(Order.create(OrderSubmitted(client_order_id=cid, ts=at,
                                                       command=command)))  # fmt: skip
        seen.add(cid)
        approved.append(command)
    return GateResult(approved, denied)


def exit_orders(
    exits: Sequence[ExitIntent],
    strategy_id: StrategyId,
    order_id: Callable[[ExitIntent], ClientOrderId],
) -> list[SubmitOrder]:
    """Market orders (day) for ``exits``, with the ids ``order_id`` gives each."""
    return [
        SubmitOrder(
            client_order_id=order_id(e),
            strategy_id=strategy_id,
            symbol=e.symbol,
            side=e.side,
            quantity=e.quantity,
        )
        for e in exits
    ]


__all__ = ["GateResult", "OrderValidator", "exit_orders", "gate_orders"]
