"""Is the strategy better than a baseline, or just lucky? Bootstrap and deflated Sharpe tests.

* :func:`stationary_block_bootstrap_sharpe_diff`: Politis & Romano (1994) stationary bootstrap of
  the paired return series (the same resampled bars for both, keeping their correlation and short
  range dependence) giving a percentile confidence interval and a two-sided p-value for the
  difference of annualised Sharpe ratios.
* :func:`optimal_block_length`: the automatic mean block length of Politis & White (2004) with
  the correction of Patton, Politis & White (2009).
* :func:`probabilistic_sharpe_ratio` and :func:`deflated_sharpe_ratio`: Bailey & López de Prado
  (2012, 2014), correcting the Sharpe ratio for non-normal returns and for the configurations
  tried (every tuning trial x ensemble member x seed: their count and the spread of their
  Sharpe ratios, see :func:`trials_from`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from tradeforge.backtest.metrics import clean_returns
from tradeforge.core.errors import BacktestError
from tradeforge.core.types import FloatArray, IntArray

EULER_GAMMA = 0.5772156649015329


def optimal_block_length(x: FloatArray) -> float:
    """Mean block length for the stationary bootstrap, estimated from the data's autocovariances.

    Picks the lag ``m`` after which ``K`` successive autocorrelations are insignificant, uses a
    flat-top lag window over ``M = 2m`` lags to estimate the long-run variance ``g`` and
    ``G = sum |k| * acov(k)``, and returns ``(2 G^2 / D)^(1/3) n^(1/3)`` with ``D = 2 g^2``, capped at
    ``min(3 sqrt(n), n / 3)`` and floored at 1.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n < 10:
        raise BacktestError(f"optimal_block_length needs at least 10 observations, got {n}")
    xc = x - x.mean()
    k_n = max(5, math.ceil(math.sqrt(math.log10(n))))
    m_max = math.ceil(math.sqrt(n)) + k_n
    b_max = math.ceil(min(3.0 * math.sqrt(n), n / 3.0))
    acov = np.array([np.dot(xc[: n - k], xc[k:]) / n for k in range(m_max + 1)])
    rho = acov[1:] / acov[0] if acov[0] > 0 else np.zeros(m_max)
    bound = 2.0 * math.sqrt(math.log10(n) / n)
    insignificant = np.abs(rho) < bound
    m_hat = m_max
    for m in range(1, m_max - k_n + 1):
        if np.all(insignificant[m : m + k_n]):
            m_hat = m
            break
    big_m = min(2 * m_hat, m_max)
    lags = np.arange(-big_m, big_m + 1)
    t = np.abs(lags / big_m)
    window = np.where(t <= 0.5, 1.0, np.where(t <= 1.0, 2.0 * (1.0 - t), 0.0))
    ac = acov[np.abs(lags)]
    g_big = float(np.sum(window * np.abs(lags) * ac))
    g = float(np.sum(window * ac))
    d_sb = 2.0 * g**2
    if d_sb <= 0 or g_big == 0:
        return 1.0
    b = (2.0 * g_big**2 / d_sb) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return float(min(max(b, 1.0), b_max))


def stationary_bootstrap_indices(
    n: int, mean_block: float, n_boot: int, rng: np.random.Generator
) -> IntArray:
    """``(n_boot, n)`` resampled bar indices: blocks with geometric lengths (mean ``mean_block``)
    starting at uniform positions, wrapping around the end of the sample."""
    if mean_block < 1:
        raise BacktestError(f"mean_block = {mean_block}; expected >= 1 bar")
    p = 1.0 / mean_block
    new_start = rng.random((n_boot, n)) < p
    new_start[:, 0] = True
    starts = rng.integers(0, n, (n_boot, n))
    pos = np.arange(n, dtype=np.int64)
    # position at which each bar's block began, then walk forward from that block's start
    began = np.maximum.accumulate(np.where(new_start, pos, 0), axis=1)
    idx: IntArray = (np.take_along_axis(starts, began, axis=1) + (pos - began)) % n
    return idx


def _sharpe_rows(r: FloatArray, ppy: int) -> FloatArray:
    mean = r.mean(axis=-1)
    std = r.std(axis=-1, ddof=1)
    safe = np.where(std > 0, std, 1.0)
    return np.where(std > 0, mean / safe * math.sqrt(ppy), 0.0)


@dataclass(frozen=True)
class SharpeDiffTest:
    """Result of a bootstrap test of ``Sharpe(a) - Sharpe(b)`` (annualised)."""

    sharpe_a: float
    sharpe_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    mean_block: float
    n_boot: int
    n_obs: int


def stationary_block_bootstrap_sharpe_diff(
    a: pd.Series | FloatArray,
    b: pd.Series | FloatArray,
    *,
    n_boot: int = 2000,
    mean_block: float | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    periods_per_year: int = 252,
) -> SharpeDiffTest:
    """Paired stationary bootstrap of the Sharpe difference of ``a`` over ``b``.

    Series are aligned on common timestamps (Series) or by position (arrays). ``mean_block``
    defaults to :func:`optimal_block_length` of ``a - b``. The confidence interval is the
    percentile interval of the resampled differences at level ``1 - alpha``. The two-sided p-value
    of "no difference" centres the bootstrap distribution on zero:
    ``mean(|d* - d| >= |d|)``. Identical inputs give ``diff = 0``, ``p = 1``. Seeded.
    """
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
        ra, rb = joined["a"].to_numpy(np.float64), joined["b"].to_numpy(np.float64)
    else:
        ra, rb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if ra.shape != rb.shape:
            raise BacktestError(f"a has shape {ra.shape}, b {rb.shape}; expected equal lengths")
        both = ~(np.isnan(ra) | np.isnan(rb))
        ra, rb = ra[both], rb[both]
    ra, rb = clean_returns(ra, "a"), clean_returns(rb, "b")
    if ra.size != rb.size or ra.size < 20:
        raise BacktestError(f"bootstrap needs >= 20 paired returns without NaN, got {ra.size}")
    if not 0.0 < alpha < 1.0 or n_boot < 100:
        raise BacktestError(f"alpha = {alpha}, n_boot = {n_boot}; expected 0<alpha<1, n_boot>=100")
    diff_series = ra - rb
    block = float(mean_block) if mean_block is not None else optimal_block_length(diff_series)
    rng = np.random.default_rng(seed)
    ppy = periods_per_year
    sa, sb = float(_sharpe_rows(ra, ppy)), float(_sharpe_rows(rb, ppy))
    d = sa - sb
    chunks = []
    for done in range(0, n_boot, 250):  # bounded memory: 250 resamples at a time
        idx = stationary_bootstrap_indices(ra.size, block, min(250, n_boot - done), rng)
        chunks.append(_sharpe_rows(ra[idx], ppy) - _sharpe_rows(rb[idx], ppy))
    boot = np.concatenate(chunks)
    lo, hi = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    p = float(np.mean(np.abs(boot - d) >= abs(d) - 1e-12))
    return SharpeDiffTest(sa, sb, d, float(lo), float(hi), p, block, n_boot, int(ra.size))


def significance_table(
    strategy: pd.Series,
    baselines: Mapping[str, pd.Series],
    *,
    n_boot: int = 2000,
    mean_block: float | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    periods_per_year: int = 252,
) -> pd.DataFrame:
    """One bootstrap test of the strategy against each baseline, as a table (one row each)."""
    rows = []
    for name, base in baselines.items():
        res = stationary_block_bootstrap_sharpe_diff(
            strategy,
            base,
            n_boot=n_boot,
            mean_block=mean_block,
            alpha=alpha,
            seed=seed,
            periods_per_year=periods_per_year,
        )
        rows.append(
            {
                "baseline": name,
                "sharpe_strategy": res.sharpe_a,
                "sharpe_baseline": res.sharpe_b,
                "sharpe_diff": res.diff,
                "ci_low": res.ci_low,
                "ci_high": res.ci_high,
                "p_value": res.p_value,
                "mean_block": res.mean_block,
                "n_obs": res.n_obs,
            }
        )
    return pd.DataFrame(rows)


_NORMAL = NormalDist()


def _moments(r: FloatArray) -> tuple[float, float, float]:
    """Per-period Sharpe (ddof=1), skewness and non-excess kurtosis from population moments
    (what scipy's skew and kurtosis(fisher=False) give with their default bias=True)."""
    sr = float(r.mean() / r.std(ddof=1))
    c = r - r.mean()
    m2 = float(np.mean(c**2))
    return sr, float(np.mean(c**3)) / m2**1.5, float(np.mean(c**4)) / m2**2


def _checked_returns(returns: pd.Series | FloatArray, what: str) -> FloatArray:
    r = clean_returns(np.asarray(returns, dtype=np.float64))
    if r.size < 3 or r.std(ddof=1) == 0:
        raise BacktestError(f"{what} needs >= 3 non-constant returns, got {r.size}")
    return r


def psr_from_moments(
    sharpe: float, n_obs: int, skew: float, kurtosis: float, sr_benchmark: float = 0.0
) -> float:
    """Probabilistic Sharpe ratio from summary statistics (Bailey & López de Prado, 2012).

    ``PSR = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2))`` with the
    per-period (not annualised) Sharpe ``SR``, benchmark ``SR*`` and non-excess ``kurtosis``
    (3 for normal returns).
    """
    if n_obs < 2:
        raise BacktestError(f"PSR n_obs = {n_obs}; expected >= 2 observations")
    denom = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    z = (sharpe - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(max(denom, 1e-12))
    return float(_NORMAL.cdf(z))


def probabilistic_sharpe_ratio(returns: pd.Series | FloatArray, sr_benchmark: float = 0.0) -> float:
    """P(true Sharpe > ``sr_benchmark``) given the sample's length, skewness and kurtosis.

    ``sr_benchmark`` is per period (divide an annual figure by ``sqrt(periods_per_year)``).
    See :func:`psr_from_moments`.
    """
    r = _checked_returns(returns, "PSR")
    sr, skew, kurt = _moments(r)
    return psr_from_moments(sr, r.size, skew, kurt, sr_benchmark)


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """Expected maximum of ``n_trials`` per-period Sharpe estimates with zero true mean and the given
    variance: ``sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))`` (g = Euler's constant)."""
    if n_trials < 1:
        raise BacktestError(f"n_trials = {n_trials}; expected >= 1")
    if sr_variance < 0:
        raise BacktestError(f"sr_variance = {sr_variance}; expected >= 0")
    if n_trials == 1:
        return 0.0
    g = EULER_GAMMA
    q1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    q2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(sr_variance) * ((1.0 - g) * q1 + g * q2))


TrialSharpes = Sequence[float] | FloatArray | pd.Series


@dataclass(frozen=True)
class Trials:
    """What is known about the configurations tried before the reported one was picked.

    ``count``: every configuration tried (tuning trials x ensemble members x seeds), including
    those whose Sharpe ratio is unknown; ``sharpes``: the finite annualised Sharpe ratios known
    among them (e.g. each member's and seed's validation Sharpe).
    """

    count: int
    sharpes: FloatArray

    @property
    def has_dispersion(self) -> bool:
        """Whether at least two Sharpe ratios are known, so their spread can be measured."""
        return self.sharpes.size >= 2


def trials_from(n_trials: int | None = None, trial_sharpes: TrialSharpes | None = None) -> Trials:
    """The configurations tried, from their Sharpe ratios and/or their count.

    ``n_trials`` defaults to the number of ``trial_sharpes`` (NaN entries count: the configuration
    was tried even if its Sharpe is undefined), else 1. Give it when the count differs from the
    Sharpe ratios known: more (tuning trials pruned before a Sharpe was measured) or fewer (the
    same configurations retrained on several walk-forward folds, each fold adding Sharpe ratios
    that measure the spread but no new configuration).
    """
    ts = (
        np.empty(0)
        if trial_sharpes is None
        else np.asarray(trial_sharpes, dtype=np.float64).reshape(-1)
    )
    count = int(n_trials) if n_trials is not None else max(ts.size, 1)
    if count < 1:
        raise BacktestError(f"n_trials = {n_trials}; expected >= 1 configuration tried")
    return Trials(count, ts[np.isfinite(ts)])


def _sampling_variance(r: FloatArray) -> float:
    """Asymptotic variance of one per-period Sharpe estimate on ``r`` (Mertens, 2002)."""
    sr, skew, kurt = _moments(r)
    return (1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2) / (r.size - 1)


def _trial_variance(r: FloatArray, trials: Trials, periods_per_year: int) -> float:
    """Per-period variance of the trials' Sharpe ratios: their sample variance (ddof=1) when at
    least two are known, else the sampling variance of one Sharpe estimate on ``r``."""
    if trials.has_dispersion:
        return float(np.var(trials.sharpes, ddof=1)) / periods_per_year
    return _sampling_variance(r)


def deflated_sharpe_ratio(
    returns: pd.Series | FloatArray,
    n_trials: int | None = None,
    sr_variance: float | None = None,
    trial_sharpes: TrialSharpes | None = None,
    periods_per_year: int = 252,
) -> float:
    """PSR against the Sharpe one would expect from the best of the configurations tried when
    none has skill (Bailey & López de Prado, 2014).

    The configurations tried are ``trial_sharpes`` (their ANNUALISED Sharpe ratios, as
    :func:`compute_metrics` reports them, one per tuning trial x member x seed) and/or their
    count ``n_trials`` (default: ``len(trial_sharpes)``, else 1; see :func:`trials_from`).
    The variance of their per-period Sharpe ratios is ``sr_variance`` when given, else the sample
    variance of ``trial_sharpes`` (ddof=1, divided by ``periods_per_year``) when at least two are
    finite, else ASSUMED to be the sampling variance of one Sharpe estimate on ``returns``,
    ``(1 - skew SR + (kurt - 1)/4 SR^2) / (n - 1)``: the spread that useless configurations
    would show from noise alone. Decreases as the count grows; equals the PSR against 0 for one.
    """
    r = _checked_returns(returns, "DSR")
    trials = trials_from(n_trials, trial_sharpes)
    if sr_variance is not None and sr_variance < 0:
        raise BacktestError(f"sr_variance = {sr_variance}; expected >= 0")
    var = (
        float(sr_variance)
        if sr_variance is not None
        else _trial_variance(r, trials, periods_per_year)
    )
    return probabilistic_sharpe_ratio(r, expected_max_sharpe(trials.count, var))


def sharpe_inference(
    returns: pd.Series | FloatArray,
    n_trials: int | None = None,
    trial_sharpes: TrialSharpes | None = None,
    periods_per_year: int = 252,
) -> dict[str, float]:
    """Sharpe ratio with PSR (vs 0) and DSR (vs the best of the configurations tried).

    Pass ``trial_sharpes``: the annualised (validation) Sharpe ratio of every configuration
    tried (tuning trial x ensemble member x seed); their count and spread set the bar the DSR
    measures against. ``n_trials`` sets the count when it differs from ``len(trial_sharpes)``
    (see :func:`trials_from`); alone, it gives the count and the spread is assumed (see
    :func:`deflated_sharpe_ratio`).

    Keys: ``sharpe`` (annualised), ``psr``, ``dsr``, ``n_trials`` (configurations tried),
    ``n_trial_sharpes`` (how many finite Sharpe ratios gave the spread; below 2 the spread is
    the assumed sampling error), ``trial_sharpe_std`` (annualised spread used),
    ``expected_max_sharpe`` (annualised Sharpe the best useless trial would show), ``skew``,
    ``kurtosis``, ``n_obs``.
    """
    r = _checked_returns(returns, "sharpe_inference")
    trials = trials_from(n_trials, trial_sharpes)
    sr, skew, kurt = _moments(r)
    var = _trial_variance(r, trials, periods_per_year)
    sr0 = expected_max_sharpe(trials.count, var)
    root = math.sqrt(periods_per_year)
    return {
        "sharpe": sr * root,
        "psr": psr_from_moments(sr, r.size, skew, kurt, 0.0),
        "dsr": psr_from_moments(sr, r.size, skew, kurt, sr0),
        "n_trials": float(trials.count),
        "n_trial_sharpes": float(trials.sharpes.size if trials.has_dispersion else 0),
        "trial_sharpe_std": math.sqrt(var) * root,
        "expected_max_sharpe": sr0 * root,
        "skew": skew,
        "kurtosis": kurt,
        "n_obs": float(r.size),
    }


__all__ = [
    "SharpeDiffTest",
    "TrialSharpes",
    "Trials",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "optimal_block_length",
    "probabilistic_sharpe_ratio",
    "psr_from_moments",
    "sharpe_inference",
    "significance_table",
    "stationary_block_bootstrap_sharpe_diff",
    "stationary_bootstrap_indices",
    "trials_from",
]
