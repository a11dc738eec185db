"""Errors of the domain model (all derive from ``tradeforge.core.errors.TradeforgeError``).

::

    TradeforgeError
    └── DomainError              (also ValueError) an invalid order, event, fill or instrument
        ├── OrderStateError      an event that the order state table does not allow
        └── PortfolioError       a fill the portfolio cannot apply
"""

from __future__ import annotations

from tradeforge.core.errors import TradeforgeError


class DomainError(TradeforgeError, ValueError):
    """A domain object (order, command, event, instrument) has an invalid field."""


class OrderStateError(DomainError):
    """An event would move an order along a transition that the state table forbids (or would
    break an order invariant, such as filling more than the order quantity)."""


class PortfolioError(DomainError):
    """A fill that the portfolio cannot apply (duplicate fill id, bad quantity)."""


__all__ = ["DomainError", "OrderStateError", "PortfolioError"]
