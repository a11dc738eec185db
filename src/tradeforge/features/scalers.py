"""Feature scalers fitted on a window of rows: z-score, robust (median/IQR) and rank (empirical CDF).

Statistics are per feature, pooled over the symbols and the bars of the fit window. Fitted
state is a few float arrays, so it serializes to ``.npz`` without pickling anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tradeforge.core.errors import FeatureError
from tradeforge.core.types import FloatArray

RANK_POINTS = 201  # quantiles kept for the rank scaler


def fit_scaler(
    kind: str, values: FloatArray, names: Sequence[str], window: str
) -> dict[str, FloatArray]:
    """Fit ``kind`` on ``values`` of shape (T, N, F); NaN rows are ignored."""
    if kind == "none":
        return {}
    flat = values.reshape(-1, values.shape[-1])
    counts = np.sum(~np.isnan(flat), axis=0)
    empty = [n for n, c in zip(names, counts, strict=True) if c < 2]
    if empty:
        raise FeatureError(
            f"scaler {kind!r}: features {empty} have fewer than 2 valid values in the fit window "
            f"{window}; widen the window past the warm-up"
        )
    if kind == "zscore":
        center = np.nanmean(flat, axis=0)
        scale = np.nanstd(flat, axis=0)
        return {"center": center, "scale": _safe_scale(scale)}
    if kind == "robust":
        q25, q50, q75 = np.nanpercentile(flat, [25.0, 50.0, 75.0], axis=0)
        return {"center": q50, "scale": _safe_scale((q75 - q25) / 1.349)}
    if kind == "rank":
        probs = np.linspace(0.0, 1.0, RANK_POINTS)
        return {"quantiles": np.nanquantile(flat, probs, axis=0).T.copy()}  # (F, points)
    raise FeatureError(f"scaler = {kind!r}: unknown; allowed: none, zscore, robust, rank")


def _safe_scale(scale: FloatArray) -> FloatArray:
    """A constant feature keeps its offset removed but is not blown up by a zero scale."""
    return np.where(scale > 1e-12, scale, 1.0)


def apply_scaler(
    kind: str, stats: dict[str, FloatArray], values: FloatArray, clip: float | None
) -> FloatArray:
    """Scale ``values`` (..., F) with fitted ``stats``; NaN stays NaN."""
    if kind == "none":
        out = values.copy()
    elif kind in ("zscore", "robust"):
        out = (values - stats["center"]) / stats["scale"]
    elif kind == "rank":
        out = np.empty_like(values)
        quant = stats["quantiles"]
        probs = np.linspace(-1.0, 1.0, quant.shape[1])
        for f in range(values.shape[-1]):
            col = values[..., f]
            mapped = _interp_cdf(col, quant[f], probs)
            out[..., f] = np.where(np.isnan(col), np.nan, mapped)
    else:
        raise FeatureError(f"scaler = {kind!r}: unknown; allowed: none, zscore, robust, rank")
    if clip is not None and kind != "none":
        out = np.clip(out, -clip, clip)
    return out


def _interp_cdf(x: FloatArray, quantiles: FloatArray, probs: FloatArray) -> FloatArray:
    """Map ``x`` through the fitted CDF; ties in the quantiles take the middle of their span."""
    lo = np.interp(x, quantiles, probs, left=-1.0, right=1.0)
    hi = -np.interp(-x, -quantiles[::-1], -probs[::-1], left=-1.0, right=1.0)
    out: FloatArray = 0.5 * (lo + hi)
    return out


__all__ = ["apply_scaler", "fit_scaler"]
