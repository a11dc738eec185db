"""Positions and the portfolio: pure state that fills move (``apply_fill`` returns a new value).

Accounting (all Decimal, exact up to the 28 significant digits of the default context):

* a fill that opens or adds to a position moves the average price to the quantity-weighted
  mean of the old average and the fill price;
* a fill that reduces a position realises ``closed_qty * (price - avg_price)`` for a long
  (the opposite sign for a short) and leaves the average price unchanged; a fill that crosses
  zero closes the old position and opens the remainder at the fill price;
* cash moves by ``-signed_qty * price - fee``; fees are kept apart from realised P&L.

Hence, for every sequence of fills: ``equity(marks) - initial cash == realized_pnl +
unrealized_pnl(marks) - fees``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from tradeforge.domain._model import DomainModel, FiniteDecimal, NonNegativeDecimal, SymbolField
from tradeforge.domain.errors import PortfolioError
from tradeforge.domain.events import OrderFilled
from tradeforge.domain.ids import Symbol

_ZERO = Decimal(0)


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


class Position(DomainModel):
    """A signed holding of one symbol (> 0 long, < 0 short, 0 flat) and its history.

    ``avg_price`` is the average entry price of the open quantity (0 when flat);
    ``realized_pnl`` excludes fees, which are summed in ``fees``.
    """

    symbol: SymbolField
    quantity: FiniteDecimal = _ZERO
    avg_price: NonNegativeDecimal = _ZERO
    realized_pnl: FiniteDecimal = _ZERO
    fees: NonNegativeDecimal = _ZERO

    @property
    def is_flat(self) -> bool:
        return self.quantity == 0

    def market_value(self, mark: Decimal) -> Decimal:
        return self.quantity * mark

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        return self.quantity * (mark - self.avg_price)

    def apply_fill(
        self, signed_quantity: Decimal, price: Decimal, fee: Decimal = _ZERO
    ) -> Position:
        """The position after trading ``signed_quantity`` (+ buy, - sell) at ``price``."""
        if signed_quantity == 0 or not signed_quantity.is_finite():
            raise PortfolioError(
                f"fill of {self.symbol}: quantity = {signed_quantity}; expected a non-zero number"
            )
        if not (price.is_finite() and price > 0) or not (fee.is_finite() and fee >= 0):
            raise PortfolioError(
                f"fill of {self.symbol}: price = {price}, fee = {fee}; expected price > 0 and "
                "fee >= 0"
            )
        q, d = self.quantity, signed_quantity
        avg, realized = self.avg_price, self.realized_pnl
        if q == 0 or _sign(q) == _sign(d):
            new_q = q + d
            avg = (abs(q) * avg + abs(d) * price) / abs(new_q)
        else:
            closed = min(abs(d), abs(q))
            realized += closed * (price - avg) * _sign(q)
            new_q = q + d
            if new_q == 0:
                avg = _ZERO
            elif _sign(new_q) != _sign(q):
                avg = price  # crossed zero: the remainder opens at the fill price
        return self.model_copy(
            update={"quantity": new_q, "avg_price": avg, "realized_pnl": realized,
                    "fees": self.fees + fee}
        )  # fmt: skip


class Portfolio(DomainModel):
    """Cash and positions of one account (the OMS's view), rebuilt from fills alone.

    ``positions`` holds every symbol ever traded (flat ones keep their realised P&L), sorted
    by symbol.
    """

    cash: FiniteDecimal
    positions: tuple[Position, ...] = ()

    def position(self, symbol: Symbol) -> Position:
        """The position in ``symbol`` (flat if never traded)."""
        for pos in self.positions:
            if pos.symbol == symbol:
                return pos
        return Position(symbol=symbol)

    def quantities(self) -> dict[Symbol, Decimal]:
        """Non-zero holdings by symbol."""
        return {p.symbol: p.quantity for p in self.positions if p.quantity != 0}

    def apply_fill(self, fill: OrderFilled) -> Portfolio:
        """The portfolio after ``fill`` (cash and the fill's position change)."""
        new_pos = self.position(fill.symbol).apply_fill(fill.signed_quantity, fill.price, fill.fee)
        others = [p for p in self.positions if p.symbol != fill.symbol]
        positions = tuple(sorted([*others, new_pos], key=lambda p: p.symbol))
        cash = self.cash - fill.signed_quantity * fill.price - fill.fee
        return self.model_copy(update={"cash": cash, "positions": positions})

    def _mark(self, marks: Mapping[Symbol, Decimal], pos: Position) -> Decimal:
        try:
            return marks[pos.symbol]
        except KeyError:
            raise PortfolioError(
                f"marks has no price for held symbol {pos.symbol!r}; expected a mark for every "
                f"non-flat position ({sorted(self.quantities())})"
            ) from None

    def market_value(self, marks: Mapping[Symbol, Decimal]) -> Decimal:
        """Sum of ``quantity * mark`` over non-flat positions (a mark is needed for each)."""
        return sum((p.quantity * self._mark(marks, p) for p in self.positions if not p.is_flat),
                   _ZERO)  # fmt: skip

    def equity(self, marks: Mapping[Symbol, Decimal]) -> Decimal:
        return self.cash + self.market_value(marks)

    @property
    def realized_pnl(self) -> Decimal:
        return sum((p.realized_pnl for p in self.positions), _ZERO)

    @property
    def fees(self) -> Decimal:
        return sum((p.fees for p in self.positions), _ZERO)

    def unrealized_pnl(self, marks: Mapping[Symbol, Decimal]) -> Decimal:
        return sum((p.unrealized_pnl(self._mark(marks, p)) for p in self.positions
                    if not p.is_flat), _ZERO)  # fmt: skip


__all__ = ["Portfolio", "Position"]
