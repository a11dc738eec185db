"""Why a policy acts as it does: attributions of its action to the entries of its observation.

Three methods, all on flat observations ``X`` of shape ``(n, size)``:

* :func:`integrated_gradients` (captum ``IntegratedGradients``) for a torch module or a
  differentiable callable: per-decision attributions that sum to ``f(x) - f(baseline)``
  (completeness); the convergence delta measures how far the path integral is from it.
* :func:`permutation_importance` for any batched ``act(X) -> actions``: per entry, the mean
  absolute action change when that entry is shuffled across the observations (global only).
* :func:`kernel_shap` for any batched ``act``: Kernel SHAP (Lundberg & Lee 2017) against a
  background set, solved as the constrained weighted least squares of the paper. captum's
  ``KernelShap`` fits its surrogate with scikit-learn, which tradeforge does not depend on, so
  this is a small numpy implementation: exact (every coalition with the Shapley kernel weight)
  up to ``nsamples`` coalitions, otherwise coalition sizes drawn from the Shapley kernel, each
  coalition paired with its complement.

:class:`ObservationLayout` names the flat positions of a window observation (see
``tradeforge.envs.observations``): ``(window, N, F)`` features, oldest bar first, then the
account state ``weights (N,), cash fraction, unrealized P&L``. A feature entry is named
``feature[symbol]@t-k`` (``k`` bars before the decision bar, ``@t`` the decision bar itself),
the account entries ``weight[symbol]``, ``cash_fraction`` and ``unrealized_pnl``.
:func:`aggregate` sums attributions per feature, per symbol or per bar offset.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from tradeforge.core.errors import ConfigError, FeatureError
from tradeforge.core.types import FloatArray

ACCOUNT = "(account)"
ACCOUNT_NAMES = ("weight", "cash_fraction", "unrealized_pnl")
Forward = torch.nn.Module | Callable[[Tensor], Tensor]
Act = Callable[[np.ndarray], np.ndarray]
Target = int | Sequence[int] | None


# -- observation layout -----------------------------------------------------------------------
@dataclass(frozen=True)
class ObservationEntry:
    """One flat observation position: a feature at a bar offset and symbol, or account state."""

    position: int
    kind: Literal["feature", "account"]
    feature: str
    symbol: str  # ACCOUNT for the cash fraction and the unrealized P&L
    offset: int  # bars before the decision bar (0: the decision bar; account entries: 0)

    @property
    def name(self) -> str:
        if self.kind == "account":
            return self.feature if self.symbol == ACCOUNT else f"{self.feature}[{self.symbol}]"
        when = "t" if self.offset == 0 else f"t-{self.offset}"
        return f"{self.feature}[{self.symbol}]@{when}"


@dataclass(frozen=True)
class ObservationLayout:
    """The flat layout of a window observation: ``window`` bars x symbols x features + account."""

    window: int
    symbols: tuple[str, ...]
    features: tuple[str, ...]
    account: bool = True

    def __post_init__(self) -> None:
        if self.window < 1 or not self.symbols or not self.features:
            raise FeatureError(
                f"observation layout window = {self.window}, {len(self.symbols)} symbols, "
                f"{len(self.features)} features; expected window >= 1 and at least one of each"
            )

    @property
    def feature_size(self) -> int:
        return self.window * len(self.symbols) * len(self.features)

    @property
    def size(self) -> int:
        return self.feature_size + (len(self.symbols) + 2 if self.account else 0)

    def entry(self, position: int) -> ObservationEntry:
        """What flat ``position`` holds."""
        if not 0 <= position < self.size:
            raise FeatureError(f"position = {position}; expected 0 <= position < {self.size}")
        n, f = len(self.symbols), len(self.features)
        if position < self.feature_size:
            bar, rest = divmod(position, n * f)
            i, j = divmod(rest, f)
            offset = self.window - 1 - bar
            return ObservationEntry(position, "feature", self.features[j], self.symbols[i], offset)
        k = position - self.feature_size
        if k < n:
            return ObservationEntry(position, "account", "weight", self.symbols[k], 0)
        return ObservationEntry(position, "account", ACCOUNT_NAMES[k - n + 1], ACCOUNT, 0)

    def position(self, feature: str, symbol: str, offset: int = 0) -> int:
        """The flat position of ``feature`` of ``symbol`` ``offset`` bars before the decision
        (account entries: ``weight`` with a symbol, ``cash_fraction`` / ``unrealized_pnl``)."""
        n, f = len(self.symbols), len(self.features)
        if self.account and feature in ACCOUNT_NAMES:
            if feature == "weight":
                return self.feature_size + self._symbol(symbol)
            return self.feature_size + n + ACCOUNT_NAMES.index(feature) - 1
        if feature not in self.features:
            raise FeatureError(f"feature = {feature!r}; expected one of {list(self.features)}")
        if not 0 <= offset < self.window:
            raise FeatureError(f"offset = {offset}; expected 0 <= offset < window {self.window}")
        bar = self.window - 1 - offset
        return bar * n * f + self._symbol(symbol) * f + self.features.index(feature)

    def _symbol(self, symbol: str) -> int:
        if symbol not in self.symbols:
            raise FeatureError(f"symbol = {symbol!r}; expected one of {list(self.symbols)}")
        return self.symbols.index(symbol)

    @cached_property
    def entries(self) -> tuple[ObservationEntry, ...]:
        return tuple(self.entry(p) for p in range(self.size))

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    @cached_property
    def _by_name(self) -> dict[str, ObservationEntry]:
        return {e.name: e for e in self.entries}

    def lookup(self, name: str) -> ObservationEntry:
        """The entry named ``name`` (the inverse of ``entry(p).name``)."""
        found = self._by_name.get(name)
        if found is None:
            raise FeatureError(f"observation entry {name!r} is not in this layout")
        return found

    def tile(self, feature_values: FloatArray, account_values: FloatArray) -> FloatArray:
        """A flat observation with ``feature_values`` (F,) at every bar and symbol and
        ``account_values`` (N + 2,) as the account tail (e.g. an integrated-gradients baseline)."""
        feats = np.asarray(feature_values, dtype=np.float64).reshape(-1)
        if feats.shape != (len(self.features),):
            raise FeatureError(
                f"feature_values have shape {feats.shape}; expected ({len(self.features)},)"
            )
        parts = [np.tile(feats, self.window * len(self.symbols))]
        if self.account:
            tail = np.asarray(account_values, dtype=np.float64).reshape(-1)
            if tail.shape != (len(self.symbols) + 2,):
                raise FeatureError(
                    f"account_values have shape {tail.shape}; expected ({len(self.symbols) + 2},)"
                )
            parts.append(tail)
        out: FloatArray = np.concatenate(parts)
        return out


def aggregate(
    values: FloatArray,
    layout: ObservationLayout,
    by: Literal["feature", "symbol", "offset"] = "feature",
    *,
    absolute: bool = True,
) -> pd.Series | pd.DataFrame:
    """Attributions summed per feature, per symbol or per bar offset (absolute values first when
    ``absolute``). ``values`` (size,) gives a Series, (n, size) a DataFrame with one column per
    group. Account entries group as their own features (``weight``, ...), under symbol
    ``(account)`` (cash, P&L; a symbol's weight counts to that symbol) and offset ``account``."""
    x = np.asarray(values, dtype=np.float64)
    if x.shape[-1] != layout.size:
        raise FeatureError(f"values have {x.shape[-1]} entries; the layout has {layout.size}")
    if absolute:
        x = np.abs(x)
    keys: list[str] = []
    for e in layout.entries:
        if by == "feature":
            keys.append(e.feature)
        elif by == "symbol":
            keys.append(e.symbol)
        elif by == "offset":
            keys.append("account" if e.kind == "account" else f"t-{e.offset}")
        else:
            raise ConfigError(f"by = {by!r}; expected 'feature', 'symbol' or 'offset'")
    groups = list(dict.fromkeys(keys))
    index = np.array([groups.index(k) for k in keys])
    matrix = np.zeros((layout.size, len(groups)))
    matrix[np.arange(layout.size), index] = 1.0
    summed = x @ matrix
    if x.ndim == 1:
        return pd.Series(summed, index=groups, name=by)
    return pd.DataFrame(summed, columns=groups)


# -- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attribution:
    """Per-observation attributions of one scalar output to every flat observation entry.

    ``outputs`` is f(x) and ``baseline_outputs`` f(baseline) (for Kernel SHAP the mean over the
    background); ``delta`` = sum(values) - (outputs - baseline_outputs), the completeness error.
    """

    method: str
    values: FloatArray  # (n, size)
    inputs: FloatArray  # (n, size)
    baseline: FloatArray  # (size,) or (n, size); the background for Kernel SHAP
    outputs: FloatArray  # (n,)
    baseline_outputs: FloatArray  # (n,)
    delta: FloatArray  # (n,)
    seconds: float

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def completeness_error(self) -> float:
        """max |sum(attributions) - (f(x) - f(baseline))| over the observations."""
        return float(np.max(np.abs(self.delta))) if self.delta.size else 0.0

    @property
    def ms_per_observation(self) -> float:
        return 1000.0 * self.seconds / max(1, self.n)

    def importance(self) -> FloatArray:
        """Global importance: mean |attribution| per entry over the observations."""
        out: FloatArray = np.abs(self.values).mean(axis=0)
        return out


@dataclass(frozen=True)
class Importance:
    """Global importance per flat entry (permutation: mean |action change|; ``std`` over repeats)."""

    method: str
    values: FloatArray  # (size,)
    std: FloatArray  # (size,)
    n_repeats: int
    n_observations: int
    seconds: float

    def importance(self) -> FloatArray:
        return self.values


def top_k(
    attribution: Attribution | Importance | FloatArray,
    names: Sequence[str],
    k: int = 5,
    row: int | None = None,
) -> list[tuple[str, float]]:
    """The ``k`` entries with the largest |value|, as (name, value), largest first.

    An :class:`Attribution` gives the signed attributions of observation ``row``, or the global
    mean |attribution| when ``row`` is None; an :class:`Importance` or a 1-D array its values.
    """
    if isinstance(attribution, Attribution):
        values = attribution.importance() if row is None else attribution.values[row]
    elif isinstance(attribution, Importance):
        values = attribution.values
    else:
        values = np.asarray(attribution, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size != len(names):
        raise FeatureError(f"{values.size} attributions but {len(names)} names; expected equal")
    if k < 1:
        raise ConfigError(f"k = {k}; expected at least 1")
    return [(str(names[i]), float(values[i])) for i in _largest(np.abs(values), k)]


def _largest(magnitude: FloatArray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, largest first, ties by index: the same order as
    ``np.argsort(-magnitude, kind="stable")[:k]`` in O(n) (the candidates are every entry at
    least as large as the k-th largest, ties included)."""
    if k >= magnitude.size:
        return np.argsort(-magnitude, kind="stable")
    kth = np.partition(magnitude, magnitude.size - k)[magnitude.size - k]
    candidates = np.flatnonzero(magnitude >= kth)
    return candidates[np.argsort(-magnitude[candidates], kind="stable")][:k]


# -- helpers ----------------------------------------------------------------------------------
def _matrix(x: FloatArray, name: str) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise FeatureError(f"{name} has shape {np.shape(x)}; expected (n, size) with n >= 1")
    if not np.all(np.isfinite(arr)):
        raise FeatureError(f"{name} holds non-finite values; expected finite observations")
    return arr


def _torch_kind(forward: Forward) -> tuple[torch.dtype, torch.device]:
    if isinstance(forward, torch.nn.Module):
        for p in forward.parameters():
            return p.dtype, p.device
    return torch.float64, torch.device("cpu")


def _pick(out: Tensor, target: Target, n: int) -> Tensor:
    """(n,) outputs of ``out`` (n,) or (n, A) at ``target`` (an index or one per row)."""
    if out.ndim == 1:
        return out
    if out.ndim == 2 and out.shape[1] == 1 and target in (None, 0):
        return out[:, 0]
    if target is None:
        raise ConfigError(
            f"target = None but the forward returns {out.shape[1]} outputs per observation; "
            "expected an output index (or one per observation)"
        )
    if isinstance(target, int):
        return out[:, target]
    idx = torch.as_tensor(list(target), dtype=torch.long, device=out.device)
    if idx.shape != (n,):
        raise ConfigError(f"target has {idx.numel()} entries; expected one per observation ({n})")
    return out.gather(1, idx[:, None])[:, 0]


def numpy_forward(forward: Forward, target: Target = None) -> Act:
    """A batched numpy ``act`` from a torch forward (its ``target`` output, or all outputs)."""
    dtype, device = _torch_kind(forward)

    def act(x: np.ndarray) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        with torch.no_grad():
            out = forward(torch.as_tensor(arr, dtype=dtype, device=device))
            if target is not None:
                out = _pick(out, target, arr.shape[0])
        return np.asarray(out.detach().cpu().numpy(), dtype=np.float64)

    return act


def _outputs(act: Act, x: np.ndarray, target: Target) -> FloatArray:
    """(m, A) float outputs of ``act``; a target selects one column (-> (m, 1))."""
    out = np.asarray(act(x), dtype=np.float64)
    if out.ndim == 1:
        out = out[:, None]
    if out.shape[0] != x.shape[0]:
        raise FeatureError(f"act returned {out.shape[0]} rows for {x.shape[0]} observations")
    if target is not None:
        if not isinstance(target, int):
            raise ConfigError("target for a numpy act must be one output index (an int)")
        out = out[:, [target]]
    return out


# -- integrated gradients ---------------------------------------------------------------------
def integrated_gradients(
    forward: Forward,
    x: FloatArray,
    baseline: FloatArray,
    n_steps: int = 50,
    target: Target = None,
    *,
    internal_batch_size: int | None = None,
) -> Attribution:
    """captum Integrated Gradients of ``forward``'s ``target`` output, from ``baseline`` to ``x``.

    ``forward`` maps an (n, size) tensor to (n,) or (n, A) (``target``: the output index, or one
    index per observation); a module runs in its own dtype and device and should be in eval mode.
    ``baseline`` is one observation (size,) or one per row. Gauss-Legendre quadrature.
    """
    from captum.attr import IntegratedGradients

    if n_steps < 2:
        raise ConfigError(f"n_steps = {n_steps}; expected at least 2")
    xs = _matrix(x, "x")
    base = np.broadcast_to(np.asarray(baseline, dtype=np.float64), xs.shape)
    if not np.all(np.isfinite(base)):
        raise FeatureError("baseline holds non-finite values; expected finite numbers")
    dtype, device = _torch_kind(forward)
    n = xs.shape[0]

    def scalar(t: Tensor) -> Tensor:
        out = forward(t)
        if out.ndim == 2 and out.shape[1] == 1:
            return out[:, 0]
        return out

    inputs = torch.as_tensor(xs, dtype=dtype, device=device)
    baselines = torch.as_tensor(np.array(base), dtype=dtype, device=device)
    captum_target = target if target is None or isinstance(target, int) else list(target)
    began = time.perf_counter()
    with torch.no_grad():
        probe = scalar(inputs[:1])
    if probe.ndim == 2 and target is None:
        raise ConfigError(
            f"target = None but the forward returns {probe.shape[1]} outputs per observation; "
            "expected an output index (or one per observation)"
        )
    ig = IntegratedGradients(scalar)
    attr, delta = ig.attribute(
        inputs,
        baselines=baselines,
        target=captum_target if probe.ndim == 2 else None,
        n_steps=n_steps,
        internal_batch_size=internal_batch_size,
        return_convergence_delta=True,
    )
    seconds = time.perf_counter() - began
    with torch.no_grad():
        fx = _pick(scalar(inputs), target, n)
        fb = _pick(scalar(baselines), target, n)
    values = attr.detach().cpu().numpy().astype(np.float64)
    out = fx.detach().cpu().numpy().astype(np.float64)
    base_out = fb.detach().cpu().numpy().astype(np.float64)
    del delta  # captum's delta is in the module's dtype; recomputed below in float64
    return Attribution(
        method="integrated_gradients",
        values=values,
        inputs=xs,
        baseline=np.asarray(baseline, dtype=np.float64),
        outputs=out,
        baseline_outputs=base_out,
        delta=values.sum(axis=1) - (out - base_out),
        seconds=seconds,
    )


def explain_decision(
    forward: Forward,
    observation: FloatArray,
    baseline: FloatArray,
    layout: ObservationLayout,
    *,
    target: int | None = None,
    k: int = 5,
    n_steps: int = 50,
) -> dict[str, Any]:
    """The top-``k`` IG attributions of one decision as a JSON-ready dict (for an audit event or
    a dashboard's "why" panel): the output, its baseline value, the completeness error, the
    cost, and per entry its name, observed value and attribution."""
    x = np.asarray(observation, dtype=np.float64).reshape(1, -1)
    if x.shape[1] != layout.size:
        raise FeatureError(f"observation has {x.shape[1]} entries; the layout has {layout.size}")
    attr = integrated_gradients(forward, x, baseline, n_steps, target)
    top = top_k(attr, layout.names, k=min(k, layout.size), row=0)
    return {
        "method": attr.method,
        "output": float(attr.outputs[0]),
        "baseline_output": float(attr.baseline_outputs[0]),
        "completeness_error": attr.completeness_error,
        "ms": 1000.0 * attr.seconds,
        "top": [
            {
                "entry": name,
                "observed": float(x[0, layout.lookup(name).position]),
                "attribution": value,
            }
            for name, value in top
        ],
    }


def flat_observation(observation: Any) -> FloatArray:
    """One observation as a flat float64 vector: an array as is, a dict observation as its
    ``features`` (window, N, F) then its ``account`` entries (the :class:`ObservationLayout`
    order)."""
    if isinstance(observation, dict):
        feats = np.asarray(observation["features"], dtype=np.float64).reshape(-1)
        return np.concatenate([feats, np.asarray(observation["account"], dtype=np.float64)])
    out: FloatArray = np.asarray(observation, dtype=np.float64).reshape(-1)
    return out


class DecisionExplainer:
    """Per-decision Integrated Gradients for a trading node: ``explainer(observation)`` gives
    the top-``k`` entries of the explained outputs as a JSON-ready dict (for the decision's
    journal record and the dashboard's "last decision" panel).

    ``forward`` maps raw flat observations (n, size) to (n,) or (n, A) outputs (e.g. the
    experiment layer's ``PolicyOutput`` of an SB3 actor, normalizer included), named
    ``outputs`` (default ``output[i]``); ``baseline`` is the reference observation (the training
    feature means). Explained are the ``targets`` given, else the ``max_outputs`` (default 1)
    outputs that moved most from their baseline value, ``|f(x) - f(baseline)|`` (a 30-asset
    policy's decision is explained by its largest move, not by 31 backward passes).

    The integral is the Gauss-Legendre rule of :func:`integrated_gradients` (captum) with
    ``n_steps`` points, without captum's per-call overhead: the points, ``x`` and the baseline
    go through ``forward`` as ONE batch and one backward pass per explained output gives the
    gradients (``benchmarks/bench_explain.py`` measures the cost)."""

    def __init__(
        self,
        forward: Forward,
        layout: ObservationLayout,
        baseline: FloatArray,
        *,
        k: int = 5,
        n_steps: int = 16,
        targets: Sequence[int] | None = None,
        max_outputs: int = 1,
        outputs: Sequence[str] | None = None,
    ) -> None:
        if k < 1:
            raise ConfigError(f"k = {k}; expected at least 1 entry per decision")
        if n_steps < 2:
            raise ConfigError(f"n_steps = {n_steps}; expected at least 2")
        if max_outputs < 1:
            raise ConfigError(f"max_outputs = {max_outputs}; expected at least 1")
        base = np.asarray(baseline, dtype=np.float64).reshape(-1)
        if base.size != layout.size:
            raise FeatureError(f"baseline has {base.size} entries; the layout has {layout.size}")
        if isinstance(forward, torch.nn.Module):
            forward.eval()
        self.forward, self.layout, self.baseline = forward, layout, base
        self.k, self.n_steps, self.max_outputs = min(k, layout.size), n_steps, max_outputs
        dtype, device = _torch_kind(forward)
        with torch.no_grad():
            probe = forward(torch.as_tensor(base[None], dtype=dtype, device=device))
        n_out = 1 if probe.ndim == 1 else int(probe.shape[1])
        names = list(outputs) if outputs is not None else (
            ["output"] if n_out == 1 else [f"output[{i}]" for i in range(n_out)]
        )  # fmt: skip
        if len(names) != n_out:
            raise ConfigError(f"{len(names)} output names for {n_out} outputs; expected one each")
        bad = [t for t in (targets or ()) if not 0 <= int(t) < n_out]
        if bad:
            raise ConfigError(f"targets {bad} out of range; the forward has {n_out} outputs")
        self.outputs = tuple(names)
        self.targets = tuple(int(t) for t in targets) if targets is not None else None
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)  # on [-1, 1]
        self._nodes, self._weights = (nodes + 1.0) / 2.0, weights / 2.0

    def attributions(
        self, observation: Any
    ) -> tuple[list[int], FloatArray, FloatArray, FloatArray]:
        """IG of one observation: (the explained output indices, their attributions
        (T, size), f(x) (T,), f(baseline) (T,)), in one batched forward pass."""
        x = flat_observation(observation)
        if x.size != self.layout.size:
            raise FeatureError(
                f"observation has {x.size} entries; the layout has {self.layout.size}"
            )
        if not np.all(np.isfinite(x)):
            raise FeatureError("observation holds non-finite values; expected finite numbers")
        dtype, device = _torch_kind(self.forward)
        diff = x - self.baseline
        points = self.baseline[None, :] + self._nodes[:, None] * diff[None, :]
        batch = torch.as_tensor(np.vstack([points, x, self.baseline]), dtype=dtype, device=device)
        batch.requires_grad_(True)
        out = self.forward(batch)
        out = out[:, None] if out.ndim == 1 else out
        n = self.n_steps
        ends = out[n:].detach().cpu().numpy().astype(np.float64)  # (2, A): f(x), f(baseline)
        if self.targets is not None:
            chosen = list(self.targets)
        else:
            moved = np.abs(ends[0] - ends[1])
            chosen = [int(i) for i in np.argsort(-moved, kind="stable")[: self.max_outputs]]
        picked = out[:n, chosen]  # (n, T)
        if len(chosen) == 1:
            (grad,) = torch.autograd.grad(picked.sum(), batch)
            grad = grad[None]
        else:  # one backward per explained output, batched (vmap) into one call
            seeds = torch.zeros((len(chosen), n, len(chosen)), dtype=picked.dtype,
                                device=picked.device)  # fmt: skip
            seeds[torch.arange(len(chosen)), :, torch.arange(len(chosen))] = 1.0
            (grad,) = torch.autograd.grad(picked, batch, grad_outputs=seeds,
                                          is_grads_batched=True)  # fmt: skip
        g = grad[:, :n].detach().cpu().numpy().astype(np.float64)  # (T, n, size)
        values = diff[None, :] * np.einsum("s,tsd->td", self._weights, g)
        return chosen, values, ends[0, chosen], ends[1, chosen]

    def __call__(self, observation: Any) -> dict[str, Any]:
        began = time.perf_counter()
        chosen, values, fx, fb = self.attributions(observation)
        x = flat_observation(observation)
        explained = []
        for row, target in enumerate(chosen):
            top = top_k(values[row], self.layout.names, k=self.k)
            explained.append({
                "output": self.outputs[target],
                "value": float(fx[row]),
                "baseline_value": float(fb[row]),
                "completeness_error": float(abs(values[row].sum() - (fx[row] - fb[row]))),
                "top": [{"entry": entry, "observed": float(x[self.layout.lookup(entry).position]),
                         "attribution": value} for entry, value in top],
            })  # fmt: skip
        return {
            "method": "integrated_gradients",
            "n_steps": self.n_steps,
            "ms": 1000.0 * (time.perf_counter() - began),
            "outputs": explained,
        }


# -- permutation importance -------------------------------------------------------------------
def permutation_importance(
    act: Act,
    X: FloatArray,
    n_repeats: int = 5,
    seed: int = 0,
    *,
    target: int | None = None,
    max_rows: int = 65536,
) -> Importance:
    """Per entry: mean over observations and action dimensions of |act(X with the entry shuffled
    across observations) - act(X)|, averaged over ``n_repeats`` shuffles (``std`` over them).

    ``act`` maps (m, size) to (m,) or (m, A) and is called on at most ``max_rows`` rows at a time.
    Shuffling one lag of one feature breaks its correlation with the neighbouring lags, so the
    importance of strongly autocorrelated features is a statement about unusual inputs.
    """
    if n_repeats < 1:
        raise ConfigError(f"n_repeats = {n_repeats}; expected at least 1")
    xs = _matrix(X, "X")
    n, size = xs.shape
    if n < 2:
        raise FeatureError("permutation importance needs at least 2 observations to shuffle")
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    base = _outputs(act, xs, target)
    changes = np.zeros((n_repeats, size))
    per_call = max(1, max_rows // n)
    for r in range(n_repeats):
        perm = rng.permutation(n)
        for lo in range(0, size, per_call):
            cols = range(lo, min(size, lo + per_call))
            batch = np.repeat(xs[None], len(cols), axis=0)
            for b, j in enumerate(cols):
                batch[b, :, j] = xs[perm, j]
            out = _outputs(act, batch.reshape(-1, size), target).reshape(len(cols), n, -1)
            changes[r, lo : lo + len(cols)] = np.abs(out - base[None]).mean(axis=(1, 2))
    return Importance(
        method="permutation",
        values=changes.mean(axis=0),
        std=changes.std(axis=0),
        n_repeats=n_repeats,
        n_observations=n,
        seconds=time.perf_counter() - began,
    )


# -- kernel SHAP ------------------------------------------------------------------------------
def _coalitions(
    size: int, nsamples: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """(M, size) 0/1 coalitions (never empty or full) and their regression weights."""
    if size <= 30 and 2**size - 2 <= nsamples:
        rows, weights = [], []
        for s in range(1, size):
            w = (size - 1) / (math.comb(size, s) * s * (size - s))
            for members in combinations(range(size), s):
                z = np.zeros(size)
                z[list(members)] = 1.0
                rows.append(z)
                weights.append(w)
        return np.array(rows), np.array(weights)
    sizes = np.arange(1, size)
    mass = (size - 1) / (sizes * (size - sizes))
    half = max(1, nsamples // 2)
    drawn = rng.choice(sizes, size=half, p=mass / mass.sum())
    z = np.zeros((half, size))
    for i, s in enumerate(drawn):
        z[i, rng.choice(size, size=s, replace=False)] = 1.0
    # drawn from the kernel, each paired with its complement: equal regression weights
    both = np.concatenate([z, 1.0 - z])
    return both, np.ones(both.shape[0])


def kernel_shap(
    act: Act,
    X: FloatArray,
    background: FloatArray,
    nsamples: int = 2048,
    seed: int = 0,
    *,
    target: int | None = None,
    max_rows: int = 262144,
) -> Attribution:
    """Kernel SHAP values of ``act``'s output (column ``target`` when it has several) for every
    row of ``X`` against ``background`` (one or more observations; the value of a coalition is
    the mean output over the background with the coalition's entries taken from x).

    With 2**size - 2 <= ``nsamples`` every coalition is evaluated and the values are exact
    Shapley values; otherwise ``nsamples`` coalitions are drawn. The efficiency constraint is
    imposed exactly: the values sum to f(x) - E_background f.
    """
    xs = _matrix(X, "X")
    bg = _matrix(background, "background")
    n, size = xs.shape
    if bg.shape[1] != size:
        raise FeatureError(f"background has {bg.shape[1]} columns; X has {size}")
    if nsamples < 2:
        raise ConfigError(f"nsamples = {nsamples}; expected at least 2")
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    fx = _outputs(act, xs, target)
    if fx.shape[1] != 1:
        raise ConfigError(
            f"target = None but act returns {fx.shape[1]} outputs per observation; expected an "
            "output index"
        )
    f0 = float(_outputs(act, bg, target).mean())
    values = np.zeros((n, size))
    for row in range(n):
        delta = float(fx[row, 0]) - f0
        if size == 1:
            values[row, 0] = delta
            continue
        z, w = _coalitions(size, nsamples, rng)
        v = np.empty(z.shape[0])
        per_call = max(1, max_rows // bg.shape[0])
        for lo in range(0, z.shape[0], per_call):
            zz = z[lo : lo + per_call, None, :]
            mixed = zz * xs[row] + (1.0 - zz) * bg[None]
            out = _outputs(act, mixed.reshape(-1, size), target)
            v[lo : lo + per_call] = out.reshape(zz.shape[0], bg.shape[0]).mean(axis=1)
        # eliminate the last entry with the constraint sum(phi) = delta
        y = v - f0 - z[:, -1] * delta
        a = z[:, :-1] - z[:, -1:]
        root = np.sqrt(w)[:, None]
        phi, *_ = np.linalg.lstsq(a * root, y * root[:, 0], rcond=None)
        values[row, :-1] = phi
        values[row, -1] = delta - phi.sum()
    out = fx[:, 0]
    base_out = np.full(n, f0)
    return Attribution(
        method="kernel_shap",
        values=values,
        inputs=xs,
        baseline=bg,
        outputs=out,
        baseline_outputs=base_out,
        delta=values.sum(axis=1) - (out - base_out),
        seconds=time.perf_counter() - began,
    )


__all__ = [
    "ACCOUNT",
    "Attribution",
    "DecisionExplainer",
    "Importance",
    "ObservationEntry",
    "ObservationLayout",
    "aggregate",
    "explain_decision",
    "flat_observation",
    "integrated_gradients",
    "kernel_shap",
    "numpy_forward",
    "permutation_importance",
    "top_k",
]
