"""Commands: what the system asks a broker to do, named ``<Verb><Noun>`` (imperative).

A command is a request; the events (``domain.events``) say what happened.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import model_validator

from tradeforge.domain._model import (
    ClientOrderIdField,
    DomainModel,
    PositiveDecimal,
    StrategyIdField,
    SymbolField,
)
from tradeforge.domain.enums import OrderSide, OrderType, TimeInForce
from tradeforge.domain.errors import DomainError


class SubmitOrder(DomainModel):
    """Place one order.

    ``limit_price`` is required for ``limit`` and ``stop_limit`` orders and forbidden otherwise;
    ``stop_price`` is required for ``stop`` and ``stop_limit`` and forbidden otherwise.
    ``quantity`` is in units of the instrument (shares), > 0; the side gives the direction.
    """

    client_order_id: ClientOrderIdField
    strategy_id: StrategyIdField
    symbol: SymbolField
    side: OrderSide
    quantity: PositiveDecimal
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.DAY
    limit_price: PositiveDecimal | None = None
    stop_price: PositiveDecimal | None = None

    @model_validator(mode="after")
    def _check_prices(self) -> SubmitOrder:
        for name, needed in (
            ("limit_price", self.order_type.needs_limit_price),
            ("stop_price", self.order_type.needs_stop_price),
        ):
            value = getattr(self, name)
            if needed and value is None:
                raise DomainError(
                    f"SubmitOrder {self.client_order_id}: {name} = None; a "
                    f"{self.order_type.value} order needs a {name} > 0"
                )
            if not needed and value is not None:
                raise DomainError(
                    f"SubmitOrder {self.client_order_id}: {name} = {value}; expected None for a "
                    f"{self.order_type.value} order"
                )
        return self

    @property
    def signed_quantity(self) -> Decimal:
        """``quantity`` with the sign of the side (+ buy, - sell)."""
        return self.quantity * self.side.sign


class CancelOrder(DomainModel):
    """Ask the broker to cancel an open order (the outcome arrives as an event)."""

    client_order_id: ClientOrderIdField


__all__ = ["CancelOrder", "SubmitOrder"]
