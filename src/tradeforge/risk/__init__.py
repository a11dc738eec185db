"""tradeforge.risk: hard limits on target weights, shared by training, backtests and trading.

Pure numpy (imports only ``tradeforge.core``): :class:`RiskLimits` and its exact projection,
for one decision (:func:`project_weights`) or a whole ``(T, N)`` weights path
(:func:`project_path`), and :func:`violations` to count what a raw target breaks.
"""

from tradeforge.risk.limits import (
    RiskError,
    RiskLimits,
    project_path,
    project_weights,
    violations,
)

__all__ = ["RiskError", "RiskLimits", "project_path", "project_weights", "violations"]
