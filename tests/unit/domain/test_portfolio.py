"""tradeforge.domain positions and portfolio: average price, realised P&L, cash, and the
accounting identity under random fills (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge.domain import (
    ClientOrderId,
    FillId,
    OrderFilled,
    OrderSide,
    Portfolio,
    PortfolioError,
    Position,
    Symbol,
)

T0 = datetime(2024, 1, 2, tzinfo=UTC)
AAPL, MSFT = Symbol("AAPL"), Symbol("MSFT")


def fill(
    side: OrderSide, qty: str, price: str, fee: str = "0", symbol: str = "AAPL"
) -> OrderFilled:
    return OrderFilled(
        client_order_id=ClientOrderId("c1"), ts=T0, fill_id=FillId("f"), symbol=symbol,
        side=side, quantity=Decimal(qty), price=Decimal(price), fee=Decimal(fee),
    )  # fmt: skip


BUY, SELL = OrderSide.BUY, OrderSide.SELL


def test_average_price_realised_pnl_and_crossing_zero() -> None:
    p = Portfolio(cash=Decimal(10_000))
    p = p.apply_fill(fill(BUY, "10", "100", "1"))
    p = p.apply_fill(fill(BUY, "10", "110", "1"))
    pos = p.position(AAPL)
    assert (pos.quantity, pos.avg_price, pos.realized_pnl) == (20, Decimal(105), 0)
    p = p.apply_fill(fill(SELL, "5", "120", "0.5"))
    pos = p.position(AAPL)
    assert (pos.quantity, pos.avg_price, pos.realized_pnl) == (15, Decimal(105), Decimal(75))
    # sell 20 @ 100: closes 15 (realises 15 * -5 = -75) and opens a 5-share short at 100
    p = p.apply_fill(fill(SELL, "20", "100"))
    pos = p.position(AAPL)
    assert (pos.quantity, pos.avg_price, pos.realized_pnl) == (-5, Decimal(100), Decimal(0))
    assert pos.fees == Decimal("2.5")
    # cash: 10000 - 1000 - 1 - 1100 - 1 + 600 - 0.5 + 2000
    assert p.cash == Decimal("10497.5")
    # short covered below its entry: gain 5 * (100 - 90)
    p = p.apply_fill(fill(BUY, "5", "90"))
    pos = p.position(AAPL)
    assert (pos.quantity, pos.avg_price, pos.realized_pnl) == (0, 0, Decimal(50))
    assert p.quantities() == {}
    assert p.equity({}) == Decimal("10047.5")  # 10000 + 50 realised - 2.5 fees


def test_equity_and_marks() -> None:
    p = Portfolio(cash=Decimal(1000)).apply_fill(fill(BUY, "2", "100", symbol="MSFT"))
    assert p.equity({MSFT: Decimal(150)}) == Decimal(1100)
    assert p.unrealized_pnl({MSFT: Decimal(150)}) == Decimal(100)
    with pytest.raises(PortfolioError, match="no price for held symbol 'MSFT'"):
        p.equity({AAPL: Decimal(1)})


def test_position_rejects_zero_quantity() -> None:
    with pytest.raises(PortfolioError, match="expected a non-zero number"):
        Position(symbol=AAPL).apply_fill(Decimal(0), Decimal(1))


fills_strategy = st.lists(
    st.tuples(
        st.sampled_from(["AAPL", "MSFT"]),
        st.sampled_from([BUY, SELL]),
        st.integers(1, 50),
        st.integers(50, 150),
        st.integers(0, 3),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(steps=fills_strategy, mark_a=st.integers(1, 300), mark_m=st.integers(1, 300))
def test_accounting_identity(
    steps: list[tuple[str, OrderSide, int, int, int]], mark_a: int, mark_m: int
) -> None:
    start = Decimal(100_000)
    p = Portfolio(cash=start)
    net: dict[str, Decimal] = {"AAPL": Decimal(0), "MSFT": Decimal(0)}
    for symbol, side, qty, price, fee in steps:
        p = p.apply_fill(fill(side, str(qty), str(price), str(fee), symbol=symbol))
        net[symbol] += qty * side.sign
    marks = {AAPL: Decimal(mark_a), MSFT: Decimal(mark_m)}
    assert {s: p.position(Symbol(s)).quantity for s in net} == net
    lhs = p.equity(marks) - start
    rhs = p.realized_pnl + p.unrealized_pnl(marks) - p.fees
    assert abs(lhs - rhs) < Decimal("1e-18")
    for pos in p.positions:
        assert (pos.avg_price == 0) == (pos.quantity == 0)
