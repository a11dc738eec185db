"""Graph builder: named, de-duplicated building blocks that indicators are written in.

Nodes are keyed by what they compute, so two indicators that need the same EMA share one node.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tradeforge.core.types import FloatArray
from tradeforge.features.graph import (
    SHORT_BLOCK,
    Calendar,
    CrossRank,
    Graph,
    Lag,
    Map,
    Recursive,
    Reducer,
    RunningSum,
    Source,
    Window,
    window_mean,
    window_sum,
)


class Builder:
    """Adds nodes to a :class:`Graph`; every method returns the key of the node it made."""

    def __init__(self, graph: Graph | None = None) -> None:
        self.graph = graph if graph is not None else Graph()

    def src(self, field: str) -> str:
        return self.graph.add(f"src({field})", Source(field))

    def close(self) -> str:
        return self.src("close")

    def map(
        self,
        name: str,
        fn: Callable[..., FloatArray],
        *inputs: str,
        kernel: str | None = None,
        params: tuple[float, ...] = (),
    ) -> str:
        """An elementwise node; ``kernel`` names its compiled twin (``Map.kernel``), which
        takes the float constants ``params`` that ``fn`` closes over (``Map.params``)."""
        return self.graph.add(f"{name}({','.join(inputs)})", Map(fn, kernel, params), inputs)

    def lag(self, x: str, k: int) -> str:
        return self.graph.add(f"lag({x};{k})", Lag(k), (x,))

    def window(
        self, name: str, reducer: Reducer, w: int, *inputs: str, kind: str | None = None
    ) -> str:
        """A window node; ``kind`` names a reducer with a compiled twin (``Window.kind``)."""
        return self.graph.add(f"{name}({','.join(inputs)};{w})", Window(w, reducer, kind), inputs)

    def mean(self, x: str, w: int) -> str:
        return self.window("mean", _mean, w, x, kind="mean")

    def std(self, x: str, w: int, ddof: int = 0) -> str:
        kind = f"std{ddof}" if ddof in (0, 1) else None
        return self.window(f"std{ddof}", _std(ddof), w, x, kind=kind)

    def wsum(self, x: str, w: int) -> str:
        return self.window("sum", _sum, w, x, kind="sum")

    def ema(self, x: str, n: int) -> str:
        return self.graph.add(f"ema({x};{n})", Recursive(n, 2.0 / (n + 1.0)), (x,))

    def wilder(self, x: str, n: int) -> str:
        return self.graph.add(f"wilder({x};{n})", Recursive(n, 1.0 / n), (x,))

    def running_sum(self, x: str) -> str:
        return self.graph.add(f"cumsum({x})", RunningSum(), (x,))

    def cross_rank(self, x: str) -> str:
        return self.graph.add(f"xrank({x})", CrossRank(), (x,))

    def calendar(self, name: str, fn: Callable[[np.ndarray], FloatArray]) -> str:
        return self.graph.add(f"cal_{name}()", Calendar(fn), (self.close(),))

    # common derived series -------------------------------------------------------------------
    def after(self, x: str, k: int) -> str:
        """``x`` where ``x`` was also valid ``k`` bars earlier (NaN otherwise): delays a seed."""
        return self.map("after", _valid_if, x, self.lag(x, k), kernel="valid_if")

    def diff(self, x: str, k: int = 1) -> str:
        return self.map("sub", np.subtract, x, self.lag(x, k), kernel="sub")

    def log_return(self, k: int = 1) -> str:
        c = self.close()
        return self.map("logratio", _log_ratio, c, self.lag(c, k), kernel="log_ratio")

    def true_range(self) -> str:
        prev = self.lag(self.close(), 1)
        return self.map(
            "trange", _true_range, self.src("high"), self.src("low"), prev, kernel="true_range"
        )


def _mean(w: FloatArray) -> FloatArray:
    return window_mean(w)


def _sum(w: FloatArray) -> FloatArray:
    return window_sum(w)


def _std(ddof: int) -> Reducer:
    def std(w: FloatArray) -> FloatArray:
        mean = window_mean(w)
        if w.shape[0] <= SHORT_BLOCK:
            dev = w - mean[..., None]
            squares = window_sum(dev * dev)
        else:  # the same sums in the same order, without a (T, N, w) temporary
            squares = np.zeros_like(mean)
            for k in range(w.shape[-1]):
                d = w[..., k] - mean
                squares += d * d
        out: FloatArray = np.sqrt(squares / (w.shape[-1] - ddof))
        return out

    return std


def _valid_if(x: FloatArray, earlier: FloatArray) -> FloatArray:
    out: FloatArray = np.where(np.isnan(earlier), np.nan, x)
    return out


def _log_ratio(a: FloatArray, b: FloatArray) -> FloatArray:
    out: FloatArray = np.log(a / b)
    return out


def _true_range(high: FloatArray, low: FloatArray, prev_close: FloatArray) -> FloatArray:
    """High-low range widened by gaps from the previous close (NaN on the first bar)."""
    out: FloatArray = np.maximum(
        high - low, np.maximum(np.abs(high - prev_close), np.abs(low - prev_close))
    )
    return out


__all__ = ["Builder"]
