"""Account state for a batch of B independent accounts over N assets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tradeforge.core.errors import SimulationError
from tradeforge.core.types import BoolArray, FloatArray
from tradeforge.sim.config import SimConfig


@dataclass(frozen=True, eq=False)
class AccountState:
    """Cash ``(B,)`` and share holdings ``(B, N)`` of B accounts (float64).

    Treated as immutable: ``step`` returns a new state and never writes into its input.
    """

    cash: FloatArray
    shares: FloatArray

    def __post_init__(self) -> None:
        if self.cash.ndim != 1 or self.shares.ndim != 2:
            raise SimulationError(
                f"AccountState cash has shape {self.cash.shape} and shares {self.shares.shape}; "
                "expected (B,) and (B, N)"
            )
        if self.shares.shape[0] != self.cash.shape[0]:
            raise SimulationError(
                f"AccountState cash has {self.cash.shape[0]} rows but shares has "
                f"{self.shares.shape[0]}; expected the same batch size B"
            )

    @property
    def n_batch(self) -> int:
        return int(self.cash.shape[0])

    @property
    def n_assets(self) -> int:
        return int(self.shares.shape[1])

    def copy(self) -> AccountState:
        return AccountState(cash=self.cash.copy(), shares=self.shares.copy())


def initial_state(config: SimConfig, n_batch: int, n_assets: int) -> AccountState:
    """B accounts holding ``config.initial_cash`` in cash and no shares."""
    if n_batch < 1 or n_assets < 1:
        raise SimulationError(
            f"initial_state n_batch = {n_batch}, n_assets = {n_assets}; expected both >= 1"
        )
    return AccountState(
        cash=np.full(n_batch, float(config.initial_cash), dtype=np.float64),
        shares=np.zeros((n_batch, n_assets), dtype=np.float64),
    )


def reset_rows(state: AccountState, rows: BoolArray, config: SimConfig) -> AccountState:
    """A new state where the rows selected by the boolean mask ``rows`` (B,) start afresh."""
    mask = np.asarray(rows, dtype=bool)
    if mask.shape != (state.n_batch,):
        raise SimulationError(
            f"reset_rows mask has shape {mask.shape}; expected ({state.n_batch},)"
        )
    cash = np.where(mask, float(config.initial_cash), state.cash)
    shares = np.where(mask[:, None], 0.0, state.shares)
    return AccountState(cash=cash, shares=shares)


def holding_values(shares: FloatArray, prices: FloatArray) -> FloatArray:
    """``shares * prices`` with 0 wherever no shares are held (so NaN prices of unheld assets
    never leak into equity)."""
    with np.errstate(invalid="ignore"):
        out: FloatArray = np.where(shares != 0.0, shares * prices, 0.0)
    return out


def equity(state: AccountState, prices: FloatArray) -> FloatArray:
    """Account value ``cash + sum(shares * prices)`` per batch row, shape (B,).

    ``prices`` is (B, N) or (N,) (the same prices for every row). Pass last-known prices
    (``MarketArrays.mark[t]``): a held asset with a NaN price gives NaN equity.
    """
    px = np.asarray(prices, dtype=np.float64)
    if px.shape not in ((state.n_assets,), state.shares.shape):
        raise SimulationError(
            f"equity prices have shape {px.shape}; expected ({state.n_assets},) or "
            f"{state.shares.shape}"
        )
    out: FloatArray = state.cash + holding_values(state.shares, px).sum(axis=1)
    return out


__all__ = ["AccountState", "equity", "holding_values", "initial_state", "reset_rows"]
