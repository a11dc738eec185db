"""Property tests (hypothesis) of the pre-trade checks against an independent oracle.

The oracle does not share the checks' formulas: it enumerates every subset of the open orders
(with and without the new order) that could fill, computes the positions each leaves, and
measures them. An approved order must keep every limit, or at least not raise the measure that
was already over it (an order that lowers an exposure prices pushed over a limit may pass).

* single orders over random portfolios, prices, open orders, limits and states: nothing
  approved breaks a limit; HALTED approves nothing; REDUCING approves only orders that shrink
  a position without crossing zero whatever else fills;
* sequences of price moves and orders through :class:`RiskEngine`, each approved order filling
  at once at the last price (a limit order at its limit when that is better): no fill ever
  leaves a breached limit it made worse, and buys never spend more cash than there is.

The default run is small; the ``slow`` variants run 10,000 cases each.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from risk_helpers import BUY, SELL, T0, open_order, order, view

from tradeforge.core.clock import TestClock
from tradeforge.domain import OrderFilled, OrderSide, SubmitOrder, Symbol
from tradeforge.risk import PortfolioView, RiskConfig, RiskEngine, TradingState, check_order

SYMBOLS = ("AAPL", "MSFT", "SPY")
_BPS = Decimal("0.0001")
FAST, SLOW = 300, 10_000

prices_st = st.integers(100, 50_000).map(lambda c: Decimal(c) / 100)
qty_st = st.integers(1, 400)
maybe = st.none().__or__


@st.composite
def configs(draw: st.DrawFn) -> RiskConfig:
    return RiskConfig(
        max_position=draw(maybe(st.sampled_from([0.05, 0.1, 0.25, 0.5, 1.0]))),
        max_gross=draw(maybe(st.sampled_from([0.3, 0.8, 1.0, 1.5, 3.0]))),
        max_net=draw(maybe(st.sampled_from([0.0, 0.2, 0.5, 1.0]))),
        long_only=draw(st.booleans()),
        max_order_quantity=draw(maybe(st.integers(1, 300))),
        max_order_notional=draw(maybe(st.integers(500, 50_000))),
        max_position_notional=draw(maybe(st.integers(1_000, 80_000))),
        price_collar_bps=draw(maybe(st.sampled_from([10.0, 100.0, 500.0]))),
        max_open_orders=draw(maybe(st.integers(1, 4))),
        restricted_symbols=draw(st.sets(st.sampled_from(SYMBOLS), max_size=1)),
        buying_power_buffer_bps=draw(st.sampled_from([0.0, 50.0])),
    )


@st.composite
def views(draw: st.DrawFn) -> PortfolioView:
    prices = {s: draw(prices_st) for s in SYMBOLS}
    positions = {
        s: (draw(st.integers(-200, 200)), draw(prices_st))
        for s in draw(st.sets(st.sampled_from(SYMBOLS)))
    }
    opens = [
        open_order(draw(st.sampled_from([BUY, SELL])), draw(st.integers(1, 100)),
                   draw(st.sampled_from(SYMBOLS)))
        for _ in range(draw(st.integers(0, 3)))
    ]  # fmt: skip
    return view(
        cash=draw(st.integers(-20_000, 150_000)), positions=positions, prices=prices,
        open_orders=opens, buying_power=draw(maybe(st.integers(0, 100_000))),
        shortable=draw(st.sets(st.sampled_from(SYMBOLS))),
    )  # fmt: skip


@st.composite
def orders(draw: st.DrawFn, prices: Mapping[Symbol, Decimal]) -> SubmitOrder:
    symbol = draw(st.sampled_from(SYMBOLS))
    side = draw(st.sampled_from([BUY, SELL]))
    limit = None
    if draw(st.booleans()):
        move = Decimal(draw(st.integers(-300, 300))) * _BPS  # up to 3 % away
        limit = (prices[Symbol(symbol)] * (1 + move)).quantize(Decimal("0.01"))
    return order(side, draw(qty_st), symbol, limit=limit)


# -- the oracle ---------------------------------------------------------------------------------
Legs = Sequence[tuple[Symbol, Decimal]]  # signed quantities that may fill


def outcomes(view_: PortfolioView, legs: Legs) -> list[dict[Symbol, Decimal]]:
    """Positions after each subset of ``legs`` fills."""
    base = {p.symbol: p.quantity for p in view_.portfolio.positions}
    out = []
    for mask in itertools.product([False, True], repeat=len(legs)):
        pos = dict(base)
        for take, (sym, q) in zip(mask, legs, strict=True):
            if take:
                pos[sym] = pos.get(sym, Decimal(0)) + q
        out.append(pos)
    return out


def legs_of(view_: PortfolioView) -> list[tuple[Symbol, Decimal]]:
    return [(o.symbol, o.leaves_quantity * o.side.sign) for o in view_.open_orders]


def measures(view_: PortfolioView, legs: Legs, symbol: Symbol) -> dict[str, Decimal]:
    """The worst position value of ``symbol``, gross and |net| over all subsets, and the
    lowest and highest quantity of ``symbol``."""
    p = view_.last_prices
    worst: dict[str, Decimal] = {}
    for pos in outcomes(view_, legs):
        values = {
            "position": abs(pos.get(symbol, Decimal(0))) * p[symbol],
            "gross": sum((abs(q) * p[s] for s, q in pos.items()), Decimal(0)),
            "net": abs(sum((q * p[s] for s, q in pos.items()), Decimal(0))),
            "min_qty": -pos.get(symbol, Decimal(0)),
            "max_qty": pos.get(symbol, Decimal(0)),
        }
        for k, v in values.items():
            worst[k] = max(worst.get(k, v), v)
    worst["min_qty"] = -worst["min_qty"]
    return worst


def equity(view_: PortfolioView) -> Decimal:
    return view_.portfolio.cash + sum(
        (p.quantity * view_.last_prices[p.symbol] for p in view_.portfolio.positions), Decimal(0)
    )


def oracle_breaches(o: SubmitOrder, v: PortfolioView, cfg: RiskConfig) -> list[str]:
    """The limits an approved ``o`` would break (empty when it keeps them all)."""
    bad = []
    sym, last = o.symbol, v.last_prices[o.symbol]
    before = measures(v, legs_of(v), sym)
    after = measures(v, [*legs_of(v), (sym, o.quantity * o.side.sign)], sym)
    e = equity(v)
    if sym in cfg.restricted_symbols:
        bad.append("restricted")
    collar = None if cfg.price_collar_bps is None else Decimal(repr(cfg.price_collar_bps)) * _BPS
    if (
        collar is not None
        and o.limit_price is not None
        and abs(o.limit_price - last) > collar * last
    ):
        bad.append("collar")
    if cfg.max_order_quantity is not None and o.quantity > cfg.max_order_quantity:
        bad.append("order_quantity")
    notional = o.quantity * max(last, o.limit_price or 0)
    if cfg.max_order_notional is not None and notional > cfg.max_order_notional:
        bad.append("order_notional")
    if cfg.max_open_orders is not None and len(v.open_orders) + 1 > cfg.max_open_orders:
        bad.append("open_orders")
    caps: dict[str, Decimal | None] = {
        "position": None if cfg.max_position is None else Decimal(repr(cfg.max_position)) * e,
        "gross": None if cfg.max_gross is None else Decimal(repr(cfg.max_gross)) * e,
        "net": None if cfg.max_net is None else Decimal(repr(cfg.max_net)) * e,
    }
    if cfg.max_position_notional is not None:
        cap = caps["position"]
        caps["position"] = min(
            cfg.max_position_notional, cap if cap is not None else Decimal("Infinity")
        )
    for name, cap in caps.items():
        if cap is not None and after[name] > cap and after[name] > before[name]:
            bad.append(name)
    instrument = v.instruments.get(sym)
    may_short = not cfg.long_only and instrument is not None and instrument.shortable
    if not may_short and after["min_qty"] < min(before["min_qty"], Decimal(0)):
        bad.append("short")
    return bad


def reduces(o: SubmitOrder, v: PortfolioView) -> bool:
    """True when ``o`` shrinks its position toward zero, whatever else fills."""
    q = v.portfolio.position(o.symbol).quantity
    if q == 0 or (q > 0) == (o.side is OrderSide.BUY):
        return False
    after = measures(v, [*legs_of(v), (o.symbol, o.quantity * o.side.sign)], o.symbol)
    return after["min_qty"] >= 0 if q > 0 else after["max_qty"] <= 0


# -- single orders ------------------------------------------------------------------------------
def _single(data: st.DataObject) -> None:
    cfg = data.draw(configs())
    v = data.draw(views())
    o = data.draw(orders(v.last_prices))
    state = data.draw(st.sampled_from(list(TradingState)))
    denied = check_order(o, v, cfg, state)
    if denied is not None:
        return
    assert state is not TradingState.HALTED
    assert oracle_breaches(o, v, cfg) == []
    if state is TradingState.REDUCING:
        assert reduces(o, v)


def _settings(n: int) -> Callable[[Any], Any]:
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck))


test_no_approved_order_breaks_a_limit = _settings(FAST)(given(st.data())(_single))
test_no_approved_order_breaks_a_limit_10k = pytest.mark.slow(
    _settings(SLOW)(given(st.data())(_single))
)


@_settings(FAST)
@given(st.data())
def test_halted_approves_nothing(data: st.DataObject) -> None:
    v = data.draw(views())
    assert check_order(data.draw(orders(v.last_prices)), v, RiskConfig(), TradingState.HALTED)


def _reducing(data: st.DataObject) -> None:
    v = data.draw(views())
    held = [p for p in v.portfolio.positions if p.quantity != 0]
    if not held:
        return
    pos = data.draw(st.sampled_from(held))
    side = SELL if pos.quantity > 0 else BUY
    o = order(side, data.draw(st.integers(1, int(abs(pos.quantity)) + 50)), pos.symbol)
    cfg = RiskConfig(long_only=data.draw(st.booleans()))
    if check_order(o, v, cfg, TradingState.REDUCING) is None:
        assert reduces(o, v)
    else:
        assert not reduces(o, v)  # nothing else limits here: every reducing order passes


test_reducing_approves_exactly_the_reducing_orders = _settings(FAST)(given(st.data())(_reducing))
test_reducing_approves_exactly_the_reducing_orders_10k = pytest.mark.slow(
    _settings(SLOW)(given(st.data())(_reducing))
)


# -- sequences through the engine, fills at the last price --------------------------------------
def _sequence(data: st.DataObject) -> None:
    cfg = data.draw(configs()).tighten(long_only=True)  # cash never goes negative then
    clock = TestClock(T0)
    engine = RiskEngine(cfg, clock=clock)
    prices = {Symbol(s): data.draw(prices_st) for s in SYMBOLS}
    v = view(cash=data.draw(st.integers(1_000, 150_000)), prices=prices)
    for step in range(data.draw(st.integers(1, 12))):
        moves = {s: Decimal(data.draw(st.integers(-500, 500))) * _BPS for s in prices}
        prices = {s: (p * (1 + moves[s])).quantize(Decimal("0.01")) for s, p in prices.items()}
        v = PortfolioView(v.portfolio, prices, buying_power=None)
        o = data.draw(orders(prices))
        clock.advance(timedelta(seconds=1))
        if engine.validate(o, v) is not None:
            continue
        assert oracle_breaches(o, v, cfg) == []
        price = prices[o.symbol]  # a limit order fills at its limit or better
        if o.limit_price is not None:
            price = min(price, o.limit_price) if o.side is BUY else max(price, o.limit_price)
        fill = OrderFilled(client_order_id=o.client_order_id, ts=clock.now(), fill_id=f"f{step}",
                           symbol=o.symbol, side=o.side, quantity=o.quantity, price=price)  # fmt: skip
        portfolio = v.portfolio.apply_fill(fill)
        assert portfolio.cash >= 0 or o.side is SELL  # buying power held
        assert all(q >= 0 for q in portfolio.quantities().values())  # long only
        v = PortfolioView(portfolio, prices)


test_no_fill_breaks_a_limit_over_sequences = _settings(FAST // 3)(given(st.data())(_sequence))
test_no_fill_breaks_a_limit_over_sequences_10k = pytest.mark.slow(
    _settings(SLOW)(given(st.data())(_sequence))
)


def test_the_oracle_catches_what_the_checks_would_let_through() -> None:
    """The oracle is not vacuous: an order over each limit is reported."""
    v = view(cash=10_000, positions={"AAPL": (50, 100)}, open_orders=[open_order(BUY, 40)])
    cfg = RiskConfig(max_position=0.5, long_only=True)  # 7,500 of 15,000 equity
    assert oracle_breaches(order(BUY, 1), v, cfg) == ["position"]  # 90 + 1 shares worst case
    assert oracle_breaches(order(SELL, 51), v, cfg) == ["short"]
    assert not reduces(order(SELL, 51), v)
    assert reduces(order(SELL, 50), v)
    assert oracle_breaches(order(BUY, 1), v, RiskConfig(max_open_orders=1)) == ["open_orders"]
