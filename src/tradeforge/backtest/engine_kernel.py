"""The compiled path loop of the backtester: ``tradeforge.sim.kernel.account_step`` bar by bar.

``simulate_path`` runs one account over a range of decision bars in one compiled loop. It holds
no market arithmetic of its own: every bar is one call of :func:`tradeforge.sim.kernel.account_step`
(the compiled one-account ``tradeforge.sim.step`` that the single ``TradingEnv`` also runs), with
the parameters packed by :func:`tradeforge.sim.kernel.pack_sim_params` and the market stacked by
:func:`tradeforge.sim.kernel.stack_market`. The loop only hands each bar its slice of the path's output array and
keeps the shares, equity, cash, borrow, margin and interest of every bar.
``run_backtest`` uses it when numba is installed (``kernel="auto"`` or ``"numba"``) and loops over
``sim.step`` otherwise; tests check both equal (to float rounding of the sums over assets: a
sequential sum in the kernel, a pairwise one in numpy).

Compilation is lazy (first call) and cached on disk under a key that includes a digest of this
file and of every module it imports (``tradeforge.sim.jit``): an edit of
``tradeforge/sim/kernel.py`` recompiles this loop too. Nothing is compiled on import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tradeforge.core.errors import BacktestError
from tradeforge.core.types import FloatArray
from tradeforge.sim import kernel as _sim_kernel
from tradeforge.sim.kernel import account_step, jit

# Rows of ``out_scalars`` (``simulate_path``).
SC_PREV_EQUITY, SC_EQUITY, SC_CASH, SC_BORROW, SC_MARGIN, SC_INTEREST = range(6)
N_SCALARS = 6


@jit
def simulate_path(
    weights: FloatArray,
    market: FloatArray,
    start: int,
    stop: int,
    cash0: float,
    params: FloatArray,
    out: FloatArray,
    out_shares: FloatArray,
    out_scalars: FloatArray,
) -> None:
    """Run decision bars ``t = start .. stop-1`` (fills at t+1) for one account from ``cash0``.

    ``weights`` (T, N) are the targets (NaN = hold); ``market`` is ``stack_market(...)``;
    ``params`` is ``pack_sim_params(config)``. For row ``i = t - start`` it writes
    ``out[:, i]`` (``out`` is (7, L, N): the rows ``OUT_*`` of ``account_step``, i.e. traded
    shares, fill price, commission, spread, slippage, impact and held weights after the fill),
    ``out_shares[i]`` (shares after the fill) and ``out_scalars[k, i]`` for the ``SC_*`` rows
    k = prev_equity, equity, cash, borrow, margin, interest.
    """
    n = weights.shape[1]
    shares = np.zeros(n)
    cash = cash0
    for t in range(start, stop):
        i = t - start
        cash, prev_equity, equity, borrow, margin, interest = account_step(
            shares, cash, weights[t], market, t, params, out[:, i, :]
        )
        for j in range(n):
            out_shares[i, j] = shares[j]
        out_scalars[SC_PREV_EQUITY, i] = prev_equity
        out_scalars[SC_EQUITY, i] = equity
        out_scalars[SC_CASH, i] = cash
        out_scalars[SC_BORROW, i] = borrow
        out_scalars[SC_MARGIN, i] = margin
        out_scalars[SC_INTEREST, i] = interest


@jit
def traded_values(traded: FloatArray, fill_price: FloatArray, out: FloatArray) -> None:
    """``out = abs(where(traded != 0, traded * fill_price, 0))`` elementwise, in one pass over the
    (L, N) arrays (the traded notional per fill; 0 where nothing traded, whatever the price)."""
    n_rows, n = traded.shape
    for i in range(n_rows):
        for j in range(n):
            x = traded[i, j]
            out[i, j] = abs(x * fill_price[i, j]) if x != 0.0 else 0.0


def numba_available() -> bool:
    """True when numba can be imported (the compiled kernel is then used by default)."""
    return bool(_sim_kernel.NUMBA_AVAILABLE)


def compiled_kernel() -> Callable[..., Any]:
    """The compiled ``simulate_path`` (compiled on its first call, then loaded from the cache)."""
    if not numba_available():
        raise BacktestError(
            "kernel = 'numba' but numba is not installed; pip install numba, or use "
            "kernel = 'auto' or 'step'"
        )
    kernel: Callable[..., Any] = simulate_path
    return kernel


__all__ = [
    "N_SCALARS",
    "SC_BORROW",
    "SC_CASH",
    "SC_EQUITY",
    "SC_INTEREST",
    "SC_MARGIN",
    "SC_PREV_EQUITY",
    "compiled_kernel",
    "numba_available",
    "simulate_path",
    "traded_values",
]
