"""Slower series (VIX, WTI) joined to bars as of the decision time.

A value stamped ``s`` (and published ``delay`` after it) is used at bar ``t`` only when
``s + delay <= t``: the latest such value, never a later one.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tradeforge.core.errors import FeatureError
from tradeforge.core.types import FloatArray


def load_macro(name: str) -> pd.Series:
    """A bundled macro series by name (VIX, WTI) on a UTC index, stamped with its observation day."""
    from tradeforge.data.bundled import load_macro_series

    return load_macro_series(name)


class AsOfSeries:
    """A slow series prepared for repeated as-of lookups (sorted once, NaN values dropped)."""

    def __init__(self, series: pd.Series, delay: pd.Timedelta | None = None) -> None:
        stamps = pd.DatetimeIndex(series.index)
        if stamps.tz is None:
            raise FeatureError(
                f"macro series {series.name!r} has a naive index; expected UTC timestamps"
            )
        published = stamps.tz_convert("UTC").as_unit("ns").asi8
        if delay is not None:
            published = published + pd.Timedelta(delay).value
        values = series.to_numpy(dtype=np.float64)
        order = np.argsort(published, kind="stable")
        published, values = published[order], values[order]
        keep = ~np.isnan(values)
        self.published: np.ndarray = published[keep]
        self.values: FloatArray = values[keep]

    def at(self, stamps_ns: np.ndarray) -> FloatArray:
        """For each timestamp (int64 ns UTC), the last value published at or before it."""
        pos = np.searchsorted(self.published, stamps_ns, side="right") - 1
        out = np.full(len(stamps_ns), np.nan)
        ok = pos >= 0
        out[ok] = self.values[pos[ok]]
        return out


def asof_values(
    series: pd.Series, index: pd.DatetimeIndex, delay: pd.Timedelta | None = None
) -> FloatArray:
    """For each timestamp in ``index``, the last value of ``series`` published at or before it
    (a value stamped ``s`` counts as published at ``s + delay``)."""
    target = pd.DatetimeIndex(index).tz_convert("UTC").as_unit("ns").asi8
    return AsOfSeries(series, delay).at(target)


def macro_fields(
    names: list[str],
    index: pd.DatetimeIndex,
    n_symbols: int,
    series: Mapping[str, pd.Series] | None,
    delay: pd.Timedelta | None = None,
) -> dict[str, FloatArray]:
    """``{"macro:VIX": (T, N) array}`` for each name, from ``series`` or the bundled data."""
    out: dict[str, FloatArray] = {}
    for name in names:
        key = name.upper()
        s = series[key] if series is not None and key in series else load_macro(key)
        col = asof_values(s, index, delay)
        out[f"macro:{key}"] = np.repeat(col[:, None], n_symbols, axis=1)
    return out


__all__ = ["AsOfSeries", "asof_values", "load_macro", "macro_fields"]
