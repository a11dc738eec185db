"""Action interpreters: each owns its action space and maps batches of actions to target weights.

Every interpreter works on a batch: ``to_weights(actions, previous)`` takes B actions stacked on
the first axis and the previous targets ``(B, N)`` and returns target weights ``(B, N)`` float64.
The weights already respect ``allow_short``, ``max_position`` and ``max_leverage`` so that what an
agent is told (``info["weights"]``) is what the simulator is asked to hold.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from gymnasium import spaces

from tradeforge.core.errors import SimulationError
from tradeforge.core.types import FloatArray
from tradeforge.envs.config import EnvConfig

_TOL = 1e-6


class ActionInterpreter(Protocol):
    """Owns an action space for one environment and turns actions into target weights."""

    space: spaces.Space[Any]

    def to_weights(self, actions: np.ndarray, previous: FloatArray) -> FloatArray:
        """Validate a batch of actions (B, ...) and map it to target weights (B, N)."""
        ...


def _cap(weights: FloatArray, max_leverage: float) -> FloatArray:
    """Scale rows whose gross exposure exceeds ``max_leverage`` back onto it."""
    gross = np.abs(weights).sum(axis=1)
    factor = np.minimum(1.0, max_leverage / np.maximum(gross, 1e-300))
    out: FloatArray = weights * factor[:, None]
    return out


class DiscreteActions:
    """Per-asset levels.

    ``position`` mode: action k picks the level ``levels[k]`` (short/flat/long = -1/0/+1, or
    flat/long = 0/+1 without shorts). ``trade`` mode: sell/hold/buy = 0/1/2 moves the previous
    level down, keeps it, or moves it up (clipped to the allowed levels). A level of +1 means a
    weight of ``min(max_position, max_leverage / N)``. One asset: ``Discrete``; more:
    ``MultiDiscrete``.
    """

    def __init__(self, n_assets: int, config: EnvConfig) -> None:
        sim = config.sim
        self.n_assets = n_assets
        self.mode = config.discrete_mode
        self.low_level = -1.0 if sim.allow_short else 0.0
        self.unit = min(sim.max_position, sim.max_leverage / n_assets)
        if self.mode == "position":
            self.levels = np.array([-1.0, 0.0, 1.0] if sim.allow_short else [0.0, 1.0])
        else:
            self.levels = np.array([-1.0, 0.0, 1.0])  # step sizes for sell / hold / buy
        n = len(self.levels)
        self.space: spaces.Space[Any] = (
            spaces.Discrete(n) if n_assets == 1 else spaces.MultiDiscrete([n] * n_assets)
        )

    def to_weights(self, actions: np.ndarray, previous: FloatArray) -> FloatArray:
        raw = np.asarray(actions)
        n_levels = len(self.levels)
        batch = previous.shape[0]
        integral = np.issubdtype(raw.dtype, np.integer) or (
            np.issubdtype(raw.dtype, np.floating) and bool(np.all(np.mod(raw, 1) == 0))
        )
        if raw.size != batch * self.n_assets or not integral:
            raise SimulationError(
                f"discrete action {raw!r} is not valid; expected integers in [0, {n_levels - 1}] "
                f"for each of {self.n_assets} asset(s)"
            )
        idx = raw.reshape(batch, self.n_assets)
        idx = idx.astype(np.int64)
        if idx.min() < 0 or idx.max() >= n_levels:
            raise SimulationError(
                f"discrete action {raw.tolist()!r} is outside the action space; expected integers "
                f"in [0, {n_levels - 1}]"
            )
        if self.mode == "position":
            level = self.levels[idx]
        else:
            prev_level = np.rint(previous / self.unit)
            level = np.clip(prev_level + self.levels[idx], self.low_level, 1.0)
        out: FloatArray = level * self.unit
        return out


def _unit_box(actions: np.ndarray, batch: int, n_assets: int, kind: str) -> FloatArray:
    """``actions`` as (batch, n_assets) floats in [-1, 1] (a specific error names the shape or
    the values otherwise; NaN is refused too)."""
    raw = np.asarray(actions, dtype=np.float64)
    if raw.size != batch * n_assets:
        raise SimulationError(
            f"{kind} action has shape {raw.shape}; expected ({n_assets},) per env"
        )
    a: FloatArray = raw.reshape(batch, n_assets)
    if not np.all(np.abs(a) <= 1.0 + _TOL):  # also rejects NaN
        raise SimulationError(
            f"{kind} action {a.tolist()!r} is outside the action space; expected finite "
            "values in [-1, 1]"
        )
    return a


class ContinuousActions:
    """Target position per asset in [-1, 1] times ``max_position``; negatives mean flat without
    shorts; the gross exposure is scaled down to ``max_leverage`` when it exceeds it."""

    def __init__(self, n_assets: int, config: EnvConfig) -> None:
        sim = config.sim
        self.n_assets = n_assets
        self.allow_short = sim.allow_short
        self.max_position = sim.max_position
        self.max_leverage = sim.max_leverage
        self.space: spaces.Space[Any] = spaces.Box(-1.0, 1.0, shape=(n_assets,), dtype=np.float32)

    def to_weights(self, actions: np.ndarray, previous: FloatArray) -> FloatArray:
        a = _unit_box(actions, previous.shape[0], self.n_assets, "continuous")
        w = np.clip(a, 0.0 if not self.allow_short else -1.0, 1.0) * self.max_position
        return _cap(w, self.max_leverage)


def project_simplex(v: FloatArray, radius: float = 1.0) -> FloatArray:
    """Euclidean projection of each row of ``v`` onto {w >= 0, sum(w) = radius}."""
    n = v.shape[1]
    u = -np.sort(-v, axis=1)
    css = np.cumsum(u, axis=1) - radius
    ks = np.arange(1, n + 1)
    cond = u - css / ks > 0
    rho = n - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(v.shape[0]), rho] / (rho + 1)
    out: FloatArray = np.maximum(v - theta[:, None], 0.0)
    return out


def project_l1_ball(v: FloatArray, radius: float) -> FloatArray:
    """Euclidean projection of each row onto {sum |w| <= radius} (rows inside stay as they are)."""
    inside = np.abs(v).sum(axis=1) <= radius
    proj = np.sign(v) * project_simplex(np.abs(v), radius)
    out: FloatArray = np.where(inside[:, None], v, proj)
    return out


class WeightsActions:
    """Portfolio weights from a Box in [-1, 1] of size N (+1 for cash when ``weights_cash``).

    * ``softmax``: weights = softmax(``softmax_scale`` * a) over the assets (and cash), long only.
    * ``simplex``: without shorts, the Euclidean projection of ``(a + 1) / 2`` onto the simplex
      (assets and cash sum to 1; without cash the assets alone sum to 1); with shorts, the
      projection of ``a * max_leverage`` onto the L1 ball of radius ``max_leverage`` (the rest is
      cash).
    The cash entry, when present, is dropped after the mapping. ``max_position`` clips each weight.
    """

    def __init__(self, n_assets: int, config: EnvConfig) -> None:
        sim = config.sim
        if config.weights_transform == "softmax" and sim.allow_short:
            raise SimulationError(
                "weights_transform = 'softmax' cannot express short positions but "
                "sim.allow_short = True; use weights_transform = 'simplex' for long/short weights"
            )
        self.n_assets = n_assets
        self.transform = config.weights_transform
        self.cash = config.weights_cash
        self.scale = config.softmax_scale
        self.allow_short = sim.allow_short
        self.max_position = sim.max_position
        self.max_leverage = sim.max_leverage
        self.size = n_assets + (1 if self.cash else 0)
        self.space: spaces.Space[Any] = spaces.Box(-1.0, 1.0, shape=(self.size,), dtype=np.float32)

    def to_weights(self, actions: np.ndarray, previous: FloatArray) -> FloatArray:
        raw = np.asarray(actions, dtype=np.float64)
        batch = previous.shape[0]
        if raw.size != batch * self.size:
            raise SimulationError(
                f"weights action has shape {raw.shape}; expected ({self.size},) per env "
                f"({self.n_assets} assets{' + cash' if self.cash else ''})"
            )
        a = raw.reshape(batch, self.size)
        if not np.all(np.abs(a) <= 1.0 + _TOL):
            raise SimulationError(
                f"weights action {a.tolist()!r} is outside the action space; expected finite "
                "values in [-1, 1]"
            )
        if self.transform == "softmax":
            z = self.scale * a
            z = np.exp(z - z.max(axis=1, keepdims=True))
            w = z / z.sum(axis=1, keepdims=True)
        elif self.allow_short:
            w = project_l1_ball(a * self.max_leverage, self.max_leverage)
        else:
            w = project_simplex((a + 1.0) * 0.5, 1.0)
        w = w[:, : self.n_assets]
        w = np.clip(w, -self.max_position, self.max_position)
        return _cap(w, self.max_leverage)


def project_capped_simplex(v: FloatArray, radius: float = 1.0) -> FloatArray:
    """Euclidean projection of each row onto {w >= 0, sum(w) <= radius} (the rest is cash)."""
    clipped = np.maximum(v, 0.0)
    inside = clipped.sum(axis=1) <= radius
    out: FloatArray = np.where(inside[:, None], clipped, project_simplex(v, radius))
    return out


_TANH_ONE = float(np.tanh(1.0))


class TiltActions:
    """A bounded tilt per asset around a benchmark allocation (``EnvConfig.tilt``).

    The action ``a`` (``Box[-1, 1]^N``) is squashed to ``tilt = max_tilt * tanh(a) / tanh(1)``
    (in [-max_tilt, max_tilt]) and added to the benchmark weights: ``equal_weight`` (1/N each)
    or ``hold`` (the previous target; 1/N when the previous target is flat, i.e. at the start
    of an episode). The sum is projected back onto the feasible set: with ``sim.allow_short``
    the L1 ball of radius ``max_leverage``; long only with ``weights_cash`` the set
    {w >= 0, sum(w) <= 1} (a negative net tilt is cash); long only without cash the simplex.
    Then ``smoothing`` ``s`` blends ``(1 - s) * projected + s * previous`` (skipped while the
    previous target is flat), and ``max_position``/``max_leverage`` clip as for ``weights``.
    Action 0 therefore gives the benchmark weights exactly (when they are feasible).

    The interpreter only sees the action and the previous target (``to_weights``), so ``hold``
    follows the previous *target*, not the weights after the market moved them (the simulator
    rebalances that drift), and it cannot scale to a volatility target (that needs returns).
    """

    def __init__(self, n_assets: int, config: EnvConfig) -> None:
        sim = config.sim
        tilt = config.tilt
        self.n_assets = n_assets
        self.benchmark = tilt.benchmark
        self.max_tilt = tilt.max_tilt
        self.smoothing = tilt.smoothing
        self.cash = config.weights_cash
        self.allow_short = sim.allow_short
        self.max_position = sim.max_position
        self.max_leverage = sim.max_leverage
        self.space: spaces.Space[Any] = spaces.Box(-1.0, 1.0, shape=(n_assets,), dtype=np.float32)

    def base_weights(self, previous: FloatArray) -> FloatArray:
        """The benchmark allocation (B, N) the tilt is added to."""
        equal = np.full(previous.shape, 1.0 / self.n_assets)
        if self.benchmark == "equal_weight":
            return equal
        flat = ~np.any(previous != 0.0, axis=1)
        out: FloatArray = np.where(flat[:, None], equal, previous)
        return out

    def _project(self, v: FloatArray) -> FloatArray:
        if self.allow_short:
            return project_l1_ball(v, self.max_leverage)
        radius = min(1.0, self.max_leverage)
        if self.cash:
            # 1/N summed may exceed 1 by a rounding error: keep such rows as they are
            inside = np.maximum(v, 0.0).sum(axis=1) <= radius * (1.0 + 1e-12)
            out: FloatArray = np.where(
                inside[:, None], np.maximum(v, 0.0), project_capped_simplex(v, radius)
            )
            return out
        return project_simplex(v, radius)

    def to_weights(self, actions: np.ndarray, previous: FloatArray) -> FloatArray:
        a = _unit_box(actions, previous.shape[0], self.n_assets, "tilt")
        prev = np.asarray(previous, dtype=np.float64)
        tilt = self.max_tilt * (np.tanh(np.clip(a, -1.0, 1.0)) / _TANH_ONE)
        w = self._project(self.base_weights(prev) + tilt)
        if self.smoothing > 0.0:
            started = np.any(prev != 0.0, axis=1)
            smoothed = (1.0 - self.smoothing) * w + self.smoothing * prev
            w = np.where(started[:, None], smoothed, w)
        w = np.clip(w, -self.max_position, self.max_position)
        return _cap(w, self.max_leverage)


def make_action_interpreter(n_assets: int, config: EnvConfig) -> ActionInterpreter:
    """The interpreter for ``config.action``."""
    if config.action == "discrete":
        return DiscreteActions(n_assets, config)
    if config.action == "continuous":
        return ContinuousActions(n_assets, config)
    if config.action == "tilt":
        return TiltActions(n_assets, config)
    return WeightsActions(n_assets, config)


__all__ = [
    "ActionInterpreter",
    "ContinuousActions",
    "DiscreteActions",
    "TiltActions",
    "WeightsActions",
    "make_action_interpreter",
    "project_capped_simplex",
    "project_l1_ball",
    "project_simplex",
]
