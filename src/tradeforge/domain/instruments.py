"""Instruments: what the sizing rules need to know about a tradable asset."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from tradeforge.domain._model import DomainModel, NonNegativeDecimal, PositiveDecimal, SymbolField
from tradeforge.domain.enums import AssetClass


class Instrument(DomainModel):
    """A tradable asset and its broker's trading rules (Alpaca's ``Asset`` flags plus units).

    * ``fractionable``: fractional quantities are allowed (in steps of ``quantity_increment``);
      otherwise quantities are whole multiples of ``lot_size``.
    * ``lot_size``: the trading unit when not fractionable (1 share for US equities).
    * ``quantity_increment``: the smallest fractional step (Alpaca: 1e-9 shares).
    * ``min_notional``: orders worth less than this (at the reference price) are not placed
      (Alpaca: $1 for fractional orders).
    * ``price_increment``: the tick; limit prices are rounded to it.
    * ``tradable``, ``shortable``: broker flags; a non-tradable asset gets no order, a
      non-shortable one no short position.
    """

    symbol: SymbolField
    asset_class: AssetClass = AssetClass.EQUITY
    fractionable: bool = False
    lot_size: PositiveDecimal = Decimal(1)
    quantity_increment: PositiveDecimal = Decimal("0.000000001")
    min_notional: NonNegativeDecimal = Decimal(0)
    price_increment: PositiveDecimal = Decimal("0.01")
    tradable: bool = True
    shortable: bool = Field(default=False)


__all__ = ["Instrument"]
