"""Compiled loops for the slow graph operations: rolling window reductions and the seeded
exponential recursion.

Each kernel repeats, element by element, the numpy arithmetic of the operation it speeds up in
:mod:`tradeforge.features.graph` (same operations in the same order, no re-association, no
running-sum updates), so batch values are the same bits with or without numba and stay equal
to the online path (tested):

* ``window_reduce``: ``graph.window_sum`` (``w0 + w1``, then ``+= w2`` ... oldest first), its
  mean (``sum / w``) and ``builder._std`` (mean, then ``0 + d0*d0 + d1*d1 ...`` with
  ``d = x - mean``, then ``sqrt(squares / (w - ddof))``), on the windows of ``z`` (the block
  with the ``w - 1`` rows of state before it);
* ``recursive``: ``graph.Recursive`` (``y = a * x + (1 - a) * y_prev``, seeded by the mean of
  the first ``n`` valid inputs of a run, NaN inputs ending the run).

The loops run over time outside and symbols inside, so the inner loop vectorizes without
changing any element's arithmetic. numba is optional and imported lazily (``available()``):
without it the graph keeps its numpy code. The kernels call nothing compiled from another file,
so numba's own cache (keyed on this file) never runs a stale copy.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from tradeforge.core.types import FloatArray
from tradeforge.features import workspace

# window reductions (``window_reduce`` kinds)
SUM, MEAN, STD = 0, 1, 2


def _window_reduce(
    init: FloatArray,
    x: FloatArray,
    w: int,
    kind: int,
    ddof: int,
    out: FloatArray,
    out_mean: FloatArray,
) -> None:
    # the windows of z = (init rows, then x) without building z: row r of z is init[r] for
    # r < len(init), else x[r - len(init)] (2-d indexing, no row views: a view per row would
    # cost reference counting in the inner loop). ``out_mean`` is (T, N) to also receive the
    # means of a STD reduction (window_mean_std), else (0, 0).
    n_rows, n = out.shape
    keep = init.shape[0]
    with_mean = out_mean.shape[0] == n_rows
    acc = np.empty(n)
    sq = np.empty(n)
    for t in range(n_rows):
        inside = t >= keep  # every row of the window is in x (all rows but the first w - 1)
        b = t - keep
        if inside:
            # w0 + w1, then += w2 ...: the order of graph.window_sum, four rows per pass over
            # the symbols (((acc + a) + b) + c) + d: the same additions in the same order
            for j in range(n):
                acc[j] = x[b, j]
            k = 1
            while k + 3 < w:
                r = b + k
                for j in range(n):
                    acc[j] = (((acc[j] + x[r, j]) + x[r + 1, j]) + x[r + 2, j]) + x[r + 3, j]
                k += 4
            while k < w:
                for j in range(n):
                    acc[j] = acc[j] + x[b + k, j]
                k += 1
        else:
            for k in range(w):
                r = t + k
                if r < keep:
                    if k == 0:
                        for j in range(n):
                            acc[j] = init[r, j]
                    else:
                        for j in range(n):
                            acc[j] = acc[j] + init[r, j]
                else:
                    rx = r - keep
                    if k == 0:
                        for j in range(n):
                            acc[j] = x[rx, j]
                    else:
                        for j in range(n):
                            acc[j] = acc[j] + x[rx, j]
        if kind == SUM:
            for j in range(n):
                out[t, j] = acc[j]
        elif kind == MEAN:
            for j in range(n):
                out[t, j] = acc[j] / w
        else:
            for j in range(n):
                acc[j] = acc[j] / w  # the mean
                sq[j] = 0.0
            if with_mean:
                for j in range(n):
                    out_mean[t, j] = acc[j]
            if inside:  # 0 + d0*d0, then += d1*d1 ...: four rows per pass, the same order
                k = 0
                while k + 3 < w:
                    r = b + k
                    for j in range(n):
                        m = acc[j]
                        d0 = x[r, j] - m
                        d1 = x[r + 1, j] - m
                        d2 = x[r + 2, j] - m
                        d3 = x[r + 3, j] - m
                        sq[j] = (((sq[j] + d0 * d0) + d1 * d1) + d2 * d2) + d3 * d3
                    k += 4
                while k < w:
                    for j in range(n):
                        d = x[b + k, j] - acc[j]
                        sq[j] += d * d
                    k += 1
            else:
                for k in range(w):
                    r = t + k
                    if r < keep:
                        for j in range(n):
                            d = init[r, j] - acc[j]
                            sq[j] += d * d
                    else:
                        rx = r - keep
                        for j in range(n):
                            d = x[rx, j] - acc[j]
                            sq[j] += d * d
            for j in range(n):
                out[t, j] = np.sqrt(sq[j] / (w - ddof))


def _any_inf(x: FloatArray) -> bool:
    n_rows, n = x.shape
    for t in range(n_rows):
        row = x[t]
        found = False
        for j in range(n):
            found |= np.abs(row[j]) == np.inf
        if found:
            return True
    return False


def _recursive(
    x: FloatArray,
    seed: FloatArray,
    n: int,
    alpha: float,
    run0: np.ndarray,
    y0: FloatArray,
    out: FloatArray,
    runs_last: np.ndarray,
) -> None:
    # z = (seed rows, then x): row r of z is seed[r] for r < n - 1, else x[r - (n - 1)].
    # Each row in two passes: a branch-free one over all symbols (the run lengths, the step
    # ``a * x + (1 - a) * y_prev`` where the run is past its seed, NaN elsewhere) that
    # vectorizes, then, only in rows where some run reaches ``n``, the seeds (the mean of the
    # last n inputs, graph.window_mean) written over the NaN the first pass left there. Every
    # value is the one the element-by-element recursion gives.
    n_rows, n_sym = x.shape
    keep = seed.shape[0]
    beta = 1.0 - alpha
    run = run0.copy()
    y = y0.copy()
    for t in range(n_rows):
        seeds = 0
        for j in range(n_sym):
            v = x[t, j]
            r = run[j] + 1 if v == v else 0  # a NaN input ends the run
            run[j] = r
            step = alpha * v + beta * y[j]
            yj = step if r > n else np.nan
            y[j] = yj
            out[t, j] = yj
            seeds += 1 if r == n else 0
        if seeds > 0:
            for j in range(n_sym):
                if run[j] == n:
                    total = 0.0
                    for k in range(n):
                        r = t + k
                        zv = seed[r, j] if r < keep else x[r - keep, j]
                        total = zv if k == 0 else total + zv
                    y[j] = total / n
                    out[t, j] = y[j]
    for j in range(n_sym):
        runs_last[j] = run[j]


# Elementwise maps of the registry with a compiled twin (``Map.kernel``): the same IEEE
# operations as the numpy lambdas they stand for, element by element, with numpy's NaN rules
# (``np.where`` selects, ``np.maximum`` propagates NaN). With ``clean`` each also writes an
# infinite result as NaN, the replacement the graph applies to every map output
# (``Graph._run``), so the graph skips its separate scan for infinities (``Map.run_clean``).


def _map_sub(a: FloatArray, b: FloatArray, clean: bool, out: FloatArray) -> None:
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            r = a[t, j] - b[t, j]
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _map_div(a: FloatArray, b: FloatArray, clean: bool, out: FloatArray) -> None:
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            r = a[t, j] / b[t, j]
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _map_pct(a: FloatArray, c: FloatArray, clean: bool, out: FloatArray) -> None:  # 100 * a / c
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            r = 100.0 * a[t, j] / c[t, j]
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _map_valid_if(x: FloatArray, earlier: FloatArray, clean: bool, out: FloatArray) -> None:
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            r = np.nan if np.isnan(earlier[t, j]) else x[t, j]
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _map_rsi(g: FloatArray, lo: FloatArray, clean: bool, out: FloatArray) -> None:
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            total = g[t, j] + lo[t, j]
            zero = np.nan if np.isnan(total) else 0.0
            r = 100.0 * g[t, j] / total if total > 0 else zero
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _map_pctb(c: FloatArray, u: FloatArray, lo: FloatArray, clean: bool, out: FloatArray) -> None:
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            r = (c[t, j] - lo[t, j]) / (u[t, j] - lo[t, j])
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _map_z(v: FloatArray, m: FloatArray, sd: FloatArray, clean: bool, out: FloatArray) -> None:
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            s = sd[t, j]
            zero = np.nan if np.isnan(s) else 0.0
            r = (v[t, j] - m[t, j]) / s if s > 0 else zero
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _map_true_range(
    h: FloatArray, lo: FloatArray, prev: FloatArray, clean: bool, out: FloatArray
) -> None:
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            a = np.abs(h[t, j] - prev[t, j])
            b = np.abs(lo[t, j] - prev[t, j])
            wide = a if (a >= b or a != a) else b  # np.maximum(a, b)
            x = h[t, j] - lo[t, j]
            r = x if (x >= wide or x != x) else wide  # np.maximum(x, wide)
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _map_log_ratio(a: FloatArray, b: FloatArray, clean: bool, out: FloatArray) -> None:
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            r = np.log(a[t, j] / b[t, j])
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _map_pos(x: FloatArray, clean: bool, out: FloatArray) -> None:  # np.maximum(x, 0.0)
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            v = x[t, j]
            r = v if (v > 0.0 or v != v) else 0.0  # NaN propagates; -0.0 gives +0.0 as in numpy
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _map_neg(x: FloatArray, clean: bool, out: FloatArray) -> None:  # np.maximum(-x, 0.0)
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            v = -x[t, j]
            r = v if (v > 0.0 or v != v) else 0.0
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _map_add_scaled(
    m: FloatArray, s: FloatArray, k: float, clean: bool, out: FloatArray
) -> None:  # m + k * s
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            r = m[t, j] + k * s[t, j]
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _map_sub_scaled(
    m: FloatArray, s: FloatArray, k: float, clean: bool, out: FloatArray
) -> None:  # m - k * s
    n_rows, n = out.shape
    for t in range(n_rows):
        for j in range(n):
            r = m[t, j] - k * s[t, j]
            out[t, j] = r if (not clean or np.abs(r) != np.inf) else np.nan


def _stack_last(cols: Any, out: FloatArray) -> None:
    n_rows, n, n_feat = out.shape
    for t in range(n_rows):
        for f in range(n_feat):
            col = cols[f]
            for j in range(n):
                out[t, j, f] = col[t, j]


_MAPS = {
    "sub": _map_sub,
    "div": _map_div,
    "pct": _map_pct,
    "valid_if": _map_valid_if,
    "rsi": _map_rsi,
    "pctb": _map_pctb,
    "z": _map_z,
    "true_range": _map_true_range,
}
MAP_KERNELS = frozenset(_MAPS)
# Twins added for the default feature set's remaining numpy maps (issue 14): ``np.log(a / b)``
# (log returns), ``np.maximum(x, 0.0)`` and ``np.maximum(-x, 0.0)`` (RSI gains and losses), and
# the Bollinger bands ``m + k * s`` / ``m - k * s``, which take the float ``k`` (``Map.params``)
# before ``clean``.
_MORE_MAPS = {
    "log_ratio": _map_log_ratio,
    "pos": _map_pos,
    "neg": _map_neg,
    "add_scaled": _map_add_scaled,
    "sub_scaled": _map_sub_scaled,
}
MORE_MAP_KERNELS = frozenset(_MORE_MAPS)
_N_PARAMS = {"add_scaled": 1, "sub_scaled": 1}


@functools.cache
def _compiled() -> dict[str, Any] | None:
    """The numba-compiled kernels (compiled on first use, cached on disk); None without numba."""
    try:
        import numba
    except ImportError:  # pragma: no cover - exercised only without numba
        return None
    jit: Any = numba.njit(nogil=True, cache=True, error_model="numpy")
    out = {
        "window_reduce": jit(_window_reduce),
        "recursive": jit(_recursive),
        "any_inf": jit(_any_inf),
    }
    out["stack_last"] = jit(_stack_last)
    out.update({f"map:{name}": jit(fn) for name, fn in (*_MAPS.items(), *_MORE_MAPS.items())})
    return out


def available() -> bool:
    """True when numba is importable (the graph then runs long blocks through these kernels)."""
    return _compiled() is not None


def window_reduce(init: FloatArray, x: FloatArray, w: int, kind: int, ddof: int = 0) -> FloatArray:
    """Reduce the windows of ``w`` rows of ``init`` (the ``w - 1`` state rows before the block)
    followed by the block ``x`` (T, N): (T, N) sums, means or standard deviations (``ddof``)."""
    kernels = _compiled()
    if kernels is None:  # pragma: no cover - the graph checks ``available()`` first
        raise RuntimeError("window_reduce needs numba; use the numpy reducers")
    out = workspace.take(x.shape)
    kernels["window_reduce"](
        np.ascontiguousarray(init, dtype=np.float64),
        np.ascontiguousarray(x, dtype=np.float64),
        w,
        kind,
        ddof,
        out,
        np.empty((0, 0)),
    )
    return out


def window_mean_std(
    init: FloatArray, x: FloatArray, w: int, ddof: int
) -> tuple[FloatArray, FloatArray]:
    """``window_reduce`` MEAN and STD (``ddof``) of the same windows in one pass: the same two
    (T, N) arrays, to the last bit, for about the cost of the STD alone."""
    kernels = _compiled()
    if kernels is None:  # pragma: no cover - the graph checks ``available()`` first
        raise RuntimeError("window_mean_std needs numba; use the numpy reducers")
    mean = workspace.take(x.shape)
    std = workspace.take(x.shape)
    kernels["window_reduce"](
        np.ascontiguousarray(init, dtype=np.float64),
        np.ascontiguousarray(x, dtype=np.float64),
        w,
        STD,
        ddof,
        std,
        mean,
    )
    return mean, std


def run_map(
    name: str,
    xs: list[FloatArray],
    inf_as_nan: bool = False,
    params: tuple[float, ...] = (),
) -> FloatArray | None:
    """The compiled twin ``name`` (one of ``MAP_KERNELS`` or ``MORE_MAP_KERNELS``) of a
    registry map on same-shape (T, N) inputs (with ``inf_as_nan``, infinite results written as
    NaN; ``params``: the map's float constants, e.g. ``k`` of ``add_scaled``); None when it
    cannot run (no numba, other shapes or dtypes, another number of constants)."""
    kernels = _compiled()
    if kernels is None or (name not in _MAPS and name not in _MORE_MAPS):
        return None
    if len(params) != _N_PARAMS.get(name, 0) or not xs:
        return None
    shape = xs[0].shape
    if len(shape) != 2 or any(x.shape != shape or x.dtype != np.float64 for x in xs):
        return None
    out = workspace.take(shape)
    consts = [float(p) for p in params]
    kernels[f"map:{name}"](*[np.ascontiguousarray(x) for x in xs], *consts, inf_as_nan, out)
    return out


def stack_last(cols: list[FloatArray]) -> FloatArray:
    """``np.stack(cols, axis=-1)`` for (T, N) float64 columns: the (T, N, F) feature array,
    written in order one bar at a time (several times faster than numpy's column-by-column
    strided copy for a large panel; the same values, it only moves them)."""
    kernels = _compiled()
    shape = cols[0].shape if cols else None
    if (
        kernels is None
        or shape is None
        or len(shape) != 2
        or any(c.shape != shape or c.dtype != np.float64 for c in cols)
    ):
        return np.stack(cols, axis=-1)
    out = np.empty((*shape, len(cols)))
    kernels["stack_last"](tuple(np.ascontiguousarray(c) for c in cols), out)
    return out


def any_inf(x: FloatArray) -> bool:
    """``np.isinf(x).any()`` for a (T, N) float64 array, in one pass without a temporary."""
    kernels = _compiled()
    if kernels is None:  # pragma: no cover - the graph checks ``available()`` first
        return bool(np.isinf(x).any())
    if not x.flags.c_contiguous:  # the strided kernel would not vectorize
        return bool(np.isinf(x).any())
    return bool(kernels["any_inf"](x))


def recursive(
    x: FloatArray, seed: FloatArray, n: int, alpha: float, run0: np.ndarray, y0: FloatArray
) -> tuple[FloatArray, np.ndarray]:
    """``graph.Recursive`` over the block ``x`` (T, N) after the ``n - 1`` ``seed`` rows, the runs
    ``run0`` (N,) and outputs ``y0`` (N,) left by the rows before it: the (T, N) outputs and the
    run length after the last row, per symbol."""
    kernels = _compiled()
    if kernels is None:  # pragma: no cover - the graph checks ``available()`` first
        raise RuntimeError("recursive needs numba; use the numpy recursion")
    xc = np.ascontiguousarray(x, dtype=np.float64)
    out = workspace.take(xc.shape)
    runs_last = np.empty(xc.shape[1], dtype=np.int64)
    kernels["recursive"](
        xc,
        np.ascontiguousarray(seed, dtype=np.float64),
        n,
        float(alpha),
        np.asarray(run0, dtype=np.int64),
        np.asarray(y0, dtype=np.float64),
        out,
        runs_last,
    )
    return out, runs_last


__all__ = [
    "MAP_KERNELS",
    "MEAN",
    "MORE_MAP_KERNELS",
    "STD",
    "SUM",
    "any_inf",
    "available",
    "recursive",
    "run_map",
    "stack_last",
    "window_mean_std",
    "window_reduce",
]
