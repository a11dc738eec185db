"""``FeaturePanel``: feature values of shape (time, symbol, feature) with a readable summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.core.errors import FeatureError
from tradeforge.core.types import FloatArray

MAX_HOLES_LISTED = 20


@dataclass(frozen=True)
class FeaturePanel:
    """Features on the bar panel's time index; NaN during warm-up and where inputs are missing."""

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    names: tuple[str, ...]
    values: FloatArray  # (T, N, F)

    def __post_init__(self) -> None:
        shape = (len(self.index), len(self.symbols), len(self.names))
        if self.values.shape != shape:
            raise FeatureError(
                f"FeaturePanel values have shape {self.values.shape}; expected {shape}"
            )

    @property
    def n_features(self) -> int:
        return len(self.names)

    def feature(self, name: str) -> FloatArray:
        """One feature as a (T, N) array."""
        if name not in self.names:
            raise FeatureError(
                f"feature {name!r} not in this panel; available: {', '.join(self.names)}"
            )
        out: FloatArray = self.values[:, :, self.names.index(name)]
        return out

    def iloc(self, rows: slice) -> FeaturePanel:
        return FeaturePanel(self.index[rows], self.symbols, self.names, self.values[rows])

    def to_frame(self) -> pd.DataFrame:
        """Long format: ``timestamp, symbol`` and one column per feature (all rows kept)."""
        t, n = len(self.index), len(self.symbols)
        data: dict[str, Any] = {
            "timestamp": np.repeat(self.index.values, n),
            "symbol": np.tile(np.array(self.symbols, dtype=object), t),
        }
        flat = self.values.reshape(t * n, -1)
        for f, name in enumerate(self.names):
            data[name] = flat[:, f]
        frame = pd.DataFrame(data)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return frame

    def summary(self) -> dict[str, Any]:
        """A JSON-able report: shape, date range and, per feature, where values are missing.

        Keys: ``rows`` (bars), ``symbols``, ``features`` (names), ``start``/``end`` (ISO UTC),
        ``nan_count`` (all features), ``n_holes`` and ``per_feature``. Per feature:
        ``nan_count``, ``first_valid`` (first bar where every symbol has a value),
        ``first_valid_by_symbol``, ``n_holes`` and ``holes``. A hole is a run of NaN after a
        symbol's first valid value (warm-up is not a hole), listed as ``{"symbol", "start",
        "end", "bars"}``, at most 20 per feature.
        """
        per_feature: dict[str, Any] = {}
        for f, name in enumerate(self.names):
            col = self.values[:, :, f]
            valid = ~np.isnan(col)
            all_valid = np.flatnonzero(valid.all(axis=1))
            holes = _holes(valid, self.index, self.symbols)
            per_feature[name] = {
                "nan_count": int((~valid).sum()),
                "first_valid": _iso(self.index[all_valid[0]]) if len(all_valid) else None,
                "first_valid_by_symbol": {
                    s: _iso(self.index[int(np.argmax(valid[:, j]))]) if valid[:, j].any() else None
                    for j, s in enumerate(self.symbols)
                },
                "n_holes": len(holes),
                "holes": holes[:MAX_HOLES_LISTED],
            }
        return {
            "rows": len(self.index),
            "n_symbols": len(self.symbols),
            "symbols": list(self.symbols),
            "n_features": len(self.names),
            "features": list(self.names),
            "start": _iso(self.index[0]) if len(self.index) else None,
            "end": _iso(self.index[-1]) if len(self.index) else None,
            "nan_count": int(np.isnan(self.values).sum()),
            "n_holes": sum(v["n_holes"] for v in per_feature.values()),
            "per_feature": per_feature,
        }


def _iso(ts: pd.Timestamp) -> str:
    return ts.isoformat()


def _holes(
    valid: np.ndarray, index: pd.DatetimeIndex, symbols: tuple[str, ...]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for j, sym in enumerate(symbols):
        v = valid[:, j]
        if not v.any():
            continue
        started = np.maximum.accumulate(v)
        missing = started & ~v
        if not missing.any():
            continue
        edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
        for a, b in zip(starts, ends, strict=True):
            out.append(
                {
                    "symbol": sym,
                    "start": _iso(index[int(a)]),
                    "end": _iso(index[int(b)]),
                    "bars": int(b - a + 1),
                }
            )
    return out


__all__ = ["FeaturePanel"]
