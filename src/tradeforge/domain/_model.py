"""The base of every domain value object, and the annotated field types they share."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from tradeforge.core.config import format_validation_error
from tradeforge.domain.errors import DomainError
from tradeforge.domain.ids import (
    ClientOrderId,
    StrategyId,
    Symbol,
    client_order_id_of,
    strategy_id_of,
    symbol_of,
)


class DomainModel(BaseModel):
    """Immutable and strict about unknown keys. A float given for a Decimal field goes through
    its shortest repr (``0.1`` -> ``Decimal("0.1")``), never its binary expansion. Invalid
    fields raise :class:`~tradeforge.domain.errors.DomainError` naming the field and value."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise DomainError(
                format_validation_error(exc, type(self).__name__, type(self))
            ) from None


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _decimal(value: Decimal | int | str) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value)


#: A timezone-aware timestamp, converted to UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
#: A finite Decimal > 0 (quantities, prices).
PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
#: A finite Decimal >= 0 (fees, filled quantities).
NonNegativeDecimal = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
#: A finite Decimal of any sign (cash, P&L, signed quantities).
FiniteDecimal = Annotated[Decimal, Field(allow_inf_nan=False)]
ClientOrderIdField = Annotated[ClientOrderId, AfterValidator(client_order_id_of)]
StrategyIdField = Annotated[StrategyId, AfterValidator(strategy_id_of)]
SymbolField = Annotated[Symbol, AfterValidator(symbol_of)]

__all__ = [
    "ClientOrderIdField",
    "DomainModel",
    "FiniteDecimal",
    "NonNegativeDecimal",
    "PositiveDecimal",
    "StrategyIdField",
    "SymbolField",
    "UtcDatetime",
]
