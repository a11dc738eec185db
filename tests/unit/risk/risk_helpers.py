"""Builders shared by the risk engine tests: orders, open orders, portfolios and views."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from tradeforge.domain import (
    ClientOrderId,
    Instrument,
    Order,
    OrderSide,
    OrderSubmitted,
    OrderType,
    Portfolio,
    Position,
    SubmitOrder,
    Symbol,
)
from tradeforge.risk import ExitIntent, PortfolioView

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
BUY, SELL = OrderSide.BUY, OrderSide.SELL
AAPL, MSFT, SPY = Symbol("AAPL"), Symbol("MSFT"), Symbol("SPY")
_IDS = itertools.count(1)


def D(value: object) -> Decimal:
    return Decimal(str(value))


def order(
    side: OrderSide,
    qty: object,
    symbol: str = "AAPL",
    *,
    limit: object | None = None,
    stop: object | None = None,
    cid: str | None = None,
) -> SubmitOrder:
    """A market order, or a limit / stop / stop-limit one when prices are given."""
    kind = {
        (False, False): OrderType.MARKET, (True, False): OrderType.LIMIT,
        (False, True): OrderType.STOP, (True, True): OrderType.STOP_LIMIT,
    }[(limit is not None, stop is not None)]  # fmt: skip
    return SubmitOrder(
        client_order_id=ClientOrderId(cid or f"o-{next(_IDS)}"), strategy_id="s1",
        symbol=symbol, side=side, quantity=D(qty), order_type=kind,
        limit_price=None if limit is None else D(limit),
        stop_price=None if stop is None else D(stop),
    )  # fmt: skip


def open_order(side: OrderSide, qty: object, symbol: str = "AAPL", limit: object = None) -> Order:
    """An open (status new) order for ``qty``."""
    command = order(side, qty, symbol, limit=limit)
    return Order.create(
        OrderSubmitted(client_order_id=command.client_order_id, ts=T0, command=command)
    )


def portfolio(
    cash: object, positions: Mapping[str, tuple[object, object]] | None = None
) -> Portfolio:
    """Cash and ``{symbol: (quantity, avg_price)}``."""
    pos = tuple(
        Position(symbol=s, quantity=D(q), avg_price=D(a))
        for s, (q, a) in sorted((positions or {}).items())
    )
    return Portfolio(cash=D(cash), positions=pos)


def view(
    cash: object = 100_000,
    positions: Mapping[str, tuple[object, object]] | None = None,
    prices: Mapping[str, object] | None = None,
    open_orders: Sequence[Order] = (),
    buying_power: object | None = None,
    shortable: Iterable[str] = (),
    not_tradable: Iterable[str] = (),
) -> PortfolioView:
    """A view; prices default to 100 for AAPL, MSFT and SPY."""
    marks = {"AAPL": 100, "MSFT": 100, "SPY": 100, **(prices or {})}
    names = set(shortable) | set(not_tradable)
    instruments = {
        Symbol(s): Instrument(symbol=s, shortable=s in set(shortable),
                              tradable=s not in set(not_tradable))
        for s in names
    }  # fmt: skip
    return PortfolioView(
        portfolio=portfolio(cash, positions),
        last_prices={Symbol(s): D(p) for s, p in marks.items()},
        open_orders=tuple(open_orders),
        buying_power=None if buying_power is None else D(buying_power),
        instruments=instruments,
    )


class FakeOMS:
    """Records what the kill switch asks of it."""

    def __init__(self, open_orders: int = 3) -> None:
        self.open_orders = open_orders
        self.cancels: list[str] = []
        self.flattened: list[tuple[list[ExitIntent], str]] = []

    def cancel_all_orders(self, reason: str) -> int:
        self.cancels.append(reason)
        n, self.open_orders = self.open_orders, 0
        return n

    def flatten(self, exits: Sequence[ExitIntent], reason: str) -> None:
        self.flattened.append((list(exits), reason))
