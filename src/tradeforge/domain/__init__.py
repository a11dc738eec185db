"""Domain model: typed ids, enums, instruments, orders with an explicit ``(from, to)`` state
table, immutable events (``Order<PastTense>``) and commands (``<Verb><Noun>``), positions and
the portfolio. Money and quantities are ``Decimal``; timestamps are timezone-aware UTC.
"""

from tradeforge.domain.commands import CancelOrder, SubmitOrder
from tradeforge.domain.enums import (
    TERMINAL_STATUSES,
    AssetClass,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from tradeforge.domain.errors import DomainError, OrderStateError, PortfolioError
from tradeforge.domain.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderCancelRequested,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRejected,
    OrderReplaceRequested,
    OrderSubmitted,
    event_from_json,
    event_to_json,
)
from tradeforge.domain.ids import (
    MAX_CLIENT_ORDER_ID_LENGTH,
    ClientOrderId,
    FillId,
    StrategyId,
    Symbol,
    VenueOrderId,
    client_order_id_of,
    strategy_id_of,
    symbol_of,
)
from tradeforge.domain.instruments import Instrument
from tradeforge.domain.orders import TRANSITIONS, Order, is_legal
from tradeforge.domain.portfolio import Portfolio, Position

__all__ = [
    "MAX_CLIENT_ORDER_ID_LENGTH",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "AssetClass",
    "CancelOrder",
    "ClientOrderId",
    "DomainError",
    "FillId",
    "Instrument",
    "Order",
    "OrderAccepted",
    "OrderCancelRejected",
    "OrderCancelRequested",
    "OrderCanceled",
    "OrderEvent",
    "OrderExpired",
    "OrderFilled",
    "OrderRejected",
    "OrderReplaceRejected",
    "OrderReplaceRequested",
    "OrderReplaced",
    "OrderSide",
    "OrderStateError",
    "OrderStatus",
    "OrderSubmitted",
    "OrderType",
    "Portfolio",
    "PortfolioError",
    "Position",
    "StrategyId",
    "SubmitOrder",
    "Symbol",
    "TimeInForce",
    "VenueOrderId",
    "client_order_id_of",
    "event_from_json",
    "event_to_json",
    "is_legal",
    "strategy_id_of",
    "symbol_of",
]
