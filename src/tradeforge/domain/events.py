"""Order events: immutable records of what happened to an order, named ``Order<PastTense>``.

Every event names its order by ``client_order_id`` and carries a UTC timestamp ``ts``. The
``kind`` field tells the types apart in storage (:func:`event_from_json`). How each event moves
an order is in ``domain.orders`` (``Order.apply`` and the ``TRANSITIONS`` table).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from tradeforge.core.config import format_validation_error
from tradeforge.domain._model import (
    ClientOrderIdField,
    DomainModel,
    NonNegativeDecimal,
    PositiveDecimal,
    SymbolField,
    UtcDatetime,
)
from tradeforge.domain.commands import SubmitOrder
from tradeforge.domain.enums import OrderSide
from tradeforge.domain.errors import DomainError
from tradeforge.domain.ids import FillId, VenueOrderId


class _OrderEventBase(DomainModel):
    client_order_id: ClientOrderIdField
    ts: UtcDatetime


class OrderSubmitted(_OrderEventBase):
    """The OMS recorded the intent to place ``command`` (creates the order, status ``new``).

    It is written before the order is sent: the broker may not have it yet.
    """

    kind: Literal["submitted"] = "submitted"
    command: SubmitOrder

    @model_validator(mode="after")
    def _same_id(self) -> OrderSubmitted:
        if self.command.client_order_id != self.client_order_id:
            raise DomainError(
                f"OrderSubmitted client_order_id = {self.client_order_id!r} but its command has "
                f"{self.command.client_order_id!r}; expected the same id"
            )
        return self


class OrderAccepted(_OrderEventBase):
    """The broker acknowledged the order and gave it ``venue_order_id``."""

    kind: Literal["accepted"] = "accepted"
    venue_order_id: VenueOrderId


class OrderRejected(_OrderEventBase):
    """The broker (or a local check) refused the order; nothing of it executed."""

    kind: Literal["rejected"] = "rejected"
    reason: str


class OrderFilled(_OrderEventBase):
    """One execution of ``quantity`` at ``price``, costing ``fee`` (commission and any cost the
    venue charges outside the price). ``fill_id`` is unique per execution; replays of the same
    fill carry the same id. Whether it completes the order follows from the order's quantity:
    ``Order.apply`` moves it to ``partially_filled`` or ``filled``."""

    kind: Literal["filled"] = "filled"
    fill_id: FillId
    symbol: SymbolField
    side: OrderSide
    quantity: PositiveDecimal
    price: PositiveDecimal
    fee: NonNegativeDecimal = Decimal(0)

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity * self.side.sign

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price


class OrderCancelRequested(_OrderEventBase):
    """A cancel was sent; the broker has not confirmed it (status ``pending_cancel``)."""

    kind: Literal["cancel_requested"] = "cancel_requested"


class OrderCancelRejected(_OrderEventBase):
    """The broker refused a cancel: the order goes back to its open status."""

    kind: Literal["cancel_rejected"] = "cancel_rejected"
    reason: str = ""


class OrderCanceled(_OrderEventBase):
    """The order was canceled; what filled before stays filled."""

    kind: Literal["canceled"] = "canceled"
    reason: str = ""


class OrderExpired(_OrderEventBase):
    """The order's time in force ran out; what filled before stays filled."""

    kind: Literal["expired"] = "expired"


class OrderReplaceRequested(_OrderEventBase):
    """A replace was sent; not yet confirmed (status ``pending_replace``)."""

    kind: Literal["replace_requested"] = "replace_requested"


class OrderReplaceRejected(_OrderEventBase):
    """The broker refused a replace: the order goes back to its open status."""

    kind: Literal["replace_rejected"] = "replace_rejected"
    reason: str = ""


class OrderReplaced(_OrderEventBase):
    """The order was replaced by the order ``replaced_by`` (this one is done)."""

    kind: Literal["replaced"] = "replaced"
    replaced_by: ClientOrderIdField


OrderEvent = Annotated[
    OrderSubmitted
    | OrderAccepted
    | OrderRejected
    | OrderFilled
    | OrderCancelRequested
    | OrderCancelRejected
    | OrderCanceled
    | OrderExpired
    | OrderReplaceRequested
    | OrderReplaceRejected
    | OrderReplaced,
    Field(discriminator="kind"),
]
"""Any order event (a pydantic discriminated union on ``kind``)."""

_EVENT_ADAPTER: TypeAdapter[OrderEvent] = TypeAdapter(OrderEvent)


def event_to_json(event: OrderEvent) -> str:
    """The event as JSON (Decimals as strings, times as ISO 8601 UTC)."""
    return event.model_dump_json()


def event_from_json(text: str | bytes) -> OrderEvent:
    """Parse what :func:`event_to_json` wrote back into the same event."""
    try:
        return _EVENT_ADAPTER.validate_json(text)
    except ValidationError as exc:
        raise DomainError(format_validation_error(exc, "order event JSON")) from None


__all__ = [
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
    "OrderSubmitted",
    "event_from_json",
    "event_to_json",
]
