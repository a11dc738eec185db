"""The broker protocol: the one interface every venue adapter implements.

An adapter (the in-process :class:`~tradeforge.execution.brokers.simulated.SimulatedBroker`
today; the local Alpaca-compatible venue and ``AlpacaBroker`` later) speaks tradeforge's domain
types: it takes ``SubmitOrder`` commands, reports orders as :class:`BrokerOrder` in the domain's
``OrderStatus`` vocabulary and emits domain order events. The contract:

* ``submit`` is idempotent on ``client_order_id``: submitting an id the broker already has
  returns that order and never creates a second one (an adapter maps Alpaca's "client_order_id
  must be unique" error to a look-up by client id). A definitive refusal is a ``BrokerOrder``
  with status ``rejected``. When the outcome is unknown (timeout, disconnect, 5xx, an
  unparseable reply) it raises :class:`~tradeforge.execution.errors.BrokerUnavailableError`;
  the caller then resolves the order with ``get_order_by_client_id``, never by a blind retry.
* ``cancel`` is a request: the outcome arrives as an event (and is visible through
  ``get_order_by_client_id``). Cancelling an order that is already done is not an error.
* ``drain_events`` returns the order events that arrived since the last call, oldest first
  (the trade-update stream of a real broker). Events may repeat or arrive before the reply to
  ``submit``: the order manager deduplicates them. Events lost (a process that died before it
  stored them) are recovered from ``get_order_by_client_id``.
* ``BrokerOrder.fills`` lists the executions when the broker can report them (each with a
  stable ``fill_id``); ``None`` means the broker reports only the filled quantity and average
  price, and the order manager infers the missing fill from those totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from tradeforge.domain import (
    ClientOrderId,
    OrderEvent,
    OrderFilled,
    OrderSide,
    OrderStatus,
    SubmitOrder,
    Symbol,
    VenueOrderId,
)


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker reports it (its status mapped to ``OrderStatus``)."""

    client_order_id: ClientOrderId
    venue_order_id: VenueOrderId
    symbol: Symbol
    side: OrderSide
    quantity: Decimal
    status: OrderStatus
    updated_at: datetime
    filled_quantity: Decimal = Decimal(0)
    avg_fill_price: Decimal | None = None
    fills: tuple[OrderFilled, ...] | None = None
    reason: str = ""


@dataclass(frozen=True)
class BrokerPosition:
    """A holding as the broker reports it (signed quantity)."""

    symbol: Symbol
    quantity: Decimal
    avg_entry_price: Decimal


@dataclass(frozen=True)
class BrokerAccount:
    """Cash, buying power and equity as the broker reports them."""

    cash: Decimal
    buying_power: Decimal
    equity: Decimal


class Broker(Protocol):
    """What the order manager needs from a venue (see the module docstring)."""

    def submit(self, command: SubmitOrder) -> BrokerOrder: ...

    def cancel(self, client_order_id: ClientOrderId) -> None: ...

    def get_order_by_client_id(self, client_order_id: ClientOrderId) -> BrokerOrder | None: ...

    def list_open_orders(self) -> list[BrokerOrder]: ...

    def positions(self) -> dict[Symbol, BrokerPosition]: ...

    def account(self) -> BrokerAccount: ...

    def drain_events(self) -> list[OrderEvent]: ...


__all__ = ["Broker", "BrokerAccount", "BrokerOrder", "BrokerPosition"]
