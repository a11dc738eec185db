"""Safe (constrained) RL: risk-limit projection of actions and a Lagrangian penalty.

The limits and their projection live in :mod:`tradeforge.risk` (:class:`RiskLimits`,
:func:`~tradeforge.risk.project_weights`), shared with backtests and trading; this module keeps the
RL parts:

* :class:`ProjectedPolicy`: wraps any :class:`~tradeforge.core.policy.Policy`; its targets never
  leave the limits. :class:`ProjectionWrapper`: a Gymnasium wrapper for trading envs so that
  every action an agent takes (in training or evaluation) is projected before the simulator
  sees it; :class:`ProjectionVecEnv` does the same for a ``BatchedTradingVecEnv``. All count the
  raw targets that broke a limit.
* :class:`LagrangianPenaltyVecEnv`: a VecEnv wrapper that subtracts ``lambda * cost`` from the
  reward, where the cost is the drawdown or the rolling volatility of equity, and raises
  ``lambda`` by dual ascent while the average cost exceeds its target (lowers it otherwise).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from pydantic import Field
from stable_baselines3.common.vec_env import VecEnvWrapper

from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import AgentError
from tradeforge.core.types import FloatArray
from tradeforge.risk import RiskLimits, project_weights, violations


class _ViolationCounter:
    def __init__(self) -> None:
        self.steps = 0
        self.counts = {"position": 0, "gross": 0, "turnover": 0, "any": 0}

    def add(self, found: dict[str, int]) -> None:
        self.steps += 1
        for key, value in found.items():
            self.counts[key] += value
        self.counts["any"] += int(any(found.values()))

    def report(self) -> dict[str, Any]:
        rate = self.counts["any"] / self.steps if self.steps else 0.0
        return {"steps": self.steps, **self.counts, "rate": rate}


class ProjectedPolicy:
    """Any Policy whose targets are projected onto ``limits`` before they leave it.

    The turnover limit is measured from the previous projected targets (or, after ``observe``,
    from the env's executed targets ``info["weights"]``). ``violations`` counts the raw targets
    that broke a limit. It has no ``env_action``: use its ``act`` output as target weights.
    """

    def __init__(self, policy: Any, limits: RiskLimits) -> None:
        if not hasattr(policy, "act"):
            raise AgentError(
                f"ProjectedPolicy needs a policy with act(); got {type(policy).__name__}"
            )
        self.policy = policy
        self.limits = limits
        self.previous: FloatArray | None = None
        self._counter = _ViolationCounter()

    @property
    def violations(self) -> dict[str, Any]:
        return self._counter.report()

    def reset(self) -> None:
        self.previous = None
        if hasattr(self.policy, "reset"):
            self.policy.reset()

    def act(self, observation: Any) -> FloatArray:
        raw = np.atleast_1d(np.asarray(self.policy.act(observation), dtype=np.float64))
        prev = np.zeros_like(raw) if self.previous is None else self.previous
        self._counter.add(violations(raw, prev, self.limits))
        out = project_weights(raw, prev, self.limits)
        self.previous = out.copy()
        return out

    def observe(self, info: dict[str, Any]) -> None:
        """Take the env's executed targets as the reference for the next turnover limit."""
        if "weights" in info:
            self.previous = np.asarray(info["weights"], dtype=np.float64).reshape(-1).copy()
        if hasattr(self.policy, "observe"):
            self.policy.observe(info)


class _ProjectingActions:
    """An action interpreter whose weights are the inner interpreter's, projected."""

    def __init__(self, inner: Any, limits: RiskLimits) -> None:
        self.inner = inner
        self.space = inner.space
        self.limits = limits
        self.last_raw: FloatArray | None = None
        self.last_previous: FloatArray | None = None

    def to_weights(self, actions: np.ndarray, previous: FloatArray) -> FloatArray:
        raw = np.asarray(self.inner.to_weights(actions, previous), dtype=np.float64)
        self.last_raw = raw
        self.last_previous = np.asarray(previous, dtype=np.float64).copy()
        return project_weights(raw, previous, self.limits)


def _install_projection(env: Any, limits: RiskLimits, who: str, needs: str) -> _ProjectingActions:
    """Swap the env core's action interpreter for one that projects its weights onto ``limits``."""
    core = getattr(env, "_core", None)
    if core is None or not hasattr(core, "actions"):
        raise AgentError(f"{who} needs a tradeforge {needs}; got {type(env).__name__}")
    actions = _ProjectingActions(core.actions, limits)
    core.actions = actions
    return actions


class ProjectionWrapper(gym.Wrapper[Any, Any, Any, Any]):
    """Projects every action of a ``TradingEnv`` (any action kind) onto ``limits``.

    The env's action interpreter is wrapped, so the projected targets are what the simulator
    trades and what ``info["weights"]`` reports; ``info["raw_weights"]`` holds the unprojected
    targets and ``info["risk_violations"]`` the running counts (also ``.violations``).
    """

    def __init__(self, env: gym.Env[Any, Any], limits: RiskLimits) -> None:
        super().__init__(env)
        self.limits = limits
        self._counter = _ViolationCounter()
        self._actions = _install_projection(
            env.unwrapped, limits, "ProjectionWrapper", "TradingEnv"
        )

    @property
    def violations(self) -> dict[str, Any]:
        return self._counter.report()

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        self._actions.last_raw = None
        obs, reward, terminated, truncated, info = self.env.step(action)
        raw, prev = self._actions.last_raw, self._actions.last_previous
        if raw is not None and prev is not None:
            self._counter.add(violations(raw[0], prev[0], self.limits))
            info["raw_weights"] = raw[0].copy()
        info["risk_violations"] = self.violations
        return obs, reward, terminated, truncated, info


class ProjectionVecEnv(VecEnvWrapper):
    """:class:`ProjectionWrapper` for a ``BatchedTradingVecEnv`` (every row projected in one
    batch); ``violations`` counts rows whose raw targets broke a limit."""

    def __init__(self, venv: Any, limits: RiskLimits) -> None:
        super().__init__(venv)
        current = venv
        while isinstance(current, VecEnvWrapper):
            current = current.venv
        self.limits = limits
        self._counter = _ViolationCounter()
        self._actions = _install_projection(
            current, limits, "ProjectionVecEnv", "BatchedTradingVecEnv"
        )

    @property
    def violations(self) -> dict[str, Any]:
        return self._counter.report()

    def reset(self) -> Any:
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions.last_raw = None
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        raw, prev = self._actions.last_raw, self._actions.last_previous
        if raw is not None and prev is not None:
            for row in range(raw.shape[0]):
                self._counter.add(violations(raw[row], prev[row], self.limits))
        return obs, rewards, dones, infos


class LagrangianConfig(FrozenConfig):
    """A constraint ``mean(cost) <= target`` enforced by a learned multiplier.

    ``constraint``: ``drawdown`` (1 - equity / episode peak) or ``volatility`` (annualised
    standard deviation of the last ``vol_window`` per-step equity returns). The reward becomes
    ``reward - multiplier * cost``; every ``update_every`` env steps (summed over envs) the
    multiplier moves by ``lr * (mean cost - target)``, kept in ``[0, max_multiplier]``.
    """

    constraint: Literal["drawdown", "volatility"] = "drawdown"
    target: float = Field(default=0.1, ge=0.0)
    initial_multiplier: float = Field(default=0.0, ge=0.0)
    lr: float = Field(default=1.0, gt=0.0)
    update_every: int = Field(default=256, ge=1)
    max_multiplier: float = Field(default=100.0, gt=0.0)
    vol_window: int = Field(default=20, ge=2)
    periods_per_year: int = Field(default=252, ge=1)


class LagrangianPenaltyVecEnv(VecEnvWrapper):
    """A VecEnv wrapper adding a Lagrangian penalty on drawdown or volatility (see
    :class:`LagrangianConfig`). Needs ``info["equity"]`` from the wrapped env.

    ``multiplier`` is the current lambda, ``history`` the (steps, mean cost, multiplier) of each
    update, ``violations`` how many steps had ``cost > target``; ``info`` gets
    ``constraint_cost`` and ``lagrange_multiplier``.
    """

    def __init__(self, venv: Any, config: LagrangianConfig | None = None) -> None:
        super().__init__(venv)
        self.config = config or LagrangianConfig()
        self.multiplier = float(self.config.initial_multiplier)
        self.history: list[tuple[int, float, float]] = []
        self.violations = 0
        self.total_steps = 0
        n = self.num_envs
        self._peak = np.full(n, np.nan)
        self._last = np.full(n, np.nan)
        self._returns: list[deque[float]] = [deque(maxlen=self.config.vol_window) for _ in range(n)]
        self._costs: list[float] = []

    def reset(self) -> Any:
        obs = self.venv.reset()
        self._peak[:] = np.nan
        self._last[:] = np.nan
        for buf in self._returns:
            buf.clear()
        infos = getattr(self.venv, "reset_infos", None) or []
        for i, info in enumerate(infos[: self.num_envs]):
            if isinstance(info, dict) and "equity" in info:
                self._peak[i] = self._last[i] = float(info["equity"])
        return obs

    def _cost(self, i: int, equity: float) -> float:
        last = self._last[i]
        if np.isnan(last):
            last = equity
        if np.isnan(self._peak[i]):
            self._peak[i] = last
        self._peak[i] = max(self._peak[i], equity)
        self._returns[i].append(equity / last - 1.0 if last > 0 else 0.0)
        self._last[i] = equity
        if self.config.constraint == "drawdown":
            return float(1.0 - equity / self._peak[i]) if self._peak[i] > 0 else 0.0
        buf = np.asarray(self._returns[i], dtype=np.float64)
        if buf.size < 2:
            return 0.0
        return float(np.std(buf, ddof=1) * math.sqrt(self.config.periods_per_year))

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        rewards = np.asarray(rewards, dtype=np.float32).copy()
        for i, info in enumerate(infos):
            if "equity" not in info:
                raise AgentError(
                    "LagrangianPenaltyVecEnv needs info['equity'] from the wrapped env's step"
                )
            cost = self._cost(i, float(np.asarray(info["equity"]).reshape(-1)[0]))
            rewards[i] -= np.float32(self.multiplier * cost)
            info["constraint_cost"] = cost
            info["lagrange_multiplier"] = self.multiplier
            self.violations += int(cost > self.config.target)
            self._costs.append(cost)
            if dones[i]:
                self._peak[i] = np.nan
                self._last[i] = np.nan
                self._returns[i].clear()
        self.total_steps += len(infos)
        if len(self._costs) >= self.config.update_every:
            self._update()
        return obs, rewards, dones, infos

    def _update(self) -> None:
        mean_cost = float(np.mean(self._costs))
        step = self.config.lr * (mean_cost - self.config.target)
        self.multiplier = float(np.clip(self.multiplier + step, 0.0, self.config.max_multiplier))
        self.history.append((self.total_steps, mean_cost, self.multiplier))
        self._costs.clear()

    def report(self) -> dict[str, Any]:
        """Counts for run summaries: steps, violations, their rate and the final multiplier."""
        rate = self.violations / self.total_steps if self.total_steps else 0.0
        return {
            "constraint": self.config.constraint,
            "target": self.config.target,
            "steps": self.total_steps,
            "violations": self.violations,
            "rate": rate,
            "multiplier": self.multiplier,
            "updates": len(self.history),
        }


__all__ = [
    "LagrangianConfig",
    "LagrangianPenaltyVecEnv",
    "ProjectedPolicy",
    "ProjectionVecEnv",
    "ProjectionWrapper",
]
