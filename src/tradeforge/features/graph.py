"""A small causal computation graph over (time x symbol) arrays.

Every indicator is built from a handful of operations (elementwise maps, lags, rolling windows,
exponential recursions, running sums, cross-sectional ranks). Each operation runs on a block of
rows *given the state left by the rows before it* and returns the new state. Batch transform is
one call on the whole panel from an empty state; the online path is the same call on one row, so
batch and online values agree by construction; the feature cache resumes from a saved state.

State is a flat ``dict[str, ndarray]`` per node (numbers only), so it can be written to ``.npz``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from tradeforge.core.errors import FeatureError
from tradeforge.core.types import FloatArray
from tradeforge.features import workspace

State = dict[str, np.ndarray]
SHORT_BLOCK = 8  # blocks of at most this many rows skip vectorized set-up (online updates)
SYMBOL_BLOCK = 64  # columns per group when a long block of many symbols is evaluated
Reducer = Callable[..., FloatArray]


@dataclass(frozen=True)
class Context:
    """What source nodes read: named input fields of shape (T, N) and the bar timestamps as
    int64 nanoseconds since the epoch, UTC (``None`` when the rows have no timestamps)."""

    fields: Mapping[str, FloatArray]
    stamps: np.ndarray | None

    @classmethod
    def of(cls, fields: Mapping[str, FloatArray], index: pd.DatetimeIndex | None) -> Context:
        stamps = None if index is None else pd.DatetimeIndex(index).as_unit("ns").asi8
        return cls(fields, stamps)


class Op:
    """One operation. ``lookback`` is how many earlier rows it needs before its first value."""

    lookback: int = 0

    def run(
        self, xs: list[FloatArray], state: State | None, ctx: Context
    ) -> tuple[FloatArray, State]:
        raise NotImplementedError


@dataclass
class Source(Op):
    field_name: str

    def run(
        self, xs: list[FloatArray], state: State | None, ctx: Context
    ) -> tuple[FloatArray, State]:
        if self.field_name not in ctx.fields:
            raise FeatureError(
                f"input field {self.field_name!r} is missing; available fields: "
                f"{', '.join(sorted(ctx.fields))}"
            )
        return np.asarray(ctx.fields[self.field_name], dtype=np.float64), {}


@dataclass
class Calendar(Op):
    """A function of the bar timestamps (int64 ns UTC), broadcast over symbols (NaN where
    ``close`` is NaN, and everywhere when the rows carry no timestamps)."""

    fn: Callable[[np.ndarray], FloatArray]

    def run(
        self, xs: list[FloatArray], state: State | None, ctx: Context
    ) -> tuple[FloatArray, State]:
        close = xs[0]
        if ctx.stamps is None:
            return np.full_like(close, np.nan), {}
        col = self.fn(ctx.stamps)[:, None]
        return np.where(np.isnan(close), np.nan, col), {}


@dataclass
class Map(Op):
    """An elementwise function of the inputs. ``kernel`` names its compiled twin in
    ``features.kernels`` (``MAP_KERNELS`` or ``MORE_MAP_KERNELS``: the same arithmetic), used
    for long blocks; ``params`` are the float constants ``fn`` closes over, passed to the
    twin."""

    fn: Callable[..., FloatArray]
    kernel: str | None = None
    params: tuple[float, ...] = ()  # float constants the twin takes after the inputs

    def run(
        self, xs: list[FloatArray], state: State | None, ctx: Context
    ) -> tuple[FloatArray, State]:
        out, node_state, _ = self.run_clean(xs, state, ctx)
        return out, node_state

    def run_clean(
        self, xs: list[FloatArray], state: State | None, ctx: Context
    ) -> tuple[FloatArray, State, bool]:
        """``run`` plus whether the output is known to hold no infinity (the compiled twin
        writes them as NaN already), so the graph need not scan it."""
        if self.kernel is not None and xs and len(xs[0]) > SHORT_BLOCK and _kernels_available():
            from tradeforge.features import kernels

            out = kernels.run_map(self.kernel, xs, inf_as_nan=True, params=self.params)
            if out is not None:
                return out, {}, True
        return np.asarray(self.fn(*xs), dtype=np.float64), {}, False


def _initial_rows(state: State | None, key: str, rows: int, n: int) -> FloatArray:
    if state is not None and key in state:
        arr: FloatArray = state[key]
        return arr
    return np.full((rows, n), np.nan)


@dataclass
class Lag(Op):
    k: int

    def __post_init__(self) -> None:
        self.lookback = self.k

    def run(
        self, xs: list[FloatArray], state: State | None, ctx: Context
    ) -> tuple[FloatArray, State]:
        x = xs[0]
        k = self.k
        init = _initial_rows(state, "buf", k, x.shape[1])
        t = len(x)
        if t > SHORT_BLOCK and x.ndim == 2:
            # the rows of z = (init, x) below without building z: a workspace buffer
            # (features.workspace) instead of fresh pages per call; the same values
            out = workspace.take(x.shape)
            m = min(k, t)
            out[:m] = init[:m]
            if t > k:
                out[k:] = x[: t - k]
            buf = x[t - k :].copy() if t >= k else np.concatenate([init[t:], x])
            return out, {"buf": buf}
        z = np.concatenate([init, x])
        return z[: len(x)], {"buf": z[len(z) - k :]}


@dataclass
class Window(Op):
    """A reducer over the last ``w`` rows of one or more inputs (NaN if any is NaN).

    ``kind`` names a reducer the compiled kernels know (``"sum"``, ``"mean"``, ``"std0"``,
    ``"std1"``: ``features.kernels.window_reduce``, the same arithmetic as the numpy reducers);
    long blocks of one input then run compiled when numba is installed.
    """

    w: int
    reducer: Reducer
    kind: str | None = None

    def __post_init__(self) -> None:
        self.lookback = self.w - 1

    def run(
        self, xs: list[FloatArray], state: State | None, ctx: Context
    ) -> tuple[FloatArray, State]:
        n = xs[0].shape[1]
        keep = self.w - 1
        compiled = _compiled_window(self.kind, len(xs), len(xs[0]))
        if compiled is not None and len(xs[0]) >= keep:
            kind, ddof = compiled
            from tradeforge.features import kernels

            x = xs[0]
            init = _initial_rows(state, "buf0", keep, n)
            out = kernels.window_reduce(init, x, self.w, kind, ddof)
            return out, {"buf0": x[len(x) - keep :].copy()}
        new_state: State = {}
        windows = []
        for i, x in enumerate(xs):
            z = np.concatenate([_initial_rows(state, f"buf{i}", keep, n), x])
            windows.append(_windows(z, self.w))  # (T, N, w)
            new_state[f"buf{i}"] = z[len(z) - keep :]
        return np.asarray(self.reducer(*windows), dtype=np.float64), new_state


_WINDOW_KINDS = {"sum": (0, 0), "mean": (1, 0), "std0": (2, 0), "std1": (2, 1)}
_STD_KINDS = ("std0", "std1")


def _mean_std_pairs(nodes: Mapping[str, Node]) -> dict[str, str]:
    """For every compiled-kind mean window with a standard deviation window over the same single
    input and length (Bollinger bands, volume z-scores), the key of the pair's first node mapped
    to the second's: both are computed in one pass at the first."""
    means: dict[tuple[str, int], str] = {}
    stds: dict[tuple[str, int], str] = {}
    for key, node in nodes.items():
        op = node.op
        if isinstance(op, Window) and len(node.inputs) == 1:
            if op.kind == "mean":
                means.setdefault((node.inputs[0], op.w), key)
            elif op.kind in _STD_KINDS:
                stds.setdefault((node.inputs[0], op.w), key)
    order = {key: i for i, key in enumerate(nodes)}
    pairs: dict[str, str] = {}
    for where, mean_key in means.items():
        std_key = stds.get(where)
        if std_key is not None:
            first, second = sorted((mean_key, std_key), key=order.__getitem__)
            pairs[first] = second
    return pairs


def _run_mean_std(
    mean: Window, std: Window, xs: list[FloatArray], mean_prior: State | None,
    std_prior: State | None,
) -> tuple[tuple[FloatArray, State], tuple[FloatArray, State]] | None:  # fmt: skip
    """``mean.run`` and ``std.run`` on the same input block in one compiled pass
    (``kernels.window_mean_std``: the same bits as the two ``window_reduce`` calls); None when
    the block would not run compiled or the two nodes' saved states differ."""
    compiled = _compiled_window(std.kind, len(xs), len(xs[0]))
    keep = mean.w - 1
    if compiled is None or mean.w != std.w or len(xs[0]) < keep:
        return None
    x = xs[0]
    n = x.shape[1]
    init = _initial_rows(mean_prior, "buf0", keep, n)
    other = _initial_rows(std_prior, "buf0", keep, n)
    if init is not other and not np.array_equal(init, other, equal_nan=True):
        return None
    from tradeforge.features import kernels

    m, sd = kernels.window_mean_std(init, x, mean.w, compiled[1])
    tail = x[len(x) - keep :]
    return (m, {"buf0": tail.copy()}), (sd, {"buf0": tail.copy()})


def _compiled_window(kind: str | None, n_inputs: int, rows: int) -> tuple[int, int] | None:
    """``(kernel kind, ddof)`` when a block of ``rows`` runs through the compiled kernel."""
    if kind is None or n_inputs != 1 or rows <= SHORT_BLOCK or kind not in _WINDOW_KINDS:
        return None
    from tradeforge.features import kernels

    return _WINDOW_KINDS[kind] if kernels.available() else None


def _windows(z: FloatArray, w: int) -> FloatArray:
    """Read-only view (T, N, w) of the trailing ``w`` rows of ``z`` (T + w - 1, N) at each row.

    Same as ``sliding_window_view(z, w, axis=0)`` but built directly, which matters for the
    one-row calls of the online path.
    """
    z = np.ascontiguousarray(z)
    s0, s1 = z.strides
    view: FloatArray = np.ndarray(
        (len(z) - w + 1, z.shape[1], w), dtype=z.dtype, buffer=z, strides=(s0, s1, s0)
    )
    view.flags.writeable = False
    return view


def window_sum(windows: FloatArray) -> FloatArray:
    """Sum over the last axis, added in a fixed order whatever the memory layout.

    numpy's own reductions pick pairwise or strided summation by layout, which would make a
    one-symbol run differ in the last bits from a many-symbol run of the same data.
    """
    if windows.shape[0] <= SHORT_BLOCK:  # one call; accumulate is sequential, same order
        acc: FloatArray = np.add.accumulate(windows, axis=-1)[..., -1]
        return acc
    w = windows.shape[-1]
    total: FloatArray = windows[..., 0] + windows[..., 1] if w > 1 else windows[..., 0].copy()
    for k in range(2, w):
        total += windows[..., k]
    return total


def window_mean(windows: FloatArray) -> FloatArray:
    out: FloatArray = window_sum(windows) / windows.shape[-1]
    return out


def _run_lengths(valid: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Consecutive valid rows ending at each row, continuing the counts ``start`` (N,)."""
    t = len(valid)
    rows = np.arange(1, t + 1)[:, None]
    if valid.all():
        return start[None, :] + rows
    last_break = np.maximum.accumulate(np.where(valid, 0, rows), axis=0)
    runs = rows - last_break
    carried = np.where(last_break == 0, start[None, :] + runs, runs)
    return np.where(valid, carried, 0)


@dataclass
class Recursive(Op):
    """``y_t = alpha * x_t + (1 - alpha) * y_{t-1}``, seeded by the mean of the first ``n`` inputs.

    A NaN input ends the run: the output is NaN there and the recursion starts again (with a
    fresh seed) once ``n`` consecutive valid inputs have arrived. EMA uses ``alpha = 2/(n+1)``,
    Wilder smoothing ``alpha = 1/n``.
    """

    n: int
    alpha: float

    def __post_init__(self) -> None:
        self.lookback = self.n - 1

    def run(
        self, xs: list[FloatArray], state: State | None, ctx: Context
    ) -> tuple[FloatArray, State]:
        x = xs[0]
        t, n_sym = x.shape
        n = self.n
        seed_buf = _initial_rows(state, "seed", n - 1, n_sym)
        y_prev = state["y"].copy() if state is not None else np.full(n_sym, np.nan)
        run0 = state["run"] if state is not None else np.zeros(n_sym)
        if t > SHORT_BLOCK and t >= n - 1 and _kernels_available():
            # the same recursion, compiled (features.kernels), without building z
            from tradeforge.features import kernels

            out, last = kernels.recursive(x, seed_buf, n, self.alpha, run0.astype(np.int64), y_prev)
            return out, {
                "seed": x[t - (n - 1) :].copy(),
                "y": out[-1].copy(),
                "run": np.minimum(last, n + 1).astype(np.float64),
            }
        z = np.concatenate([seed_buf, x])
        valid = ~np.isnan(x)
        if t == 1:  # the online path
            runs = np.where(valid, run0.astype(np.int64) + 1, 0)
        else:
            runs = _run_lengths(valid, run0.astype(np.int64))
        if t <= SHORT_BLOCK:
            out, y_prev = self._rows(x, z, runs, y_prev)
        else:
            out, y_prev = self._segments(x, z, runs, y_prev)
        new_state: State = {
            "seed": z[len(z) - (n - 1) :],
            "y": y_prev,
            "run": np.minimum(runs[-1], n + 1).astype(np.float64) if t else run0,
        }
        return out, new_state

    def _rows(
        self, x: FloatArray, z: FloatArray, runs: np.ndarray, y_prev: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Row by row (short blocks, e.g. one online bar)."""
        n, a = self.n, self.alpha
        out = np.empty_like(x)
        seeds = window_mean(_windows(z, n)) if (runs == n).any() else None
        for i in range(len(x)):
            r = runs[i]
            step = a * x[i] + (1.0 - a) * y_prev  # the same arithmetic as lfilter
            if seeds is None and (r > n).all():
                y_prev = step
            else:
                seed = seeds[i] if seeds is not None else np.nan
                y_prev = np.where(r == n, seed, np.where(r > n, step, np.nan))
            out[i] = y_prev
        return out, y_prev

    def _segments(
        self, x: FloatArray, z: FloatArray, runs: np.ndarray, y_prev: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Whole runs at once: each run of valid rows past the seed is one ``lfilter`` call,
        shared by every column whose run has the same rows (one call on a gap-free panel)."""
        n, a = self.n, self.alpha
        t, n_sym = x.shape
        n_sym = x.shape[1]
        out = np.full_like(x, np.nan)
        seeds = window_mean(_windows(z, n)) if (runs == n).any() else None
        on = np.zeros((t + 2, n_sym), dtype=np.int8)
        on[1:-1] = runs >= n
        edges = np.diff(on, axis=0).T  # (N, T + 1): +1 where a run starts, -1 after it ends
        start_col, start_row = np.nonzero(edges == 1)
        _, stop_row = np.nonzero(edges == -1)
        groups: dict[tuple[int, int, bool], list[int]] = {}
        for j, r0, r1 in zip(
            start_col.tolist(), start_row.tolist(), stop_row.tolist(), strict=True
        ):
            seeded = bool(runs[r0, j] == n)
            groups.setdefault((r0, r1, seeded), []).append(j)
        for (r0, r1, seeded), cols in groups.items():
            if seeded:
                first = seeds[r0, cols] if seeds is not None else np.full(len(cols), np.nan)
            else:  # continues the run of the previous block (r0 == 0)
                first = a * x[r0, cols] + (1.0 - a) * y_prev[cols]
            out[r0, cols] = first
            if r1 - r0 > 1:
                zi = ((1.0 - a) * first)[None, :]
                every = len(cols) == n_sym  # plain slices, no gather/scatter copies
                block = x[r0 + 1 : r1] if every else x[r0 + 1 : r1][:, cols]
                filtered, _ = lfilter([a], [1.0, a - 1.0], block, axis=0, zi=zi)
                if every:
                    out[r0 + 1 : r1] = filtered
                else:
                    out[r0 + 1 : r1, cols] = filtered
        return out, out[-1].copy()


def _has_inf(x: FloatArray) -> bool:
    """``np.isinf(x).any()``, in one compiled pass for long 2-d blocks when numba is there."""
    if x.ndim == 2 and x.dtype == np.float64 and len(x) > SHORT_BLOCK and _kernels_available():
        from tradeforge.features import kernels

        return kernels.any_inf(x)
    return bool(np.isinf(x).any())


def _kernels_available() -> bool:
    from tradeforge.features import kernels

    return kernels.available()


@dataclass
class RunningSum(Op):
    """Cumulative sum that restarts after a NaN input (the output is NaN there)."""

    def run(
        self, xs: list[FloatArray], state: State | None, ctx: Context
    ) -> tuple[FloatArray, State]:
        x = xs[0]
        t, n_sym = x.shape
        s = state["s"].copy() if state is not None else np.full(n_sym, np.nan)
        valid = ~np.isnan(x)
        tail_ok = np.logical_and.accumulate(valid[::-1].all(axis=1))[::-1]
        steady = int(t - tail_ok.sum())
        out = np.empty_like(x)
        for i in range(steady):
            s = np.where(valid[i], np.where(np.isnan(s), x[i], s + x[i]), np.nan)
            out[i] = s
        if steady < t:
            block = x[steady:].copy()
            started = ~np.isnan(s)
            block[0] = np.where(started, s + block[0], block[0])
            out[steady:] = np.cumsum(block, axis=0)
            s = out[-1].copy()
        return out, {"s": s}


@dataclass
class CrossRank(Op):
    """Rank across symbols at each bar, scaled to [0, 1] (ties averaged; NaN stays NaN)."""

    def run(
        self, xs: list[FloatArray], state: State | None, ctx: Context
    ) -> tuple[FloatArray, State]:
        x = xs[0]
        t, n = x.shape
        if t * n * n <= 1_000_000:
            # average rank (1-based) = (#smaller + #smaller-or-equal + 1) / 2; NaN compares False
            below = (x[:, None, :] < x[:, :, None]).sum(axis=2)
            at_or_below = (x[:, None, :] <= x[:, :, None]).sum(axis=2)
            ranks = (below + at_or_below + 1) / 2.0
        else:
            from scipy.stats import rankdata

            ranks = rankdata(x, axis=1, nan_policy="omit")
        count = np.sum(~np.isnan(x), axis=1, keepdims=True)
        denom = np.where(count > 1, count - 1, 1)
        scaled = np.where(count > 1, (ranks - 1.0) / denom, 0.5)
        return np.where(np.isnan(x), np.nan, scaled), {}


@dataclass
class Node:
    key: str
    op: Op
    inputs: tuple[str, ...]
    lookback: int = 0


@dataclass
class Graph:
    """Nodes in topological order (inputs are always added before their users)."""

    nodes: dict[str, Node] = field(default_factory=dict)

    def add(self, key: str, op: Op, inputs: tuple[str, ...] = ()) -> str:
        if key not in self.nodes:
            back = max((self.nodes[i].lookback for i in inputs), default=0) + op.lookback
            self.nodes[key] = Node(key, op, inputs, back)
        return key

    def run(
        self, ctx: Context, outputs: list[str], state: dict[str, State] | None = None
    ) -> tuple[list[FloatArray], dict[str, State]]:
        """Evaluate the graph; return the values of ``outputs`` and every node's state.

        Long blocks of many symbols run in groups of ``SYMBOL_BLOCK`` columns (each group's
        arrays stay in cache, about twice as fast); symbols are independent unless the graph
        ranks across them, and every kernel computes each column the same way in any group, so
        the values are identical.
        """
        shapes = [a.shape for a in ctx.fields.values()]
        t, n_sym = shapes[0] if shapes else (0, 0)
        cross = any(isinstance(node.op, CrossRank) for node in self.nodes.values())
        if cross or t <= SHORT_BLOCK or n_sym <= self.symbol_block():
            return self._run(ctx, outputs, state)
        parts = []
        block = self.symbol_block()
        for lo in range(0, n_sym, block):
            cols = slice(lo, lo + block)
            sub = Context({k: v[:, cols] for k, v in ctx.fields.items()}, ctx.stamps)
            prior = None
            if state is not None:
                prior = {k: {f: a[..., cols] for f, a in st.items()} for k, st in state.items()}
            parts.append(self._run(sub, outputs, prior))
        values = [np.concatenate([p[0][i] for p in parts], axis=1) for i in range(len(outputs))]
        new_state = {
            key: {f: np.concatenate([p[1][key][f] for p in parts], axis=-1) for f in st}
            for key, st in parts[0][1].items()
        }
        return values, new_state

    def _pairs(self) -> dict[str, str]:
        """``_mean_std_pairs`` of the nodes, cached until a node is added."""
        cached = self.__dict__.get("_pairs_cache")
        if cached is None or cached[0] != len(self.nodes):
            cached = (len(self.nodes), _mean_std_pairs(self.nodes))
            self.__dict__["_pairs_cache"] = cached
        pairs: dict[str, str] = cached[1]
        return pairs

    def _pair(
        self,
        first: str,
        second: str | None,
        xs: list[FloatArray],
        state: dict[str, State] | None,
    ) -> tuple[tuple[FloatArray, State], tuple[FloatArray, State]] | None:
        """The results of the mean/std pair (``first``, ``second``) computed together, in that
        node order; None when they run one by one."""
        if second is None:
            return None
        mean, std, mean_first = _pair_ops(self.nodes, first, second)
        priors = (state or {}).get(first), (state or {}).get(second)
        mean_prior, std_prior = priors if mean_first else priors[::-1]
        both = _run_mean_std(mean, std, xs, mean_prior, std_prior)
        if both is None or mean_first:
            return both
        return both[1], both[0]

    @staticmethod
    def symbol_block() -> int:
        """Columns per group of a long many-symbol block: ``SYMBOL_BLOCK`` for the numpy ops;
        with the compiled kernels (``features.kernels``) every column at once, which is faster
        (contiguous arrays for the kernels, no regrouping copies)."""
        return 2**62 if _kernels_available() else SYMBOL_BLOCK

    def _run(
        self, ctx: Context, outputs: list[str], state: dict[str, State] | None
    ) -> tuple[list[FloatArray], dict[str, State]]:
        values: dict[str, FloatArray] = {}
        new_state: dict[str, State] = {}
        # the position of each node's last user: an intermediate is dropped right after it, so
        # its memory is reused by the next nodes instead of fresh pages being touched for every
        # node of a large panel (the values are unchanged)
        last_use: dict[str, int] = {}
        for i, node in enumerate(self.nodes.values()):
            for name in node.inputs:
                last_use[name] = i
        keep = set(outputs)
        # memory that stays in use while intermediates are given back to the workspace pool:
        # the inputs, the saved states passed in and produced, the live values (``ranges``);
        # only long blocks hold arrays worth pooling (not the one-row online updates)
        rows = max((len(a) for a in ctx.fields.values()), default=0)
        pooling = rows > SHORT_BLOCK
        held = workspace.in_use(ctx.fields.values()) if pooling else []
        for node_state in (state or {}).values() if pooling else ():
            held += workspace.in_use(node_state.values())
        ranges: dict[str, list[tuple[int, int]]] = {}
        pairs = self._pairs()
        pending: dict[str, tuple[FloatArray, State]] = {}  # the second node of a computed pair
        with np.errstate(all="ignore"):
            for i, (key, node) in enumerate(self.nodes.items()):
                xs = [values[k] for k in node.inputs]
                prior = state.get(key) if state is not None else None
                op = node.op
                both = self._pair(key, pairs.get(key), xs, state) if key in pairs else None
                if key in pending:
                    out, node_state = pending.pop(key)
                    clean = True  # a window: no infinities of its own
                elif both is not None:
                    (out, node_state), pending[pairs[key]] = both
                    clean = True
                elif isinstance(op, Map):
                    out, node_state, clean = op.run_clean(xs, prior, ctx)
                else:
                    out, node_state = op.run(xs, prior, ctx)
                    clean = not isinstance(op, Source)  # only maps and sources create infinities
                if not clean and _has_inf(out):
                    out = np.where(np.isinf(out), np.nan, out)
                values[key] = out
                if pooling:
                    ranges[key] = workspace.in_use([out])
                if node_state:
                    new_state[key] = node_state
                    if pooling:
                        held += workspace.in_use(node_state.values())
                del xs, out
                dropped = []
                for name in (*node.inputs, key):
                    if last_use.get(name, -1) <= i and name not in keep and name in values:
                        dropped.append(values.pop(name))
                        ranges.pop(name, None)
                if dropped and pooling:  # back to the pool unless still in use
                    live = [r for rs in ranges.values() for r in rs]
                    workspace.release(dropped, held + live + list(pending_ranges(pending)))
                    del dropped
        return [values[k] for k in outputs], new_state


def pending_ranges(pending: Mapping[str, tuple[FloatArray, State]]) -> list[tuple[int, int]]:
    """Memory of the results computed ahead for a later node (a mean/std pair's second)."""
    out: list[tuple[int, int]] = []
    for value, node_state in pending.values():
        out += workspace.in_use([value, *node_state.values()])
    return out


def _pair_ops(nodes: Mapping[str, Node], a: str, b: str) -> tuple[Window, Window, bool]:
    """The mean and std windows of the pair (``a``, ``b``) and whether ``a`` is the mean."""
    op_a, op_b = nodes[a].op, nodes[b].op
    if not isinstance(op_a, Window) or not isinstance(op_b, Window):  # pragma: no cover
        raise FeatureError(f"nodes {a!r} and {b!r} are not both windows")
    return (op_a, op_b, True) if op_a.kind == "mean" else (op_b, op_a, False)


def flatten_state(state: dict[str, State]) -> dict[str, np.ndarray]:
    """``{node: {name: arr}}`` as one flat mapping suitable for ``np.savez``."""
    flat: dict[str, Any] = {}
    for i, (key, node_state) in enumerate(state.items()):
        flat[f"k{i}"] = np.array(key)
        for name, arr in node_state.items():
            flat[f"s{i}__{name}"] = arr
    return flat


def unflatten_state(flat: Mapping[str, np.ndarray]) -> dict[str, State]:
    keys = {name[1:]: str(arr) for name, arr in flat.items() if name.startswith("k")}
    state: dict[str, State] = {key: {} for key in keys.values()}
    for name, arr in flat.items():
        if name.startswith("s"):
            idx, field_name = name[1:].split("__", 1)
            state[keys[idx]][field_name] = np.asarray(arr)
    return state


__all__ = [
    "Calendar",
    "Context",
    "CrossRank",
    "Graph",
    "Lag",
    "Map",
    "Node",
    "Op",
    "Recursive",
    "RunningSum",
    "Source",
    "State",
    "Window",
    "flatten_state",
    "unflatten_state",
    "window_mean",
    "window_sum",
]
