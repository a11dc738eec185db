"""Implementation shortfall against the arrival price: hand-computed examples."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from exec_helpers import T0, make_command, make_fill

from tradeforge.domain import ClientOrderId, Order, OrderSide, OrderSubmitted
from tradeforge.execution.errors import ExecutionError
from tradeforge.execution.shortfall import (
    COLUMNS,
    Arrival,
    shortfall_summary,
    shortfall_table,
)


def _order(cid: str, symbol: str = "AAPL", side: OrderSide = OrderSide.BUY, qty: str = "100") -> Order:  # fmt: skip
    command = make_command(cid, symbol, side, qty)
    return Order.create(OrderSubmitted(client_order_id=ClientOrderId(cid), ts=T0, command=command))


def _arrival(pid: str, cids: tuple[str, ...], symbol: str = "AAPL",
             side: OrderSide = OrderSide.BUY, qty: str = "100", price: str = "10.00",
             algo: str = "twap") -> Arrival:  # fmt: skip
    return Arrival(pid, symbol, side, Decimal(qty), Decimal(price), T0, cids, algo)


def test_buy_100_at_10_filled_60_at_10_02_and_40_at_10_05() -> None:
    fills = [make_fill("c0", "f1", "60", "10.02", fee="0.30"),
             make_fill("c1", "f2", "40", "10.05", fee="0.20")]  # fmt: skip
    table = shortfall_table([_order("c0", qty="60"), _order("c1", qty="40")], fills,
                            [_arrival("p", ("c0", "c1"))])  # fmt: skip
    row = table.iloc[0]
    # (60 * 10.02 + 40 * 10.05) / 100 = (601.2 + 402.0) / 100 = 10.032
    assert row["avg_fill_price"] == pytest.approx(10.032, abs=1e-12)
    # (10.032 - 10.00) / 10.00 = 0.0032 = 32 bps; in currency 0.032 * 100 = $3.20
    assert row["shortfall_bps"] == pytest.approx(32.0, abs=1e-9)
    assert row["shortfall"] == pytest.approx(3.20, abs=1e-12)
    assert row["fees"] == pytest.approx(0.50, abs=1e-12)
    assert row["cost"] == pytest.approx(3.70, abs=1e-12)
    assert row["cost_bps"] == pytest.approx(37.0, abs=1e-9)  # 3.70 / (10.00 * 100)
    assert (row["n_children"], row["n_orders"], row["fill_ratio"]) == (2, 2, 1.0)
    assert list(table.columns) == list(COLUMNS)


def test_sign_convention_positive_is_a_cost_for_sells_too() -> None:
    fills = [make_fill("s", "f1", "50", "19.90", side=OrderSide.SELL, symbol="IBM"),
             make_fill("g", "f2", "10", "20.10", side=OrderSide.SELL, symbol="IBM")]  # fmt: skip
    arrivals = [_arrival("sold-low", ("s",), "IBM", OrderSide.SELL, "50", "20.00", "none"),
                _arrival("sold-high", ("g",), "IBM", OrderSide.SELL, "10", "20.00", "none")]  # fmt: skip
    table = shortfall_table([], fills, arrivals).set_index("parent_id")
    assert table.loc["sold-low", "shortfall"] == pytest.approx(5.0)  # sold 0.10 below, 50 shares
    assert table.loc["sold-low", "shortfall_bps"] == pytest.approx(50.0)
    assert table.loc["sold-high", "shortfall"] == pytest.approx(-1.0)  # a gain is negative
    assert table.loc["sold-high", "shortfall_bps"] == pytest.approx(-50.0)
    assert table.loc["sold-low", "n_orders"] == 0  # no order objects given


def test_partial_and_unfilled_parents() -> None:
    fills = [make_fill("a0", "f1", "30", "10.10")]
    table = shortfall_table([], fills, [_arrival("half", ("a0", "a1")),
                                        _arrival("none", ("b0",))])  # fmt: skip
    half, empty = table.iloc[0], table.iloc[1]
    assert half["fill_ratio"] == pytest.approx(0.3)
    assert half["shortfall"] == pytest.approx(3.0)  # only what filled: 30 * 0.10
    assert half["shortfall_bps"] == pytest.approx(100.0)
    assert empty["filled_quantity"] == 0.0
    assert empty["shortfall"] == 0.0
    assert pd.isna(empty["shortfall_bps"])
    assert pd.isna(empty["avg_fill_price"])


def test_summary_totals_mean_weighted_and_by_symbol() -> None:
    fills = [make_fill("c0", "f1", "60", "10.02", fee="0.30"),
             make_fill("c1", "f2", "40", "10.05", fee="0.20"),
             make_fill("i", "f3", "50", "19.90", fee="1.00", side=OrderSide.SELL, symbol="IBM"),
             make_fill("x", "f3", "50", "19.90", fee="1.00", side=OrderSide.SELL, symbol="IBM")]  # fmt: skip
    arrivals = [_arrival("p", ("c0", "c1")),
                _arrival("q", ("i",), "IBM", OrderSide.SELL, "50", "20.00")]  # fmt: skip
    table = shortfall_table([], fills, arrivals)
    summary = shortfall_summary(table)
    assert summary["n_parents"] == summary["n_filled"] == 2
    assert summary["shortfall"] == pytest.approx(8.2)  # 3.20 + 5.00
    assert summary["fees"] == pytest.approx(1.5)
    assert summary["cost"] == pytest.approx(9.7)
    assert summary["mean_bps"] == pytest.approx((32.0 + 50.0) / 2)
    assert summary["filled_notional"] == pytest.approx(2000.0)  # 10 * 100 + 20 * 50
    assert summary["weighted_bps"] == pytest.approx(8.2 / 2000.0 * 1e4)
    assert summary["cost_bps"] == pytest.approx(9.7 / 2000.0 * 1e4)
    assert set(summary["by_symbol"]) == {"AAPL", "IBM"}
    assert summary["by_symbol"]["IBM"]["shortfall"] == pytest.approx(5.0)
    assert summary["by_symbol"]["AAPL"]["weighted_bps"] == pytest.approx(32.0)


def test_empty_and_inconsistent_inputs() -> None:
    empty = shortfall_summary(shortfall_table([], [], []))
    assert empty["n_parents"] == 0
    assert empty["mean_bps"] is None
    assert empty["by_symbol"] == {}
    with pytest.raises(ExecutionError, match="belongs to parents"):
        shortfall_table([], [], [_arrival("a", ("c",)), _arrival("b", ("c",))])
    with pytest.raises(ExecutionError, match="fill f1 is sell AAPL; parent p is buy AAPL"):
        shortfall_table([], [make_fill("c", "f1", "1", "10", side=OrderSide.SELL)],
                        [_arrival("p", ("c",))])  # fmt: skip
    with pytest.raises(ExecutionError, match="arrival_price = 0"):
        shortfall_table([], [], [_arrival("p", ("c",), price="0")])
    with pytest.raises(ExecutionError, match="lacks columns"):
        shortfall_summary(pd.DataFrame({"symbol": []}))
