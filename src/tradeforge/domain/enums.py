"""Enumerations shared by the domain model.

String values are lower-case and match Alpaca's wire values where Alpaca has the same concept
(``OrderSide``, ``OrderType``, ``TimeInForce``). ``OrderStatus`` is tradeforge's own, smaller
vocabulary; ``docs/execution.md`` maps Alpaca's eighteen statuses onto it.
"""

from __future__ import annotations

from enum import StrEnum


class AssetClass(StrEnum):
    EQUITY = "equity"
    INDEX = "index"
    FX = "fx"
    CRYPTO = "crypto"
    COMMODITY = "commodity"
    MACRO = "macro"


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell (the sign of the position change)."""
        return 1 if self is OrderSide.BUY else -1

    @property
    def opposite(self) -> OrderSide:
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"

    @property
    def needs_limit_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT)

    @property
    def needs_stop_price(self) -> bool:
        return self in (OrderType.STOP, OrderType.STOP_LIMIT)


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    OPG = "opg"
    CLS = "cls"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(StrEnum):
    """Where an order is in its life (the transition table is ``domain.orders.TRANSITIONS``).

    * ``new``: the OMS has recorded the intent; the broker has not acknowledged it yet (it may
      or may not have reached the broker).
    * ``accepted``: the broker acknowledged it (Alpaca's ``accepted``, ``pending_new`` and
      ``new`` all map here).
    * ``partially_filled``, ``filled``: some or all of the quantity executed.
    * ``pending_cancel``, ``pending_replace``: a cancel or replace was requested, not yet
      confirmed.
    * ``canceled``, ``rejected``, ``expired``, ``replaced``, ``filled``: terminal; nothing
      changes an order in a terminal status.
    """

    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    REPLACED = "replaced"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_open(self) -> bool:
        """Not terminal: the order may still fill or change."""
        return self not in TERMINAL_STATUSES


TERMINAL_STATUSES: frozenset[OrderStatus] = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.REPLACED,
    }
)

__all__ = [
    "TERMINAL_STATUSES",
    "AssetClass",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "TimeInForce",
]
