"""Pre-trade checks: one order (a domain ``SubmitOrder``) against a portfolio view and the
limits of a :class:`~tradeforge.risk.config.RiskConfig`; each denial carries a reason from the
closed enum :class:`DenyReason`.

Exposure is measured at the last trade prices (``PortfolioView.last_prices``) and counts the
open orders at their worst: a symbol's exposure is ``max(|q + B|, |q - S|) * price`` for the
position ``q``, the open buy quantity ``B`` and the open sell quantity ``S`` (what is left to
fill), so orders approved one by one cannot add up past a limit once they all fill. Gross is
the sum of those; net is the larger of ``|sum (q + B) p|`` and ``|sum (q - S) p|``; equity is
``cash + sum q p``. A position, gross or net limit denies an order only when the order raises
that measure and the result exceeds the limit: an order that lowers an exposure that prices
pushed over a limit passes. Risk-reducing orders (:func:`is_risk_reducing`) never need buying
power and never open a short.

The rate throttle and the duplicate window keep state across orders; they live in
:mod:`tradeforge.risk.throttle` and :class:`~tradeforge.risk.engine.RiskEngine` applies them
after these checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from tradeforge.domain import (
    ClientOrderId,
    Instrument,
    Order,
    OrderSide,
    Portfolio,
    SubmitOrder,
    Symbol,
)
from tradeforge.risk.config import RiskConfig
from tradeforge.risk.state import TradingState

_ZERO = Decimal(0)
_BPS = Decimal("0.0001")


class DenyReason(StrEnum):
    """Why an order was denied (a closed set; metrics and the audit log use the values)."""

    TRADING_HALTED = "trading_halted"
    TRADING_REDUCING = "trading_reducing"
    RESTRICTED_SYMBOL = "restricted_symbol"
    NOT_TRADABLE = "not_tradable"
    NO_REFERENCE_PRICE = "no_reference_price"
    PRICE_OUTSIDE_COLLAR = "price_outside_collar"
    ORDER_QUANTITY_EXCEEDS_MAX = "order_quantity_exceeds_max"
    ORDER_NOTIONAL_EXCEEDS_MAX = "order_notional_exceeds_max"
    MAX_OPEN_ORDERS = "max_open_orders"
    SHORT_NOT_ALLOWED = "short_not_allowed"
    NOT_SHORTABLE = "not_shortable"
    NON_POSITIVE_EQUITY = "non_positive_equity"
    POSITION_NOTIONAL_EXCEEDS_MAX = "position_notional_exceeds_max"
    POSITION_SHARE_EXCEEDS_MAX = "position_share_exceeds_max"
    GROSS_EXPOSURE_EXCEEDS_MAX = "gross_exposure_exceeds_max"
    NET_EXPOSURE_EXCEEDS_MAX = "net_exposure_exceeds_max"
    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    DUPLICATE_ORDER = "duplicate_order"
    RATE_LIMIT_PER_SECOND = "rate_limit_per_second"
    RATE_LIMIT_PER_MINUTE = "rate_limit_per_minute"


@dataclass(frozen=True)
class Denied:
    """An order the risk engine refused: the reason and a message naming the numbers."""

    reason: DenyReason
    message: str
    client_order_id: ClientOrderId


_Deny = Callable[[DenyReason, str], Denied]


@dataclass(frozen=True)
class PortfolioView:
    """What the checks see of the account at one moment.

    * ``portfolio``: cash and positions (the OMS's);
    * ``last_prices``: the last trade price of every symbol held, with open orders, or ordered;
    * ``open_orders``: orders not yet terminal (their unfilled quantity counts at its worst);
    * ``buying_power``: what the broker says new buys may spend, net of open orders; when
      None, ``cash`` minus the open buys' cost (at their limit, else the last price);
    * ``instruments``: broker flags (``tradable``, ``shortable``); a symbol missing here is
      treated as tradable and NOT shortable.
    """

    portfolio: Portfolio
    last_prices: Mapping[Symbol, Decimal]
    open_orders: Sequence[Order] = ()
    buying_power: Decimal | None = None
    instruments: Mapping[Symbol, Instrument] = field(default_factory=dict)


@dataclass(frozen=True)
class Book:
    """Exposures of a view at its prices (see the module docstring); ``unpriced`` names a
    symbol held or with open orders that has no positive last price (nothing else is valid
    then)."""

    quantity: Mapping[Symbol, Decimal]
    open_buy: Mapping[Symbol, Decimal]
    open_sell: Mapping[Symbol, Decimal]
    prices: Mapping[Symbol, Decimal]
    equity: Decimal
    gross: Decimal
    net_up: Decimal
    net_down: Decimal
    open_count: int
    open_buy_cost: Decimal
    unpriced: Symbol | None = None

    def worst(self, symbol: Symbol) -> Decimal:
        """``max(|q + B|, |q - S|)`` in units for ``symbol``."""
        q = self.quantity.get(symbol, _ZERO)
        return max(abs(q + self.open_buy.get(symbol, _ZERO)),
                   abs(q - self.open_sell.get(symbol, _ZERO)))  # fmt: skip

    @property
    def net(self) -> Decimal:
        return max(abs(self.net_up), abs(self.net_down))


def _price(prices: Mapping[Symbol, Decimal], symbol: Symbol) -> Decimal | None:
    p = prices.get(symbol)
    return p if p is not None and p.is_finite() and p > 0 else None


def book_of(view: PortfolioView) -> Book:
    """The exposures of ``view`` (see :class:`Book`)."""
    qty = {p.symbol: p.quantity for p in view.portfolio.positions if p.quantity != 0}
    buy: dict[Symbol, Decimal] = {}
    sell: dict[Symbol, Decimal] = {}
    buy_cost, count, unpriced = _ZERO, 0, None
    for order in view.open_orders:
        if not order.is_open:
            continue
        count += 1
        leaves = order.leaves_quantity
        side = buy if order.side is OrderSide.BUY else sell
        side[order.symbol] = side.get(order.symbol, _ZERO) + leaves
        if order.side is OrderSide.BUY:
            limit = order.command.limit_price or _price(view.last_prices, order.symbol) or _ZERO
            buy_cost += leaves * limit
    prices: dict[Symbol, Decimal] = {}
    equity, gross, net_up, net_down = view.portfolio.cash, _ZERO, _ZERO, _ZERO
    for symbol in sorted(set(qty) | set(buy) | set(sell)):
        p = _price(view.last_prices, symbol)
        if p is None:
            unpriced = unpriced or symbol
            continue
        prices[symbol] = p
        q = qty.get(symbol, _ZERO)
        b, s = buy.get(symbol, _ZERO), sell.get(symbol, _ZERO)
        equity += q * p
        gross += max(abs(q + b), abs(q - s)) * p
        net_up += (q + b) * p
        net_down += (q - s) * p
    return Book(qty, buy, sell, prices, equity, gross, net_up, net_down, count, buy_cost,
                unpriced)  # fmt: skip


def is_risk_reducing(order: SubmitOrder, book: Book) -> bool:
    """True when ``order`` only shrinks its symbol's position toward zero, even after every
    open order on the same side fills (a sell of at most ``q - S`` of a long ``q``, a buy of at
    most ``-q - B`` of a short)."""
    q = book.quantity.get(order.symbol, _ZERO)
    if order.side is OrderSide.SELL:
        return q > 0 and book.open_sell.get(order.symbol, _ZERO) + order.quantity <= q
    return q < 0 and book.open_buy.get(order.symbol, _ZERO) + order.quantity <= -q


def _frac(value: float) -> Decimal:
    return Decimal(repr(value))


def check_order(
    order: SubmitOrder, view: PortfolioView, config: RiskConfig, state: TradingState
) -> Denied | None:
    """The first check ``order`` fails (None when it passes them all). The order of checks:
    trading state, restricted and non-tradable symbols, reference price, price collar, order
    quantity and notional, open-order count, short sale, equity, position (notional and share),
    gross, net, buying power."""
    cid, sym = order.client_order_id, order.symbol

    def deny(reason: DenyReason, message: str) -> Denied:
        return Denied(reason, f"{order.side.value} {order.quantity} {sym}: {message}", cid)

    if state is TradingState.HALTED:
        return deny(DenyReason.TRADING_HALTED, "trading is HALTED; only cancels pass")
    if sym in config.restricted_symbols:
        return deny(DenyReason.RESTRICTED_SYMBOL, f"{sym} is on the restricted list")
    instrument = view.instruments.get(sym)
    if instrument is not None and not instrument.tradable:
        return deny(DenyReason.NOT_TRADABLE, f"the broker marks {sym} not tradable")
    last = _price(view.last_prices, sym)
    book = book_of(view)
    if last is None or book.unpriced is not None:
        missing = sym if last is None else book.unpriced
        return deny(DenyReason.NO_REFERENCE_PRICE,
                    f"no positive last price for {missing}; expected one for every symbol "
                    "held, with open orders, or ordered")  # fmt: skip
    reducing = is_risk_reducing(order, book)
    if state is TradingState.REDUCING and not reducing:
        return deny(DenyReason.TRADING_REDUCING,
                    "trading is REDUCING; only orders that shrink a position pass")  # fmt: skip
    if config.price_collar_bps is not None:
        band = _frac(config.price_collar_bps) * _BPS
        for name, price in (("limit_price", order.limit_price), ("stop_price", order.stop_price)):
            if price is not None and abs(price - last) > band * last:
                return deny(DenyReason.PRICE_OUTSIDE_COLLAR,
                            f"{name} {price} is more than {config.price_collar_bps} bps from the "
                            f"last trade {last}")  # fmt: skip
    x = order.quantity
    if config.max_order_quantity is not None and x > config.max_order_quantity:
        return deny(DenyReason.ORDER_QUANTITY_EXCEEDS_MAX,
                    f"quantity {x} > max_order_quantity {config.max_order_quantity}")  # fmt: skip
    worst_price = max(last, order.limit_price or _ZERO, order.stop_price or _ZERO)
    notional = x * worst_price
    if config.max_order_notional is not None and notional > config.max_order_notional:
        return deny(DenyReason.ORDER_NOTIONAL_EXCEEDS_MAX,
                    f"notional {notional} > max_order_notional {config.max_order_notional}")  # fmt: skip
    if config.max_open_orders is not None and book.open_count >= config.max_open_orders:
        return deny(DenyReason.MAX_OPEN_ORDERS,
                    f"{book.open_count} open orders; max_open_orders is {config.max_open_orders}")  # fmt: skip
    return _exposure_denial(order, view, config, book, last, reducing, deny)


def _exposure_denial(
    order: SubmitOrder,
    view: PortfolioView,
    config: RiskConfig,
    book: Book,
    last: Decimal,
    reducing: bool,
    deny: _Deny,
) -> Denied | None:
    sym, x = order.symbol, order.quantity
    q = book.quantity.get(sym, _ZERO)
    b, s = book.open_buy.get(sym, _ZERO), book.open_sell.get(sym, _ZERO)
    buying = order.side is OrderSide.BUY
    if not buying and q - s - x < min(q - s, _ZERO):  # opens or adds to a short
        if config.long_only:
            return deny(DenyReason.SHORT_NOT_ALLOWED,
                        f"would take the position to {q - s - x} (long_only)")  # fmt: skip
        instrument = view.instruments.get(sym)
        if instrument is None or not instrument.shortable:
            return deny(DenyReason.NOT_SHORTABLE,
                        f"would take the position to {q - s - x}; {sym} is not shortable")  # fmt: skip
    before = book.worst(sym)
    after = max(abs(q + b + x), abs(q - s)) if buying else max(abs(q + b), abs(q - s - x))
    equity = book.equity
    if after > before:
        share_limits = (config.max_position, config.max_gross, config.max_net)
        if equity <= 0 and any(v is not None for v in share_limits):
            return deny(DenyReason.NON_POSITIVE_EQUITY,
                        f"equity is {equity}; exposure limits need equity > 0")  # fmt: skip
        if config.max_position_notional is not None and after * last > config.max_position_notional:
            return deny(DenyReason.POSITION_NOTIONAL_EXCEEDS_MAX,
                        f"{sym} exposure {after * last} > max_position_notional "
                        f"{config.max_position_notional}")  # fmt: skip
        if config.max_position is not None and after * last > _frac(config.max_position) * equity:
            return deny(DenyReason.POSITION_SHARE_EXCEEDS_MAX,
                        f"{sym} exposure {after * last} > max_position {config.max_position} x "
                        f"equity {equity}")  # fmt: skip
        gross = book.gross + (after - before) * last
        if config.max_gross is not None and gross > _frac(config.max_gross) * equity:
            return deny(DenyReason.GROSS_EXPOSURE_EXCEEDS_MAX,
                        f"gross exposure {gross} > max_gross {config.max_gross} x equity "
                        f"{equity}")  # fmt: skip
    up = book.net_up + (x * last if buying else _ZERO)
    down = book.net_down - (_ZERO if buying else x * last)
    net = max(abs(up), abs(down))
    if config.max_net is not None and net > book.net and net > _frac(config.max_net) * equity:
        return deny(DenyReason.NET_EXPOSURE_EXCEEDS_MAX,
                    f"net exposure {net} > max_net {config.max_net} x equity {equity}")  # fmt: skip
    if not reducing:
        return _buying_power_denial(order, view, config, book, last, deny)
    return None


def _buying_power_denial(
    order: SubmitOrder,
    view: PortfolioView,
    config: RiskConfig,
    book: Book,
    last: Decimal,
    deny: _Deny,
) -> Denied | None:
    sym, x = order.symbol, order.quantity
    q = book.quantity.get(sym, _ZERO)
    if order.side is OrderSide.BUY:
        covering = max(_ZERO, -(q + book.open_buy.get(sym, _ZERO)))
    else:
        covering = max(_ZERO, q - book.open_sell.get(sym, _ZERO))
    opening = max(_ZERO, x - covering)
    if opening == 0:
        return None
    price = order.limit_price if order.limit_price is not None else last
    cost = opening * price * (1 + _frac(config.buying_power_buffer_bps) * _BPS)
    power = view.buying_power
    if power is None:
        power = view.portfolio.cash - book.open_buy_cost
    if cost > power:
        return deny(DenyReason.INSUFFICIENT_BUYING_POWER,
                    f"opening {opening} costs {cost}; buying power is {power}")  # fmt: skip
    return None


__all__ = [
    "Book",
    "Denied",
    "DenyReason",
    "PortfolioView",
    "book_of",
    "check_order",
    "is_risk_reducing",
]
