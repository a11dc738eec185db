"""Track-record statistics the gates need beyond :mod:`tradeforge.backtest.significance`.

* :func:`min_track_record_length`: Bailey & López de Prado (2012), the number of observations
  needed before the probabilistic Sharpe ratio against ``sr_benchmark`` reaches ``confidence``:
  ``MinTRL = 1 + (1 - skew SR + (kurt - 1)/4 SR^2) (z_c / (SR - SR*))^2`` (per-period Sharpe,
  non-excess kurtosis). Daily normal returns with an annual Sharpe of 1.5 need about 305 bars.
* :func:`max_drawdown` and :func:`bootstrap_drawdown_quantile`: the drawdown of a return path
  and the ``q``-quantile of the drawdown over ``horizon`` bars of stationary-bootstrap paths of
  a reference record (the resampling of :func:`~tradeforge.backtest.significance.stationary_bootstrap_indices`).

PSR and DSR themselves are :func:`~tradeforge.backtest.significance.psr_from_moments` and
:func:`~tradeforge.backtest.significance.sharpe_inference`; they are not re-implemented here.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from tradeforge.backtest.metrics import clean_returns
from tradeforge.backtest.significance import optimal_block_length, stationary_bootstrap_indices
from tradeforge.core.types import FloatArray
from tradeforge.governance.errors import GovernanceError


def min_track_record_length(
    sharpe: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
    sr_benchmark: float = 0.0,
    confidence: float = 0.95,
) -> float:
    """Minimum track record length (observations) for ``PSR(sr_benchmark) >= confidence``.

    ``sharpe`` and ``sr_benchmark`` are per period; ``kurtosis`` is non-excess (3 = normal).
    Infinite when ``sharpe <= sr_benchmark`` (no record length proves it)."""
    if not 0.5 < confidence < 1.0:
        raise GovernanceError(f"MinTRL confidence = {confidence}; expected 0.5 < confidence < 1")
    for label, value in (("sharpe", sharpe), ("skew", skew), ("kurtosis", kurtosis)):
        if not math.isfinite(value):
            raise GovernanceError(f"MinTRL {label} = {value}; expected a finite number")
    if sharpe <= sr_benchmark:
        return math.inf
    z = NormalDist().inv_cdf(confidence)
    spread = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    return 1.0 + max(spread, 0.0) * (z / (sharpe - sr_benchmark)) ** 2


def max_drawdown(returns: FloatArray) -> float:
    """Largest fall of the compounded equity below its running peak (starting at 1), as a
    POSITIVE fraction (0.25 = 25 % below the peak); 0 for an empty or never-falling path."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if r.size == 0:
        return 0.0
    equity = np.cumprod(1.0 + r)
    peak = np.maximum.accumulate(np.maximum(equity, 1.0))
    return float(max(0.0, -np.min(equity / peak - 1.0)))


def path_drawdowns(paths: FloatArray) -> FloatArray:
    """:func:`max_drawdown` of each row of ``paths`` (positive fractions)."""
    x = np.atleast_2d(np.asarray(paths, dtype=np.float64))
    equity = np.cumprod(1.0 + x, axis=1)
    peak = np.maximum.accumulate(np.maximum(equity, 1.0), axis=1)
    out: FloatArray = np.maximum(0.0, -np.min(equity / peak - 1.0, axis=1))
    return out


def bootstrap_drawdown_quantile(
    reference: FloatArray,
    horizon: int,
    *,
    quantile: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    mean_block: float | None = None,
) -> float:
    """The ``quantile`` of the max drawdown over ``horizon`` bars on stationary-bootstrap paths
    of ``reference`` (mean block: ``mean_block``, else the Politis-White estimate). Seeded."""
    r = clean_returns(np.asarray(reference, dtype=np.float64), "reference returns")
    if r.size < 20:
        raise GovernanceError(
            f"reference returns have {r.size} values; expected at least 20 to bootstrap the "
            "drawdown band"
        )
    if horizon < 1:
        raise GovernanceError(f"drawdown horizon = {horizon}; expected >= 1 bar")
    if not 0.0 < quantile < 1.0:
        raise GovernanceError(f"drawdown quantile = {quantile}; expected 0 < quantile < 1")
    block = float(mean_block) if mean_block is not None else optimal_block_length(r)
    rng = np.random.default_rng(seed)
    pieces = -(-horizon // r.size)  # a horizon beyond the record chains independent resamples
    drawdowns = []
    for done in range(0, n_boot, 250):
        count = min(250, n_boot - done)
        idx = np.concatenate(
            [stationary_bootstrap_indices(r.size, block, count, rng) for _ in range(pieces)],
            axis=1,
        )
        drawdowns.append(path_drawdowns(r[idx[:, :horizon]]))
    return float(np.quantile(np.concatenate(drawdowns), quantile))


__all__ = [
    "bootstrap_drawdown_quantile",
    "max_drawdown",
    "min_track_record_length",
    "path_drawdowns",
]
