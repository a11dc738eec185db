"""The node's feature window: the last ``window`` rows of the fitted pipeline's features.

The pipeline is the one the policy was trained with (its artifact's ``features/``). In
``update`` mode the history is run through it once (``warm_start``) and each new bar is one
``update`` (the batch computation continued on one row, so the values equal ``transform`` of
the whole history; the node's tests check this on the bundled data). In ``transform`` mode the
whole history is transformed again at every bar: slower, identical by construction.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from tradeforge.core.types import FloatArray
from tradeforge.data.panel import OHLCV, BarPanel
from tradeforge.execution.node_feed import MarketBar, NodeDataError


class OnlineFeatures(Protocol):
    """What the node needs of ``tradeforge.features.FeaturePipeline``."""

    @property
    def names(self) -> tuple[str, ...]: ...

    def warm_start(self, panel: BarPanel) -> Any: ...

    def update(self, bar: Mapping[str, Any]) -> FloatArray: ...

    def transform(self, panel: BarPanel) -> Any: ...


def append_bar(panel: BarPanel, bar: MarketBar) -> BarPanel:
    """``panel`` with ``bar`` as a new last row (its fields must match the panel's)."""
    if bar.timestamp <= panel.index[-1]:
        raise NodeDataError(
            f"bar {bar.timestamp.isoformat()} is not after the history's last bar "
            f"{panel.index[-1].isoformat()}; expected bars in time order"
        )
    missing = [k for k in (*OHLCV, *panel.extra) if k not in bar.fields]
    if missing:
        raise NodeDataError(f"bar {bar.timestamp.isoformat()} lacks the fields {missing}")

    def grow(arr: FloatArray, row: FloatArray) -> FloatArray:
        return np.concatenate([arr, np.asarray(row, dtype=np.float64).reshape(1, -1)])

    index = pd.DatetimeIndex(panel.index.append(pd.DatetimeIndex([bar.timestamp])))
    fields = {k: grow(panel.field(k), bar.fields[k]) for k in OHLCV}
    extra = {k: grow(v, bar.fields[k]) for k, v in panel.extra.items()}
    return BarPanel(index, panel.symbols, **fields, frequency=panel.frequency, extra=extra)


class FeatureWindow:
    """The rolling window of feature rows (see the module docstring)."""

    def __init__(
        self, pipeline: OnlineFeatures, window: int, mode: Literal["update", "transform"]
    ) -> None:
        if window < 1:
            raise NodeDataError(f"observation window = {window}; expected >= 1")
        self.pipeline = pipeline
        self.window = window
        self.mode = mode
        self._rows: deque[FloatArray] = deque(maxlen=window)
        self._panel: BarPanel | None = None
        self._history: FloatArray | None = None
        self.valid = False

    def start(self, history: BarPanel) -> None:
        """Compute the features of ``history`` (every bar up to now) and keep the last rows."""
        if self.mode == "update":
            values = np.asarray(self.pipeline.warm_start(history).values, dtype=np.float64)
        else:
            values = np.asarray(self.pipeline.transform(history).values, dtype=np.float64)
            self._panel = history
        self._history = values
        self._rows.clear()
        self._rows.extend(values[-self.window :])
        self.valid = True

    def push(self, bar: MarketBar) -> None:
        """Add the features of the next bar."""
        if self.mode == "update":
            row = np.asarray(self.pipeline.update(bar.update_input()), dtype=np.float64)
        else:
            if self._panel is None:
                raise NodeDataError("FeatureWindow.push before start(); expected start(history)")
            self._panel = append_bar(self._panel, bar)
            row = np.asarray(self.pipeline.transform(self._panel).values[-1], dtype=np.float64)
        self._rows.append(row)

    def invalidate(self) -> None:
        """A bar was missed: the next bar starts again from the history."""
        self.valid = False

    @property
    def ready(self) -> bool:
        """A full window with every value finite (``TradingEnv`` decides only then)."""
        return self.reason == ""

    @property
    def reason(self) -> str:
        if len(self._rows) < self.window:
            return f"{len(self._rows)} of {self.window} bars of features"
        if not all(np.isfinite(r).all() for r in self._rows):
            return "a feature in the window is NaN"
        return ""

    def values(self) -> FloatArray:
        """The window as (window, N, F), oldest row first."""
        return np.stack(self._rows)

    def history_window(self, row: int | None) -> FloatArray | None:
        """The window that ended at history row ``row`` (for replaying past decisions)."""
        if self._history is None or row is None or row < self.window - 1:
            return None
        out: FloatArray = self._history[row - self.window + 1 : row + 1]
        return out

    def drop_history(self) -> None:
        self._history = None


__all__ = ["FeatureWindow", "OnlineFeatures", "append_bar"]
