"""A stand-in order manager for the canary sleeve tests (test_canary_step.py,
test_canary_restore.py): orders fill at the given marks, and its store replays orders and fills."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

from tradeforge.domain import (
    FillId,
    Order,
    OrderFilled,
    OrderSubmitted,
    Portfolio,
    SubmitOrder,
    Symbol,
)

T0 = datetime(2010, 1, 4, tzinfo=UTC)


class Venue:
    """The account's order manager: orders fill at the next bar's mark."""

    def __init__(self) -> None:
        self.portfolio = Portfolio(cash=Decimal(1_000_000))
        self.orders: dict[str, Order] = {}
        self.open: list[Order] = []
        self.filled: list[OrderFilled] = []
        self.canceled: list[str] = []
        self.store = SimpleNamespace(load_orders=lambda: list(self.orders.values()),
                                     fills=lambda: list(self.filled))  # fmt: skip

    def submit_many(self, commands: list[SubmitOrder], ts: datetime = T0) -> None:
        for c in commands:
            order = Order.create(OrderSubmitted(client_order_id=c.client_order_id, ts=ts,
                                                command=c))  # fmt: skip
            self.orders[c.client_order_id] = order
            self.open.append(order)

    def cancel(self, cid: str) -> None:
        self.canceled.append(cid)
        self.open = [o for o in self.open if o.client_order_id != cid]

    def open_orders(self) -> list[Order]:
        return list(self.open)

    def fill_all(self, marks: dict[Symbol, Decimal], ts: datetime) -> None:
        for n, order in enumerate(self.open):
            fill = OrderFilled(client_order_id=order.client_order_id, ts=ts,
                               fill_id=FillId(f"{ts.isoformat()}-{n}"), symbol=order.symbol,
                               side=order.side, quantity=order.command.quantity,
                               price=marks[order.symbol])  # fmt: skip
            self.filled.append(fill)
            self.portfolio = self.portfolio.apply_fill(fill)
        self.open = []
