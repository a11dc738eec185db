"""Helpers for the execution tests: commands, fills and times."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tradeforge.domain import (
    ClientOrderId,
    FillId,
    OrderFilled,
    OrderSide,
    OrderType,
    SubmitOrder,
)

T0 = datetime(2024, 1, 2, 21, 0, tzinfo=UTC)


def make_command(
    cid: str = "tf1-c1",
    symbol: str = "AAPL",
    side: OrderSide = OrderSide.BUY,
    quantity: str = "10",
    **kw: object,
) -> SubmitOrder:
    fields: dict[str, object] = {
        "client_order_id": cid, "strategy_id": "momo", "symbol": symbol, "side": side,
        "quantity": Decimal(quantity), "order_type": OrderType.MARKET,
    }  # fmt: skip
    fields.update(kw)
    return SubmitOrder(**fields)  # type: ignore[arg-type]


def make_fill(cid: str, fill_id: str, quantity: str, price: str, fee: str = "0",
              symbol: str = "AAPL", side: OrderSide = OrderSide.BUY) -> OrderFilled:  # fmt: skip
    return OrderFilled(
        client_order_id=ClientOrderId(cid), ts=T0, fill_id=FillId(fill_id), symbol=symbol,
        side=side, quantity=Decimal(quantity), price=Decimal(price), fee=Decimal(fee),
    )  # fmt: skip
