"""Calibrating the lower CUSUM on returns by bootstrapping the out-of-sample returns.

The CUSUM watches standardised bar returns ``z = (r - mean) / std`` (mean and standard deviation
of the out-of-sample returns) for a fall in the mean:
``S_t = max(0, S_{t-1} - z_t - k)``, alarm when ``S_t > h``, then ``S = 0``. The average run
length without a change (ARL0) depends on the return distribution (fat tails, volatility
clusters), so ``h`` is chosen on streams resampled from the out-of-sample record with a moving
block bootstrap (blocks keep short-range dependence) rather than from a normal table.

Run lengths are computed without a loop over paths: before its first alarm, the CUSUM equals
``W_t - min(0, min_{s <= t} W_s)`` with ``W_t`` the cumulative sum of ``-z - k`` (Lindley's
recursion), so the first passage above every ``h`` comes from one running maximum per path.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from tradeforge.core.errors import ConfigError, DataValidationError
from tradeforge.core.types import FloatArray, IntArray
from tradeforge.monitor.config import CusumConfig

MIN_RETURNS = 30
_CHUNK = 200  # paths simulated at once (path_length floats each)


class CusumCalibration(BaseModel):
    """The calibrated CUSUM: standardisation, ``k``, ``h`` and what the bootstrap measured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mean: float
    std: float
    k: float
    h: float
    target_arl0: float
    margin: float
    confidence: float
    arl0_bootstrap: float
    n_returns: int
    block_length: int
    n_paths: int
    path_length: int
    seed: int

    def standardise(self, returns: FloatArray) -> FloatArray:
        """``(returns - mean) / std``."""
        out: FloatArray = (np.asarray(returns, dtype=np.float64) - self.mean) / self.std
        return out


def block_bootstrap(
    values: FloatArray, n_paths: int, length: int, block_length: int, rng: np.random.Generator
) -> FloatArray:
    """``(n_paths, length)`` streams of consecutive blocks drawn (with replacement) from ``values``."""
    x = np.asarray(values, dtype=np.float64)
    b = max(1, min(int(block_length), x.size))
    n_blocks = -(-length // b)
    starts = rng.integers(0, x.size - b + 1, size=(n_paths, n_blocks))
    idx = (starts[:, :, None] + np.arange(b)).reshape(n_paths, -1)[:, :length]
    out: FloatArray = x[idx]
    return out


def cusum_running_max(z: FloatArray, k: float) -> FloatArray:
    """Running maximum of the lower CUSUM of each row of ``z`` (no restart), shape of ``z``."""
    w = np.cumsum(-np.asarray(z, dtype=np.float64) - k, axis=1)
    s = w - np.minimum(0.0, np.minimum.accumulate(w, axis=1))
    out: FloatArray = np.maximum.accumulate(s, axis=1)
    return out


def run_lengths(z: FloatArray, k: float, h: float) -> IntArray:
    """Bars until the first alarm (1-based) on each row of ``z``; ``z.shape[1]`` when none."""
    reached = cusum_running_max(np.atleast_2d(z), k) > h
    first = np.argmax(reached, axis=1) + 1
    out: IntArray = np.where(reached.any(axis=1), first, reached.shape[1]).astype(np.int64)
    return out


def average_run_length(z: FloatArray, k: float, h: float) -> float:
    """Mean bars to the first alarm over the rows of ``z`` (censored rows count their length)."""
    return float(run_lengths(z, k, h).mean())


def _passage_sorted(maxima: npt.NDArray[np.floating[Any]], h: float) -> float:
    """Mean first passage above ``h`` from per-path running maxima (each row non-decreasing)."""
    counts = (maxima <= h).sum(axis=1) + 1
    return float(np.minimum(counts, maxima.shape[1]).mean())


def _pessimistic(z: FloatArray, confidence: float) -> FloatArray:
    """Standardised returns as they would look if the mean were lower and the spread wider than
    estimated, by the one-sided ``confidence`` bounds of the two estimates (normal approximation;
    the spread's standard error uses the sample kurtosis)."""
    n = z.size
    if confidence <= 0.5:
        return z
    q = NormalDist().inv_cdf(confidence)
    kurtosis = float(np.mean(z**4))
    se_std = math.sqrt(max(kurtosis - 1.0, 0.0) / (4.0 * n))
    out: FloatArray = z * (1.0 + q * se_std) - q / math.sqrt(n)
    return out


def calibrate_cusum(returns: FloatArray, config: CusumConfig | None = None) -> CusumCalibration:
    """The smallest ``h`` (to 1e-3) with bootstrap ARL0 >= ``target_arl0 * margin``."""
    cfg = config or CusumConfig()
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    r = r[np.isfinite(r)]
    if r.size < MIN_RETURNS:
        raise DataValidationError(
            f"oos_returns has {r.size} finite values; expected at least {MIN_RETURNS} to "
            "calibrate the CUSUM"
        )
    std = float(r.std(ddof=1))
    if not std > 0:
        raise DataValidationError(
            f"oos_returns have standard deviation {std}; expected a positive spread"
        )
    goal = cfg.target_arl0 * cfg.margin
    if cfg.path_length < 10 * goal:
        raise ConfigError(
            f"cusum.path_length = {cfg.path_length}; expected at least 10 x target_arl0 x margin "
            f"= {math.ceil(10 * goal)} so censored runs do not bias the ARL0"
        )
    mean = float(r.mean())
    z = _pessimistic((r - mean) / std, cfg.confidence)
    rng = np.random.default_rng(cfg.seed)
    maxima = []
    for start in range(0, cfg.n_paths, _CHUNK):
        paths = block_bootstrap(
            z, min(_CHUNK, cfg.n_paths - start), cfg.path_length, cfg.block_length, rng
        )
        maxima.append(cusum_running_max(paths, cfg.k).astype(np.float32))
    grid = np.concatenate(maxima, axis=0)
    lo, hi = 0.0, 1.0
    while _passage_sorted(grid, hi) < goal:
        lo, hi = hi, hi * 2.0
        if hi > 1e4:
            raise DataValidationError(
                f"cusum: no h <= 1e4 reaches ARL0 {goal:.0f} on the bootstrap of {r.size} returns"
            )
    while hi - lo > 1e-3:
        mid = 0.5 * (lo + hi)
        if _passage_sorted(grid, mid) >= goal:
            hi = mid
        else:
            lo = mid
    return CusumCalibration(
        mean=mean,
        std=std,
        k=cfg.k,
        h=math.ceil(hi * 1e4) / 1e4,
        target_arl0=cfg.target_arl0,
        margin=cfg.margin,
        confidence=cfg.confidence,
        arl0_bootstrap=_passage_sorted(grid, hi),
        n_returns=int(r.size),
        block_length=cfg.block_length,
        n_paths=cfg.n_paths,
        path_length=cfg.path_length,
        seed=cfg.seed,
    )


__all__ = [
    "CusumCalibration",
    "average_run_length",
    "block_bootstrap",
    "calibrate_cusum",
    "cusum_running_max",
    "run_lengths",
]
