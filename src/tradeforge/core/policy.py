"""The ``Policy`` protocol: what backtests and the execution engine need from any trading policy."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tradeforge.core.types import FloatArray


@runtime_checkable
class Policy(Protocol):
    """Maps an observation to target positions (single asset) or portfolio weights.

    Implementations: trained DRL agents loaded from an artifact, baselines, or any user callable
    wrapped to this shape. A policy must not mutate the observation it is given.
    """

    def act(self, observation: FloatArray) -> FloatArray:
        """Return target position(s) in [-1, 1] or portfolio weights for one observation."""
        ...
