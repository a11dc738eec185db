"""The order and its state table.

An :class:`Order` is immutable: ``order.apply(event)`` returns the order after the event, or
raises :class:`~tradeforge.domain.errors.OrderStateError` when the state table
(:data:`TRANSITIONS`) does not allow the move or an invariant would break:

* the filled quantity never exceeds the order quantity, and every fill has the order's symbol
  and side and a fill id not seen before on this order;
* a terminal status (filled, canceled, rejected, expired, replaced) absorbs: no event changes
  an order in a terminal status;
* a rejected order has no fills.

Which status an event leads to:

======================  ==============================================================
event                   target status
======================  ==============================================================
OrderSubmitted          creates the order in ``new`` (:meth:`Order.create`)
OrderAccepted           ``accepted`` (a pending cancel/replace keeps its status)
OrderFilled             ``filled`` when the quantity is complete; else ``pending_cancel``
                        or ``pending_replace`` stay, any other status becomes
                        ``partially_filled``
OrderCancelRequested    ``pending_cancel``
OrderReplaceRequested   ``pending_replace``
OrderCancelRejected,    back to the open status: ``partially_filled`` when something
OrderReplaceRejected    filled, else ``accepted`` when the broker acknowledged it, else
                        ``new``
OrderCanceled           ``canceled``
OrderExpired            ``expired``
OrderRejected           ``rejected``
OrderReplaced           ``replaced``
======================  ==============================================================
"""

from __future__ import annotations

from decimal import Decimal

from tradeforge.domain._model import (
    DomainModel,
    NonNegativeDecimal,
    UtcDatetime,
)
from tradeforge.domain.commands import SubmitOrder
from tradeforge.domain.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from tradeforge.domain.errors import OrderStateError
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
)
from tradeforge.domain.ids import ClientOrderId, FillId, StrategyId, Symbol, VenueOrderId

_S = OrderStatus

#: Every legal ``(from, to)`` status move. A pair not listed raises ``OrderStateError``.
TRANSITIONS: frozenset[tuple[OrderStatus, OrderStatus]] = frozenset(
    [(_S.NEW, to) for to in (
        _S.ACCEPTED, _S.REJECTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED,
        _S.PENDING_CANCEL,
    )]
    + [(_S.ACCEPTED, to) for to in (
        _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.REJECTED,
        _S.PENDING_CANCEL, _S.PENDING_REPLACE,
    )]
    + [(_S.PARTIALLY_FILLED, to) for to in (
        _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.PENDING_CANCEL,
        _S.PENDING_REPLACE,
    )]
    + [(_S.PENDING_CANCEL, to) for to in (
        _S.PENDING_CANCEL, _S.NEW, _S.ACCEPTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED,
        _S.EXPIRED, _S.REJECTED,
    )]
    + [(_S.PENDING_REPLACE, to) for to in (
        _S.PENDING_REPLACE, _S.ACCEPTED, _S.PARTIALLY_FILLED, _S.REPLACED, _S.FILLED,
        _S.CANCELED, _S.EXPIRED, _S.PENDING_CANCEL,
    )]
)  # fmt: skip


def is_legal(from_status: OrderStatus, to_status: OrderStatus) -> bool:
    """True when the state table allows moving from ``from_status`` to ``to_status``."""
    return (from_status, to_status) in TRANSITIONS


class Order(DomainModel):
    """One order: what was asked (``command``) and what has happened to it since.

    ``event_count`` counts the events applied, ``OrderSubmitted`` included (the OMS store
    numbers events with it). ``filled_notional`` is the exact sum of fill quantity x price.
    """

    command: SubmitOrder
    status: OrderStatus
    created_at: UtcDatetime
    updated_at: UtcDatetime
    venue_order_id: VenueOrderId | None = None
    filled_quantity: NonNegativeDecimal = Decimal(0)
    filled_notional: NonNegativeDecimal = Decimal(0)
    fees: NonNegativeDecimal = Decimal(0)
    fill_ids: tuple[FillId, ...] = ()
    reason: str = ""
    event_count: int = 1

    @classmethod
    def create(cls, event: OrderSubmitted) -> Order:
        """The order an ``OrderSubmitted`` event creates (status ``new``)."""
        return cls(
            command=event.command, status=OrderStatus.NEW, created_at=event.ts, updated_at=event.ts
        )

    # -- the command's fields -------------------------------------------------------------
    @property
    def client_order_id(self) -> ClientOrderId:
        return self.command.client_order_id

    @property
    def strategy_id(self) -> StrategyId:
        return self.command.strategy_id

    @property
    def symbol(self) -> Symbol:
        return self.command.symbol

    @property
    def side(self) -> OrderSide:
        return self.command.side

    @property
    def quantity(self) -> Decimal:
        return self.command.quantity

    @property
    def order_type(self) -> OrderType:
        return self.command.order_type

    @property
    def time_in_force(self) -> TimeInForce:
        return self.command.time_in_force

    # -- derived state ----------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def leaves_quantity(self) -> Decimal:
        """What may still fill: 0 once terminal."""
        return Decimal(0) if self.is_terminal else self.quantity - self.filled_quantity

    @property
    def avg_fill_price(self) -> Decimal | None:
        if self.filled_quantity == 0:
            return None
        return self.filled_notional / self.filled_quantity

    def has_fill(self, fill_id: FillId) -> bool:
        return fill_id in self.fill_ids

    def _open_status(self) -> OrderStatus:
        if self.filled_quantity > 0:
            return OrderStatus.PARTIALLY_FILLED
        return OrderStatus.ACCEPTED if self.venue_order_id is not None else OrderStatus.NEW

    def target_status(self, event: OrderEvent) -> OrderStatus:
        """The status ``event`` would lead to (without checking that the move is legal)."""
        match event:
            case OrderAccepted():
                if self.status in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE):
                    return self.status
                return OrderStatus.ACCEPTED
            case OrderFilled():
                if self.filled_quantity + event.quantity == self.quantity:
                    return OrderStatus.FILLED
                if self.status in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE):
                    return self.status
                return OrderStatus.PARTIALLY_FILLED
            case OrderCancelRequested():
                return OrderStatus.PENDING_CANCEL
            case OrderReplaceRequested():
                return OrderStatus.PENDING_REPLACE
            case OrderCancelRejected() | OrderReplaceRejected():
                return self._open_status()
            case OrderCanceled():
                return OrderStatus.CANCELED
            case OrderExpired():
                return OrderStatus.EXPIRED
            case OrderRejected():
                return OrderStatus.REJECTED
            case OrderReplaced():
                return OrderStatus.REPLACED
            case OrderSubmitted():
                raise OrderStateError(
                    f"order {self.client_order_id}: OrderSubmitted applied to an existing order "
                    f"(status {self.status.value}); expected it only to create the order"
                )
        raise OrderStateError(  # pragma: no cover - the match is exhaustive
            f"order {self.client_order_id}: unknown event {type(event).__name__}"
        )

    def can_apply(self, event: OrderEvent) -> bool:
        """True when :meth:`apply` would accept ``event``."""
        try:
            self.apply(event)
        except OrderStateError:
            return False
        return True

    def apply(self, event: OrderEvent) -> Order:
        """The order after ``event``; raises ``OrderStateError`` on an illegal move."""
        if event.client_order_id != self.client_order_id:
            raise OrderStateError(
                f"event {type(event).__name__} has client_order_id {event.client_order_id!r}; "
                f"expected {self.client_order_id!r}"
            )
        if self.is_terminal:
            raise OrderStateError(
                f"order {self.client_order_id} is {self.status.value} (terminal); "
                f"{type(event).__name__} cannot change it"
            )
        to = self.target_status(event)
        if not is_legal(self.status, to):
            raise OrderStateError(
                f"order {self.client_order_id}: {type(event).__name__} would move it from "
                f"{self.status.value} to {to.value}; the state table does not allow that move"
            )
        update: dict[str, object] = {
            "status": to,
            "updated_at": max(self.updated_at, event.ts),
            "event_count": self.event_count + 1,
        }
        match event:
            case OrderAccepted():
                if self.venue_order_id is not None and self.venue_order_id != event.venue_order_id:
                    raise OrderStateError(
                        f"order {self.client_order_id}: OrderAccepted venue_order_id = "
                        f"{event.venue_order_id!r}; the order already has {self.venue_order_id!r}"
                    )
                update["venue_order_id"] = event.venue_order_id
            case OrderFilled():
                update.update(self._fill_update(event))
            case OrderRejected():
                if self.filled_quantity > 0:
                    raise OrderStateError(
                        f"order {self.client_order_id}: OrderRejected after {self.filled_quantity} "
                        "filled; expected a rejection only before any fill"
                    )
                update["reason"] = event.reason
            case OrderCanceled():
                update["reason"] = event.reason
            case _:
                pass
        return self.model_copy(update=update)

    def _fill_update(self, fill: OrderFilled) -> dict[str, object]:
        if fill.symbol != self.symbol or fill.side != self.side:
            raise OrderStateError(
                f"order {self.client_order_id}: fill {fill.fill_id} is {fill.side.value} "
                f"{fill.symbol}; expected {self.side.value} {self.symbol}"
            )
        if self.has_fill(fill.fill_id):
            raise OrderStateError(
                f"order {self.client_order_id}: fill_id {fill.fill_id!r} was already applied; "
                "expected each fill once"
            )
        filled = self.filled_quantity + fill.quantity
        if filled > self.quantity:
            raise OrderStateError(
                f"order {self.client_order_id}: fill {fill.fill_id} of {fill.quantity} brings "
                f"filled_quantity to {filled}; expected at most the order quantity {self.quantity}"
            )
        return {
            "filled_quantity": filled,
            "filled_notional": self.filled_notional + fill.notional,
            "fees": self.fees + fill.fee,
            "fill_ids": (*self.fill_ids, fill.fill_id),
        }


__all__ = ["TRANSITIONS", "Order", "is_legal"]
