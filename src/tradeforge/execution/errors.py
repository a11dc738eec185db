"""Errors of the execution engine (all derive from ``tradeforge.core.errors.TradeforgeError``).

::

    TradeforgeError
    └── ExecutionError
        ├── OmsStoreError           the OMS store cannot be opened, read or written
        ├── SizingError             (also ValueError) bad weights, prices or instruments
        ├── BrokerError             the broker refused a request or cannot be reached
        │   ├── BrokerUnavailableError   transport failure: the outcome is UNKNOWN
        │   └── OrderNotFoundError       the broker has no order with that id
        ├── ReconciliationError     local and broker state differ and nothing explains it
        └── TradingHaltedError      new orders are refused until a reconciliation passes
"""

from __future__ import annotations

from tradeforge.core.errors import TradeforgeError


class ExecutionError(TradeforgeError):
    """Root of the execution engine's errors."""


class OmsStoreError(ExecutionError):
    """The OMS store cannot be opened, read or written, or holds inconsistent rows."""


class SizingError(ExecutionError, ValueError):
    """Target weights cannot be turned into orders (bad weight, price or instrument)."""


class BrokerError(ExecutionError):
    """The broker refused a request or could not be reached."""


class BrokerUnavailableError(BrokerError):
    """The request may or may not have reached the broker (timeout, disconnect, 5xx): the
    outcome is unknown and must be resolved by looking the order up by client id."""


class OrderNotFoundError(BrokerError, KeyError):
    """The broker has no order with the given id."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ReconciliationError(ExecutionError):
    """Local orders or positions differ from the broker's and nothing explains the difference."""


class TradingHaltedError(ExecutionError):
    """New orders are refused: the last reconciliation found an unexplained difference."""


__all__ = [
    "BrokerError",
    "BrokerUnavailableError",
    "ExecutionError",
    "OmsStoreError",
    "OrderNotFoundError",
    "ReconciliationError",
    "SizingError",
    "TradingHaltedError",
]
