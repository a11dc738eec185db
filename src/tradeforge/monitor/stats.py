"""Batch drift statistics: PSI on reference bins, KS against a reference CDF, long-run spread.

Everything here is a pure function of arrays. The reference side of each test comes from a
:class:`~tradeforge.monitor.profile.Marginal` (bin edges and fractions, quantiles), so a live
sample is compared with the training distribution without keeping the training data.

* **PSI** ``sum((a - e) * ln(a / e))`` over the reference bins, with both fractions floored at
  ``epsilon`` so an empty bin gives a large but finite value.
* **KS** one-sample statistic ``D = sup |F_live - F_ref|`` where ``F_ref`` is the reference CDF
  interpolated between its stored quantiles. Its p-value uses the exact one-sample distribution
  (``scipy.stats.kstwo``) at the effective size ``n_e = n' m / (n' + m)``: ``m`` reference values,
  and ``n' = n (1 - rho) / (1 + rho)`` live values discounted for the reference lag-1
  autocorrelation ``rho > 0`` (a persistent feature carries less information per bar).
* **Long-run standard deviation** (Bartlett / Newey-West): the scale of a cumulative sum of an
  autocorrelated stream, which is what sequential detectors (Page-Hinkley, ADWIN) accumulate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from tradeforge.core.errors import ConfigError
from tradeforge.core.types import FloatArray

PSI_EPSILON = 1e-4


def bin_fractions(values: FloatArray, edges: FloatArray) -> FloatArray:
    """Share of ``values`` in each bin ``(-inf, e0), [e0, e1), ..., [e_last, inf)``."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n_bins = len(edges) + 1
    if x.size == 0:
        return np.full(n_bins, np.nan)
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), x, side="right")
    counts = np.bincount(idx, minlength=n_bins).astype(np.float64)
    out: FloatArray = counts / x.size
    return out


def psi(actual: FloatArray, expected: FloatArray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of bin fractions ``actual`` against ``expected``."""
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    if a.shape != e.shape:
        raise ConfigError(f"psi: actual has {a.shape[0]} bins, expected has {e.shape[0]}")
    if np.isnan(a).any():
        return math.nan
    return float(np.sum((a - e) * np.log(a / e)))


def psi_of(values: FloatArray, edges: FloatArray, reference: FloatArray, epsilon: float) -> float:
    """PSI of raw ``values`` binned on ``edges`` against the reference fractions."""
    return psi(bin_fractions(values, edges), reference, epsilon)


def padded_bins(
    edges: Sequence[Sequence[float]], fractions: Sequence[Sequence[float]]
) -> tuple[FloatArray, FloatArray]:
    """``(C, B - 1)`` edges padded with +inf and ``(C, B)`` fractions padded with 0, for
    :func:`psi_columns` (B the largest bin count)."""
    width = max((len(e) for e in edges), default=0)
    e_out = np.full((len(edges), width), np.inf)
    f_out = np.zeros((len(edges), width + 1))
    for j, (e, f) in enumerate(zip(edges, fractions, strict=True)):
        e_out[j, : len(e)] = e
        f_out[j, : len(f)] = f
    return e_out, f_out


def bin_hits(data: FloatArray, edges: FloatArray, n_bins: int) -> npt.NDArray[np.bool_]:
    """``(rows, C, n_bins)``: which of its :func:`padded_bins` each non-NaN value falls in."""
    x = np.asarray(data, dtype=np.float64)
    valid = ~np.isnan(x)
    idx = (x[:, :, None] >= edges[None, :, :]).sum(axis=2)
    out: npt.NDArray[np.bool_] = (idx[:, :, None] == np.arange(n_bins)) & valid[:, :, None]
    return out


def bin_counts(data: FloatArray, edges: FloatArray, n_bins: int) -> FloatArray:
    """``(C, n_bins)`` counts of the non-NaN values of each column of ``data`` (rows, C)."""
    out: FloatArray = bin_hits(data, edges, n_bins).sum(axis=0).astype(np.float64)
    return out


def psi_from_counts(
    counts: FloatArray, expected: FloatArray, epsilon: float = PSI_EPSILON
) -> FloatArray:
    """PSI per row of ``counts`` (C, B) against ``expected`` (C, B); NaN for a row without values.

    A padded bin (expected 0) that the live data does not hit adds nothing.
    """
    n = counts.sum(axis=1)
    actual = counts / np.maximum(n, 1.0)[:, None]
    a = np.maximum(actual, epsilon)
    e = np.maximum(expected, epsilon)
    terms = np.where((expected == 0) & (actual == 0), 0.0, (a - e) * np.log(a / e))
    out: FloatArray = np.where(n > 0, terms.sum(axis=1), np.nan)
    return out


def psi_columns(
    data: FloatArray, edges: FloatArray, expected: FloatArray, epsilon: float = PSI_EPSILON
) -> FloatArray:
    """PSI of every column of ``data`` (rows, C) at once, on :func:`padded_bins` (NaNs dropped)."""
    return psi_from_counts(bin_counts(data, edges, expected.shape[1]), expected, epsilon)


def reference_cdf(
    levels: FloatArray, quantiles: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(x, F, F_left)`` knots of the reference CDF from its quantiles.

    Linear between distinct quantiles. Where quantiles tie (a discrete value) the CDF jumps:
    ``F`` takes the highest level of the tie (the CDF at the value), ``F_left`` the lowest (the
    limit from the left).
    """
    q = np.asarray(quantiles, dtype=np.float64)
    p = np.asarray(levels, dtype=np.float64)
    last = np.append(q[1:] != q[:-1], True)
    first = np.insert(q[1:] != q[:-1], 0, True)
    return q[last], p[last], p[first]


def ks_statistic(values: FloatArray, levels: FloatArray, quantiles: FloatArray) -> float:
    """``sup |F_n - F_ref|`` with ``F_ref`` from :func:`reference_cdf` (ties handled exactly)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return math.nan
    knots, right, left = reference_cdf(levels, quantiles)
    f_right = np.interp(x, knots, right, left=0.0, right=1.0)
    f_left = np.interp(x, knots, left, left=0.0, right=1.0)
    # compare just after each distinct live value (its last copy) and just before it (its first)
    upper = np.arange(1, n + 1) / n
    lower = np.arange(0, n) / n
    last = np.append(x[1:] != x[:-1], True)
    first = np.insert(x[1:] != x[:-1], 0, True)
    d_plus = np.max(upper[last] - f_right[last])
    d_minus = np.max(f_left[first] - lower[first])
    return float(max(d_plus, d_minus, 0.0))


def effective_size(n: int, n_reference: int, rho: float) -> float:
    """Sample size for the KS p-value: live size discounted by ``rho``, combined with the
    reference (at least 1 when there is any live value)."""
    if n <= 0:
        return 0.0
    r = min(max(rho, 0.0), 0.99) if math.isfinite(rho) else 0.0
    n_live = max(1.0, n * (1.0 - r) / (1.0 + r))
    if n_reference <= 0:
        return n_live
    return max(1.0, n_live * n_reference / (n_live + n_reference))


def ks_pvalue(statistic: float, n_effective: float) -> float:
    """P(D >= statistic) for a one-sample KS test of ``n_effective`` (rounded, >= 1) values."""
    if not math.isfinite(statistic) or n_effective < 1:
        return math.nan
    from scipy import stats as sps  # loaded on first use: importing the package stays light

    n = max(1, round(n_effective))
    return float(min(1.0, max(0.0, sps.kstwo.sf(statistic, n))))


def lag1_autocorrelation(values: FloatArray) -> float:
    """Lag-1 autocorrelation along axis 0, averaged over the columns of a 2-D array (NaN-safe)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    out = []
    for col in x.T:
        both = ~np.isnan(col[1:]) & ~np.isnan(col[:-1])
        a, b = col[1:][both], col[:-1][both]
        if a.size < 3 or np.std(a) == 0 or np.std(b) == 0:
            continue
        out.append(float(np.corrcoef(a, b)[0, 1]))
    return float(np.mean(out)) if out else 0.0


def long_run_std(values: FloatArray, max_lag: int | None = None) -> float:
    """Bartlett (Newey-West) long-run standard deviation of a 1-D series (NaNs dropped).

    ``max_lag`` defaults to ``floor(4 (n / 100) ** (2 / 9))``. The result is never below the AR(1)
    implied value ``sd * sqrt((1 + rho) / (1 - rho))`` (``rho`` the lag-1 autocorrelation, clipped
    to [0, 0.99]), which a short Bartlett window underestimates on persistent streams, nor below
    the plain standard deviation (a negatively autocorrelated stream is treated as independent).
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = x.size
    if n < 2:
        return math.nan
    d = x - x.mean()
    gamma0 = float(d @ d) / n
    lags = int(4 * (n / 100.0) ** (2.0 / 9.0)) if max_lag is None else int(max_lag)
    lags = max(0, min(lags, n - 1))
    total = gamma0
    for j in range(1, lags + 1):
        weight = 1.0 - j / (lags + 1.0)
        total += 2.0 * weight * float(d[j:] @ d[:-j]) / n
    # a persistent stream needs more lags than the rule gives: the AR(1) implied long-run
    # variance gamma0 (1 + rho) / (1 - rho) bounds it from below
    rho = min(max(float(d[1:] @ d[:-1]) / n / gamma0 if gamma0 > 0 else 0.0, 0.0), 0.99)
    ar1 = gamma0 * (1.0 + rho) / (1.0 - rho)
    return math.sqrt(max(total, ar1, gamma0))


__all__ = [
    "PSI_EPSILON",
    "bin_counts",
    "bin_fractions",
    "bin_hits",
    "effective_size",
    "ks_pvalue",
    "ks_statistic",
    "lag1_autocorrelation",
    "long_run_std",
    "padded_bins",
    "psi",
    "psi_columns",
    "psi_from_counts",
    "psi_of",
    "reference_cdf",
]
