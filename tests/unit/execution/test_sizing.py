"""tradeforge.execution.sizing: target weights -> order intents, with quantities asserted on
concrete cases (whole/fractional shares, lots, minimum notional, sells first, buying power,
limit prices and the marketable-limit collar)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradeforge.domain import Instrument, OrderSide, OrderType, StrategyId, Symbol, TimeInForce
from tradeforge.execution import (
    OrderIntent,
    SizingConfig,
    SizingError,
    client_order_id,
    collar_price,
    plan_orders,
    round_quantity,
    to_commands,
)

AAPL, MSFT = Symbol("AAPL"), Symbol("MSFT")
PRICES = {AAPL: Decimal("187.25"), MSFT: Decimal("400")}
WHOLE = {AAPL: Instrument(symbol="AAPL"), MSFT: Instrument(symbol="MSFT")}
EQUITY = Decimal(100_000)
BIG = Decimal(10**9)  # buying power that never binds


def quantities(intents: tuple[OrderIntent, ...]) -> list[tuple[str, str, Decimal]]:
    return [(i.symbol, i.side.value, i.quantity) for i in intents]


def test_whole_shares_round_toward_zero() -> None:
    plan = plan_orders({AAPL: 0.5}, {}, PRICES, EQUITY, WHOLE, BIG)
    assert quantities(plan.intents) == [("AAPL", "buy", Decimal(267))]  # 267.02 -> 267
    intent = plan.intents[0]
    assert intent.order_type is OrderType.MARKET
    assert intent.limit_price is None
    assert intent.notional == Decimal("49995.75")


def test_fractional_shares_to_the_increment() -> None:
    inst = {AAPL: Instrument(symbol="AAPL", fractionable=True)}
    plan = plan_orders({AAPL: Decimal("0.5")}, {}, PRICES, EQUITY, inst, BIG)
    assert quantities(plan.intents) == [("AAPL", "buy", Decimal("267.022696929"))]


def test_lot_size() -> None:
    inst = {AAPL: Instrument(symbol="AAPL", lot_size=Decimal(100))}
    plan = plan_orders({AAPL: 0.5}, {AAPL: Decimal(0)}, PRICES, EQUITY, inst, BIG)
    assert quantities(plan.intents) == [("AAPL", "buy", Decimal(200))]


def test_lot_rounding_tolerates_float_noise_like_the_backtester() -> None:
    price = {AAPL: Decimal(100)}
    # 0.999999999999 * 10000 / 100 = 99.9999999999 lots: counts as 100, never 99
    plan = plan_orders({AAPL: 0.999999999999}, {}, price, Decimal(10_000), WHOLE, BIG)
    assert quantities(plan.intents) == [("AAPL", "buy", Decimal(100))]
    assert round_quantity(Decimal("-99.9999999999"), WHOLE[AAPL]) == Decimal(-100)
    assert round_quantity(Decimal("-99.5"), WHOLE[AAPL]) == Decimal(-99)


def test_sells_before_buys_and_trade_is_the_difference() -> None:
    positions = {MSFT: Decimal(100), AAPL: Decimal(67)}
    plan = plan_orders({AAPL: 0.5, MSFT: 0.0}, positions, PRICES, EQUITY, WHOLE, BIG)
    assert quantities(plan.intents) == [("MSFT", "sell", Decimal(100)),
                                        ("AAPL", "buy", Decimal(200))]  # fmt: skip


def test_sells_only_with_negative_buying_power() -> None:
    # fills at the next open can cost more than the sizing close: buying power below zero
    positions = {MSFT: Decimal(100)}
    plan = plan_orders({MSFT: 0.0}, positions, PRICES, EQUITY, WHOLE, Decimal(-250))
    assert quantities(plan.intents) == [("MSFT", "sell", Decimal(100))]


def test_minimum_notional_skips_small_orders() -> None:
    inst = {AAPL: Instrument(symbol="AAPL", fractionable=True, min_notional=Decimal(1))}
    plan = plan_orders({AAPL: 0.000005}, {}, PRICES, EQUITY, inst, BIG)  # a $0.50 order
    assert plan.intents == ()
    assert plan.skipped[0].symbol == "AAPL"
    assert "below minimum 1" in plan.skipped[0].reason
    cfg = SizingConfig(min_trade_value=50_000.0)
    plan = plan_orders({AAPL: 0.5}, {}, PRICES, EQUITY, WHOLE, BIG, cfg)  # $49,995.75 < $50,000
    assert plan.intents == ()
    assert "below minimum" in plan.skipped[0].reason


def test_buying_power_scales_buys() -> None:
    cfg = SizingConfig(use_sell_proceeds=False)
    plan = plan_orders({AAPL: 0.5}, {}, PRICES, EQUITY, WHOLE, Decimal(10_000), cfg)
    # 10000 / 49995.75 * 267 = 53.40 -> 53 shares
    assert quantities(plan.intents) == [("AAPL", "buy", Decimal(53))]
    assert plan.buy_scale == Decimal(10_000) / Decimal("49995.75")


def test_sell_proceeds_count_toward_buying_power() -> None:
    positions = {MSFT: Decimal(100)}  # selling frees 40,000
    plan = plan_orders({AAPL: 0.5, MSFT: 0.0}, positions, PRICES, EQUITY, WHOLE,
                       Decimal(10_000))  # fmt: skip
    assert quantities(plan.intents) == [("MSFT", "sell", Decimal(100)),
                                        ("AAPL", "buy", Decimal(267))]  # fmt: skip
    assert plan.buy_scale == 1
    cfg = SizingConfig(use_sell_proceeds=False)
    plan = plan_orders({AAPL: 0.5, MSFT: 0.0}, positions, PRICES, EQUITY, WHOLE,
                       Decimal(10_000), cfg)  # fmt: skip
    assert quantities(plan.intents) == [("MSFT", "sell", Decimal(100)),
                                        ("AAPL", "buy", Decimal(53))]  # fmt: skip


def test_market_buy_buffer_in_the_buying_power_check() -> None:
    # 267 shares cost 49995.75; with a 300 bps buffer they count as 51495.62: over 50,000
    cfg = SizingConfig(buy_buffer_bps=300.0)
    plan = plan_orders({AAPL: 0.5}, {}, PRICES, EQUITY, WHOLE, Decimal(50_000), cfg)
    assert quantities(plan.intents) == [("AAPL", "buy", Decimal(259))]  # 267 * 0.9709 = 259.2


def test_marketable_limit_collar() -> None:
    assert collar_price(Decimal("187.25"), OrderSide.BUY, 50.0, Decimal("0.01")) == Decimal(
        "188.18"
    )
    assert collar_price(Decimal("187.25"), OrderSide.SELL, 50.0, Decimal("0.01")) == Decimal(
        "186.32"
    )
    cfg = SizingConfig(order_type="marketable_limit", collar_bps=50.0)
    positions = {MSFT: Decimal(10)}
    plan = plan_orders({AAPL: 0.5, MSFT: 0.0}, positions, PRICES, EQUITY, WHOLE, BIG, cfg)
    sell, buy = plan.intents
    assert (sell.order_type, sell.limit_price) == (OrderType.LIMIT, Decimal("398.00"))
    assert (buy.order_type, buy.limit_price) == (OrderType.LIMIT, Decimal("188.18"))


def test_passive_limit_offset() -> None:
    cfg = SizingConfig(order_type="limit", limit_offset_bps=10.0)
    plan = plan_orders({AAPL: 0.5, MSFT: 0.0}, {MSFT: Decimal(1)}, PRICES, EQUITY, WHOLE, BIG, cfg)
    assert [i.limit_price for i in plan.intents] == [Decimal("400.40"), Decimal("187.06")]


def test_shorts_need_permission_and_a_shortable_instrument() -> None:
    positions = {AAPL: Decimal(10)}
    plan = plan_orders({AAPL: -0.1}, positions, PRICES, EQUITY, WHOLE, BIG)
    assert quantities(plan.intents) == [("AAPL", "sell", Decimal(10))]
    assert "shorting not allowed" in plan.skipped[0].reason
    inst = {AAPL: Instrument(symbol="AAPL", shortable=True)}
    cfg = SizingConfig(allow_short=True)
    plan = plan_orders({AAPL: -0.1}, positions, PRICES, EQUITY, inst, BIG, cfg)
    # target -10000 / 187.25 = -53.4 -> -53; from +10 that is a sale of 63
    assert quantities(plan.intents) == [("AAPL", "sell", Decimal(63))]


def test_holds_skips_and_errors() -> None:
    inst = {**WHOLE, Symbol("IBM"): Instrument(symbol="IBM", tradable=False)}
    plan = plan_orders({AAPL: float("nan"), Symbol("IBM"): 0.2, MSFT: 0.1},
                       {AAPL: Decimal(5)}, {AAPL: PRICES[AAPL]}, EQUITY, inst, BIG)  # fmt: skip
    assert plan.intents == ()  # AAPL holds, IBM not tradable, MSFT has no price
    assert {s.symbol: s.reason for s in plan.skipped} == {
        "IBM": "not tradable", "MSFT": "no positive last price (None)"}  # fmt: skip
    with pytest.raises(SizingError, match=r"target_weights\['AAPL'\] = inf"):
        plan_orders({AAPL: float("inf")}, {}, PRICES, EQUITY, WHOLE, BIG)
    with pytest.raises(SizingError, match="instruments has no entry for 'TSLA'"):
        plan_orders({Symbol("TSLA"): 0.1}, {}, PRICES, EQUITY, WHOLE, BIG)


def test_negative_equity_sizes_to_zero_like_the_backtester() -> None:
    plan = plan_orders({AAPL: 0.5}, {AAPL: Decimal(3)}, PRICES, Decimal(-5), WHOLE, BIG)
    assert quantities(plan.intents) == [("AAPL", "sell", Decimal(3))]


def test_to_commands_uses_deterministic_ids() -> None:
    bar = datetime(2024, 1, 2, 21, tzinfo=UTC)
    cfg = SizingConfig(order_type="marketable_limit", time_in_force=TimeInForce.GTC)
    plan = plan_orders({AAPL: 0.5, MSFT: 0.0}, {MSFT: Decimal(2)}, PRICES, EQUITY, WHOLE, BIG, cfg)
    commands = to_commands(plan, StrategyId("momo"), bar)
    assert [c.client_order_id for c in commands] == [
        client_order_id("momo", bar, "MSFT"), client_order_id("momo", bar, "AAPL")]  # fmt: skip
    assert [(c.side, c.quantity, c.limit_price, c.time_in_force) for c in commands] == [
        (OrderSide.SELL, Decimal(2), Decimal("398.00"), TimeInForce.GTC),
        (OrderSide.BUY, Decimal(267), Decimal("188.18"), TimeInForce.GTC),
    ]
    assert to_commands(plan, StrategyId("momo"), bar) == commands  # same inputs, same ids
