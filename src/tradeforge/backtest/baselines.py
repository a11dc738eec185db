"""Baseline strategies as target-weight matrices, free of lookahead.

Every baseline returns a float64 array of shape ``(T, N)`` aligned with ``panel.index``: row ``t``
holds the target weights decided at the close of bar ``t`` from closes up to and including ``t``
(they fill at bar ``t + 1`` in :func:`tradeforge.backtest.engine.run_backtest`). A NaN row means
"no decision, keep holding" (weights then drift with prices); a zero row means "all cash".

All baselines hold cash before their first decision bar ``start`` (default ``train_end``: the first
bar after the training window), always decide at ``start`` and then follow their own schedule.
A symbol without a close at ``t`` gets weight 0 at ``t``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.core.errors import BacktestError
from tradeforge.core.types import BoolArray, FloatArray
from tradeforge.data.panel import BarPanel

_FREQ_ALIASES = {"W": "W", "M": "M", "Q": "Q", "Y": "Y", "A": "Y"}


def rebalance_mask(index: pd.DatetimeIndex, every: int | str, start: int) -> BoolArray:
    """Bars at which a periodic strategy decides.

    ``every`` is a number of bars (decide at ``start``, ``start + every``, ...) or a calendar
    frequency ``"W"``, ``"M"``, ``"Q"``, ``"Y"``: decide at the first bar of each new period (known
    at that bar, unlike "last bar of the period", which needs the next timestamp). ``start`` is
    always a decision bar.
    """
    n = len(index)
    mask = np.zeros(n, dtype=bool)
    if isinstance(every, str):
        key = every.upper()
        if key not in _FREQ_ALIASES:
            raise BacktestError(
                f"rebalance every = {every!r}; expected a positive bar count or one of W, M, Q, Y"
            )
        naive = index.tz_convert("UTC").tz_localize(None)
        periods = naive.to_period(_FREQ_ALIASES[key]).asi8
        mask[1:] = periods[1:] != periods[:-1]
    else:
        if int(every) < 1:
            raise BacktestError(f"rebalance every = {every!r}; expected a positive bar count")
        mask[start::every] = True
    mask[:start] = False
    if start < n:
        mask[start] = True
    return mask


def _check_start(panel: BarPanel, start: int | None, train_end: int) -> int:
    s = train_end if start is None else start
    if not 0 <= s < panel.n_bars:
        raise BacktestError(f"start = {s!r}; expected a bar position in [0, {panel.n_bars - 1}]")
    return int(s)


def _normalise(selected: FloatArray, close: FloatArray) -> FloatArray:
    """Equal weights over the selected, priced symbols of each row (rows with none -> cash)."""
    sel = np.where(np.isfinite(close), selected, 0.0)
    count = np.abs(sel).sum(axis=1, keepdims=True)
    out: FloatArray = np.divide(sel, count, out=np.zeros_like(sel), where=count > 0)
    return out


def _scheduled(full: FloatArray, mask: BoolArray, start: int) -> FloatArray:
    out = np.where(mask[:, None], full, np.nan)
    out[:start] = 0.0
    return out


def buy_and_hold(panel: BarPanel, train_end: int, start: int | None = None) -> FloatArray:
    """Equal weights over the priced symbols bought once at ``start`` and never rebalanced."""
    s = _check_start(panel, start, train_end)
    mask = np.zeros(panel.n_bars, dtype=bool)
    mask[s] = True
    full = _normalise(np.ones_like(panel.close), panel.close)
    return _scheduled(full, mask, s)


def equal_weight(
    panel: BarPanel, train_end: int, every: int | str = "M", start: int | None = None
) -> FloatArray:
    """1/N over the priced symbols, rebalanced per :func:`rebalance_mask` (``every``)."""
    s = _check_start(panel, start, train_end)
    full = _normalise(np.ones_like(panel.close), panel.close)
    return _scheduled(full, rebalance_mask(panel.index, every, s), s)


def _trailing_mean(close: FloatArray, window: int) -> FloatArray:
    frame = pd.DataFrame(close)
    return frame.rolling(window, min_periods=window).mean().to_numpy(np.float64)


def ma_crossover(
    panel: BarPanel,
    train_end: int,
    fast: int = 10,
    slow: int = 50,
    allow_short: bool = False,
    start: int | None = None,
) -> FloatArray:
    """Long (1/N) each symbol whose fast moving average of closes is above its slow one, else flat
    (or short with ``allow_short``). Decides every bar; warm-up bars hold cash."""
    if not 1 <= fast < slow:
        raise BacktestError(f"ma_crossover fast = {fast}, slow = {slow}; expected 1 <= fast < slow")
    s = _check_start(panel, start, train_end)
    f = _trailing_mean(panel.close, fast)
    sl = _trailing_mean(panel.close, slow)
    valid = np.isfinite(f) & np.isfinite(sl)
    signal = np.where(valid & (f > sl), 1.0, 0.0)
    if allow_short:
        signal = np.where(valid & (f < sl), -1.0, signal)
    n_sym = panel.n_symbols
    priced = np.isfinite(panel.close)
    weights = np.where(priced, signal, 0.0) / max(n_sym, 1)
    return _scheduled(weights, np.ones(panel.n_bars, dtype=bool), s)


MOMENTUM_KINDS = ("auto", "time_series", "cross_sectional")


def momentum(
    panel: BarPanel,
    train_end: int,
    lookback: int = 126,
    top_k: int = 1,
    every: int | str = "M",
    positive_only: bool = False,
    kind: str = "auto",
    start: int | None = None,
) -> FloatArray:
    """Momentum on the trailing return ``close[t] / close[t-lookback] - 1``, decided at each
    rebalance bar from closes up to ``t``.

    * ``kind="time_series"`` (the default for one symbol): each priced symbol holds its 1/N
      slice while its own trailing return is positive, else that slice is cash; one asset is
      long when its trailing return is positive, else all cash (Moskowitz, Ooi & Pedersen,
      2012). ``top_k`` and ``positive_only`` do not apply.
    * ``kind="cross_sectional"`` (the default for several symbols): equal weights in the
      ``top_k`` symbols by trailing return; ``positive_only`` keeps only positive trailing
      returns (else cash). On one asset this is buy-and-hold.
    """
    if lookback < 1 or top_k < 1:
        raise BacktestError(f"momentum lookback = {lookback}, top_k = {top_k}; expected both >= 1")
    if kind not in MOMENTUM_KINDS:
        raise BacktestError(
            f"momentum kind = {kind!r}; expected one of {', '.join(MOMENTUM_KINDS)}"
        )
    s = _check_start(panel, start, train_end)
    close = panel.close
    past = np.full_like(close, np.nan)
    past[lookback:] = close[:-lookback]
    score = close / past - 1.0
    if kind == "time_series" or (kind == "auto" and panel.n_symbols == 1):
        full = _time_series_sleeves(score > 0, close)
    else:
        full = _cross_sectional(score, close, top_k, positive_only)
    return _scheduled(full, rebalance_mask(panel.index, every, s), s)


def _time_series_sleeves(long: BoolArray, close: FloatArray) -> FloatArray:
    """1 / (priced symbols) for each priced symbol flagged ``long``, 0 (cash) for the others."""
    priced = np.isfinite(close)
    count = priced.sum(axis=1, keepdims=True).astype(np.float64)
    flags = np.where(priced & long, 1.0, 0.0)
    out: FloatArray = np.divide(flags, count, out=np.zeros_like(flags), where=count > 0)
    return out


def _cross_sectional(
    score: FloatArray, close: FloatArray, top_k: int, positive_only: bool
) -> FloatArray:
    """Equal weights in the ``top_k`` best-scoring priced symbols of each row."""
    ranked = np.where(np.isfinite(score), score, -np.inf)
    order = np.argsort(-ranked, axis=1, kind="stable")[:, :top_k]
    selected = np.zeros_like(close)
    np.put_along_axis(selected, order, 1.0, axis=1)
    selected = np.where(np.isfinite(score), selected, 0.0)
    if positive_only:
        selected = np.where(score > 0, selected, 0.0)
    return _normalise(selected, close)


def _training_returns(panel: BarPanel, train_end: int, lookback: int | None) -> FloatArray:
    if not 2 < train_end <= panel.n_bars:
        raise BacktestError(
            f"min_variance train_end = {train_end}; expected 3 <= train_end <= {panel.n_bars}"
        )
    close = panel.close[:train_end]
    rets: FloatArray = close[1:] / close[:-1] - 1.0
    if lookback is not None:
        rets = rets[-lookback:]
    return rets


def min_variance_covariance(
    panel: BarPanel, train_end: int, lookback: int | None = None
) -> FloatArray:
    """Sample covariance (ddof=1) of close-to-close returns of bars ``< train_end`` only
    (the last ``lookback`` of them if given). Symbols with missing returns use pairwise rows."""
    rets = _training_returns(panel, train_end, lookback)
    cov = pd.DataFrame(rets).cov(min_periods=2).to_numpy(np.float64)
    if not np.all(np.isfinite(cov)):
        raise BacktestError(
            "min_variance: the training window has too few returns for some symbol; "
            "expected at least 2 per symbol before train_end"
        )
    return cov


def min_variance_weights(cov: FloatArray, long_only: bool = True) -> FloatArray:
    """Fully invested weights minimising ``w' C w`` (long-only by SLSQP, else closed form)."""
    n = cov.shape[0]
    ridge = cov + np.eye(n) * 1e-12 * max(float(np.trace(cov)), 1e-30)
    ones = np.ones(n)
    closed = np.linalg.solve(ridge, ones)
    w0 = closed / closed.sum()
    if not long_only or np.all(w0 >= 0):
        return np.asarray(w0, dtype=np.float64)
    from scipy.optimize import minimize

    scale = 1.0 / max(float(np.max(np.diag(ridge))), 1e-30)
    res = minimize(
        lambda w: float(w @ ridge @ w) * scale,
        np.full(n, 1.0 / n),
        jac=lambda w: 2.0 * (ridge @ w) * scale,
        bounds=[(0.0, 1.0)] * n,
        constraints=[{"type": "eq", "fun": lambda w: float(w.sum() - 1.0)}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    w = np.clip(res.x, 0.0, None)
    return np.asarray(w / w.sum(), dtype=np.float64)


def min_variance(
    panel: BarPanel,
    train_end: int,
    lookback: int | None = None,
    every: int | str = "M",
    long_only: bool = True,
    start: int | None = None,
    min_history: int = 20,
) -> FloatArray:
    """Minimum-variance weights fitted once on the training window (bars ``< train_end``), held
    from ``start`` (default ``train_end``; never earlier than ``train_end - 1``, the first bar at
    which that covariance is known) and rebalanced back to them per ``every``.

    Symbols with fewer than ``min_history`` returns in the training window (e.g. listed later)
    are left out of the fit and get weight 0."""
    s = _check_start(panel, start, train_end)
    if s < train_end - 1:
        raise BacktestError(
            f"min_variance start = {s} is before train_end - 1 = {train_end - 1}; "
            "weights fitted on the training window cannot be used before it ends"
        )
    rets = _training_returns(panel, train_end, lookback)
    usable = np.isfinite(rets).sum(axis=0) >= min_history
    if not usable.any():
        raise BacktestError(
            f"min_variance: no symbol has {min_history} returns before train_end = {train_end}; "
            "expected a longer training window"
        )
    cov = pd.DataFrame(rets[:, usable]).cov(min_periods=2).to_numpy(np.float64)
    if not np.all(np.isfinite(cov)):
        raise BacktestError(
            "min_variance: some symbols share fewer than 2 returns in the training window; "
            "expected overlapping histories"
        )
    w = np.zeros(panel.n_symbols)
    w[usable] = min_variance_weights(cov, long_only)
    full = np.where(np.isfinite(panel.close), w[None, :], 0.0)
    return _scheduled(full, rebalance_mask(panel.index, every, s), s)


def cash(panel: BarPanel, train_end: int, start: int | None = None) -> FloatArray:
    """All cash at every bar."""
    _check_start(panel, start, train_end)
    return np.zeros_like(panel.close)


BASELINES: dict[str, Callable[..., FloatArray]] = {
    "buy_and_hold": buy_and_hold,
    "equal_weight": equal_weight,
    "ma_crossover": ma_crossover,
    "momentum": momentum,
    "min_variance": min_variance,
    "cash": cash,
}


def baseline_weights(name: str, panel: BarPanel, train_end: int, **params: Any) -> FloatArray:
    """Target weights ``(T, N)`` of the baseline ``name`` (see :data:`BASELINES`) with ``params``."""
    if name not in BASELINES:
        raise BacktestError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
    try:
        return BASELINES[name](panel, train_end, **params)
    except TypeError as exc:
        raise BacktestError(f"baseline {name!r}: bad parameters {sorted(params)}: {exc}") from None


def frictionless_returns(panel: BarPanel, weights: FloatArray, start: int = 0) -> pd.Series:
    """Idealised close-to-close returns of target weights: no costs, rebalanced at the close of
    the decision bar, NaN rows hold (weights drift). A quick reference, not the engine: the
    return at ``t + 1`` comes from the weights decided at ``t``. Indexed by ``panel.index[start+1:]``.
    """
    if weights.shape != panel.close.shape:
        raise BacktestError(
            f"weights shape {weights.shape}; expected {panel.close.shape} (bars, symbols)"
        )
    close = np.nan_to_num(panel.close, nan=0.0)
    rel = np.divide(close[1:], close[:-1], out=np.ones_like(close[1:]), where=close[:-1] > 0)
    held = np.zeros(panel.n_symbols)
    out = np.zeros(panel.n_bars - 1 - start)
    for t in range(start, panel.n_bars - 1):
        if not np.all(np.isnan(weights[t])):
            held = np.nan_to_num(weights[t])
        grown = held * rel[t]
        port = 1.0 + float((grown - held).sum())
        out[t - start] = port - 1.0
        held = grown / port if port > 0 else np.zeros_like(held)
    return pd.Series(out, index=panel.index[start + 1 :], name="returns")


__all__ = [
    "BASELINES",
    "MOMENTUM_KINDS",
    "baseline_weights",
    "buy_and_hold",
    "cash",
    "equal_weight",
    "frictionless_returns",
    "ma_crossover",
    "min_variance",
    "min_variance_covariance",
    "min_variance_weights",
    "momentum",
    "rebalance_mask",
]
