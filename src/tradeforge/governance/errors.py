"""Errors of model governance (all derive from ``tradeforge.core.errors.TradeforgeError``).

::

    TradeforgeError
    └── GovernanceError          a gate's evidence is missing or invalid, a lifecycle call is
        │                        malformed (unknown alias, bad version)
        └── PromotionRefused     a guarded alias move was refused: a required gate failed or
                                 is missing and no valid second approver was given
"""

from __future__ import annotations

from tradeforge.core.errors import TradeforgeError


class GovernanceError(TradeforgeError, ValueError):
    """Gate evidence missing or invalid, or a malformed lifecycle call."""


class PromotionRefused(GovernanceError):
    """A guarded alias move (``canary``, ``champion``...) was refused."""


__all__ = ["GovernanceError", "PromotionRefused"]
