"""tradeforge.risk.checks: every denial reason with the numbers at its boundary, worst-case
exposure with open orders, risk-reducing orders, and the trading states."""

from __future__ import annotations

import pytest
from risk_helpers import AAPL, BUY, MSFT, SELL, D, open_order, order, view

from tradeforge.risk import (
    DenyReason,
    PortfolioView,
    RiskConfig,
    TradingState,
    check_order,
    is_risk_reducing,
)
from tradeforge.risk.checks import book_of

ACTIVE = TradingState.ACTIVE


def reason(cfg: RiskConfig, o: object, v: PortfolioView, state: TradingState = ACTIVE) -> object:
    denied = check_order(o, v, cfg, state)  # type: ignore[arg-type]
    return None if denied is None else denied.reason


def test_no_limits_approve_a_plain_buy() -> None:
    assert check_order(order(BUY, 10), view(), RiskConfig(), ACTIVE) is None


def test_halted_denies_everything_reducing_denies_what_does_not_reduce() -> None:
    v = view(positions={"AAPL": (10, 100)})
    cfg = RiskConfig()
    assert reason(cfg, order(SELL, 5), v, TradingState.HALTED) is DenyReason.TRADING_HALTED
    assert reason(cfg, order(SELL, 5), v, TradingState.REDUCING) is None
    assert reason(cfg, order(SELL, 10), v, TradingState.REDUCING) is None
    assert reason(cfg, order(SELL, 11), v, TradingState.REDUCING) is DenyReason.TRADING_REDUCING
    assert reason(cfg, order(BUY, 1), v, TradingState.REDUCING) is DenyReason.TRADING_REDUCING
    assert reason(cfg, order(SELL, 1, "MSFT"), v, TradingState.REDUCING) is (
        DenyReason.TRADING_REDUCING
    )


def test_reducing_counts_open_orders_on_the_same_side() -> None:
    v = view(positions={"AAPL": (10, 100)}, open_orders=[open_order(SELL, 7)])
    book = book_of(v)
    assert is_risk_reducing(order(SELL, 3), book)
    assert not is_risk_reducing(order(SELL, 4), book)  # 7 + 4 > 10 would flip to short
    short = book_of(view(positions={"AAPL": (-10, 100)}, open_orders=[open_order(BUY, 2)]))
    assert is_risk_reducing(order(BUY, 8), short)
    assert not is_risk_reducing(order(BUY, 9), short)


def test_restricted_and_not_tradable_symbols() -> None:
    cfg = RiskConfig(restricted_symbols=["MSFT"])
    assert reason(cfg, order(BUY, 1, "MSFT"), view()) is DenyReason.RESTRICTED_SYMBOL
    assert reason(cfg, order(BUY, 1), view()) is None
    assert reason(RiskConfig(), order(BUY, 1), view(not_tradable=["AAPL"])) is (
        DenyReason.NOT_TRADABLE
    )


def test_no_reference_price_for_the_order_or_a_held_symbol() -> None:
    v = view(prices={"AAPL": 0})
    denied = check_order(order(BUY, 1), v, RiskConfig(), ACTIVE)
    assert denied is not None
    assert denied.reason is DenyReason.NO_REFERENCE_PRICE
    assert "no positive last price for AAPL" in denied.message
    held = view(positions={"IBM": (1, 10)})  # IBM held, no price
    denied = check_order(order(BUY, 1), held, RiskConfig(), ACTIVE)
    assert denied is not None
    assert "for IBM" in denied.message


def test_price_collar_on_limit_and_stop_prices() -> None:
    cfg = RiskConfig(price_collar_bps=100)  # 1 % around the last trade 100
    assert reason(cfg, order(BUY, 1, limit="101"), view()) is None
    assert reason(cfg, order(BUY, 1, limit="101.01"), view()) is DenyReason.PRICE_OUTSIDE_COLLAR
    assert reason(cfg, order(SELL, 1, limit="98.99"), view(positions={"AAPL": (5, 100)})) is (
        DenyReason.PRICE_OUTSIDE_COLLAR
    )
    assert reason(cfg, order(BUY, 1, stop="120"), view()) is DenyReason.PRICE_OUTSIDE_COLLAR
    assert reason(cfg, order(BUY, 1), view()) is None  # a market order has no price to collar


def test_order_quantity_and_notional() -> None:
    cfg = RiskConfig(max_order_quantity=100, max_order_notional=5_000)
    assert reason(cfg, order(BUY, 50), view()) is None
    assert reason(cfg, order(BUY, 51), view()) is DenyReason.ORDER_NOTIONAL_EXCEEDS_MAX
    assert reason(cfg, order(BUY, 101), view()) is DenyReason.ORDER_QUANTITY_EXCEEDS_MAX
    # a limit above the last trade prices the order at its limit
    assert reason(cfg, order(BUY, 50, limit="100.02"), view()) is (
        DenyReason.ORDER_NOTIONAL_EXCEEDS_MAX
    )


def test_max_open_orders() -> None:
    cfg = RiskConfig(max_open_orders=2)
    one = [open_order(BUY, 1, "MSFT")]
    assert reason(cfg, order(BUY, 1), view(open_orders=one)) is None
    assert reason(cfg, order(BUY, 1), view(open_orders=one * 2)) is DenyReason.MAX_OPEN_ORDERS


def test_short_sale_needs_a_shortable_asset_and_no_long_only() -> None:
    long10 = {"AAPL": (10, 100)}
    assert reason(RiskConfig(), order(SELL, 10), view(positions=long10)) is None
    assert reason(RiskConfig(), order(SELL, 11), view(positions=long10)) is (
        DenyReason.NOT_SHORTABLE
    )
    assert reason(RiskConfig(), order(SELL, 11), view(positions=long10, shortable=["AAPL"])) is None
    cfg = RiskConfig(long_only=True)
    assert reason(cfg, order(SELL, 11), view(positions=long10, shortable=["AAPL"])) is (
        DenyReason.SHORT_NOT_ALLOWED
    )
    # an open sell already covers the long: any further sell opens a short
    pending = view(positions=long10, open_orders=[open_order(SELL, 10)])
    assert reason(cfg, order(SELL, 1), pending) is DenyReason.SHORT_NOT_ALLOWED


def test_position_notional_and_share_of_equity() -> None:
    cfg = RiskConfig(max_position_notional=20_000)
    assert reason(cfg, order(BUY, 200), view()) is None
    assert reason(cfg, order(BUY, 201), view()) is DenyReason.POSITION_NOTIONAL_EXCEEDS_MAX
    share = RiskConfig(max_position=0.1)  # 10 % of 100,000 equity = 100 shares at 100
    assert reason(share, order(BUY, 100), view()) is None
    denied = check_order(order(BUY, 101), view(), share, ACTIVE)
    assert denied is not None
    assert denied.reason is DenyReason.POSITION_SHARE_EXCEEDS_MAX
    assert "AAPL exposure 10100 > max_position 0.1 x equity 100000" in denied.message


def test_open_buys_count_toward_the_position_at_their_worst() -> None:
    share = RiskConfig(max_position=0.1)
    v = view(open_orders=[open_order(BUY, 60)])
    assert reason(share, order(BUY, 40), v) is None
    assert reason(share, order(BUY, 41), v) is DenyReason.POSITION_SHARE_EXCEEDS_MAX


def test_an_order_that_lowers_an_exposure_over_the_limit_passes() -> None:
    share = RiskConfig(max_position=0.1)
    over = view(cash=50_000, positions={"AAPL": (500, 100)})  # 50 % of 100,000 equity
    assert reason(share, order(SELL, 100), over) is None
    assert reason(share, order(BUY, 1), over) is DenyReason.POSITION_SHARE_EXCEEDS_MAX


def test_gross_and_net_exposure() -> None:
    v = view(cash=100_000, positions={"AAPL": (300, 100)}, shortable=["MSFT"])
    gross = RiskConfig(max_gross=0.5)  # equity 130,000 -> 65,000 gross
    assert reason(gross, order(BUY, 350, "MSFT"), v) is None
    assert reason(gross, order(BUY, 351, "MSFT"), v) is DenyReason.GROSS_EXPOSURE_EXCEEDS_MAX
    net = RiskConfig(max_net=0.25)  # 32,500 net
    assert reason(net, order(BUY, 25, "MSFT"), v) is None
    assert reason(net, order(BUY, 26, "MSFT"), v) is DenyReason.NET_EXPOSURE_EXCEEDS_MAX
    assert reason(net, order(SELL, 600, "MSFT"), v) is None  # net 30,000 - 60,000 = -30,000
    assert reason(net, order(SELL, 626, "MSFT"), v) is DenyReason.NET_EXPOSURE_EXCEEDS_MAX


def test_non_positive_equity_blocks_new_exposure_only() -> None:
    v = view(cash=-20_000, positions={"AAPL": (100, 150)})  # equity -10,000 at 100
    cfg = RiskConfig(max_gross=2.0)
    assert reason(cfg, order(BUY, 1, "MSFT"), v) is DenyReason.NON_POSITIVE_EQUITY
    assert reason(cfg, order(SELL, 50), v) is None


def test_buying_power_from_the_broker_or_cash_less_open_buys() -> None:
    cfg = RiskConfig(buying_power_buffer_bps=100)  # cost x 1.01
    assert reason(cfg, order(BUY, 99), view(buying_power=10_000)) is None
    assert reason(cfg, order(BUY, 100), view(buying_power=10_000)) is (
        DenyReason.INSUFFICIENT_BUYING_POWER
    )
    pending = view(cash=10_000, open_orders=[open_order(BUY, 50, "MSFT", limit=90)])
    # 10,000 - 50 x 90 = 5,500; 54 x 100 x 1.01 = 5,454 fits, 55 -> 5,555 does not
    assert reason(cfg, order(BUY, 54), pending) is None
    assert reason(cfg, order(BUY, 55), pending) is DenyReason.INSUFFICIENT_BUYING_POWER
    # a limit order costs its limit
    assert reason(RiskConfig(), order(BUY, 100, limit=55), view(buying_power=5_500)) is None


def test_covering_part_of_an_order_needs_no_buying_power() -> None:
    short = view(buying_power=0, positions={"AAPL": (-10, 100)}, shortable=["AAPL"])
    assert reason(RiskConfig(), order(BUY, 10), short) is None
    assert reason(RiskConfig(), order(BUY, 11), short) is DenyReason.INSUFFICIENT_BUYING_POWER


def test_the_deny_message_names_the_order() -> None:
    denied = check_order(order(BUY, 3, "MSFT"), view(), RiskConfig(max_order_quantity=2), ACTIVE)
    assert denied is not None
    assert denied.message == "buy 3 MSFT: quantity 3 > max_order_quantity 2"
    assert denied.client_order_id.startswith("o-")


@pytest.mark.parametrize("sym", [AAPL, MSFT])
def test_exposure_uses_each_symbols_own_price(sym: str) -> None:
    v = view(prices={"AAPL": 50, "MSFT": 200})
    cfg = RiskConfig(max_position_notional=D(10_000))
    fits = 200 if sym == AAPL else 50
    assert reason(cfg, order(BUY, fits, sym), v) is None
    assert reason(cfg, order(BUY, fits + 1, sym), v) is DenyReason.POSITION_NOTIONAL_EXCEEDS_MAX
