"""Errors of the audit log (all derive from ``tradeforge.core.errors.TradeforgeError``).

::

    TradeforgeError
    └── AuditError               the audit log cannot be opened, written or read, or an entry
                                 is invalid (bad kind, correlation id or payload)
"""

from __future__ import annotations

from tradeforge.core.errors import TradeforgeError


class AuditError(TradeforgeError, ValueError):
    """The audit log cannot be opened, written or read, or an entry to write is invalid."""


__all__ = ["AuditError"]
