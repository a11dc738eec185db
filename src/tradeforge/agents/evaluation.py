"""Deterministic evaluation of a model on a (validation) VecEnv, and the scores derived from it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tradeforge.core.types import FloatArray


class Predictor:
    """Calls ``model.predict`` with the extras recurrent and maskable models need."""

    def __init__(self, model: Any) -> None:
        self.model = model
        name = type(model).__name__
        self.recurrent = name == "RecurrentPPO"
        self.maskable = name == "MaskablePPO"
        self.state: Any = None
        self.episode_start = np.ones((1,), dtype=bool)

    def reset(self, n_envs: int = 1) -> None:
        self.state = None
        self.episode_start = np.ones((n_envs,), dtype=bool)

    def __call__(self, obs: Any, masks: Any = None) -> Any:
        if self.recurrent:
            action, self.state = self.model.predict(
                obs, state=self.state, episode_start=self.episode_start, deterministic=True
            )
            self.episode_start = np.zeros_like(self.episode_start)
            return action
        if self.maskable:
            action, _ = self.model.predict(obs, deterministic=True, action_masks=masks)
            return action
        action, _ = self.model.predict(obs, deterministic=True)
        return action


def vec_action_masks(venv: Any) -> Any:
    """Stacked ``action_masks()`` of every sub-env, or None when the env has none."""
    try:
        if hasattr(venv, "action_masks"):
            return np.asarray(venv.action_masks())
        return np.stack(venv.env_method("action_masks"))
    except AttributeError:
        return None


def run_episode(model: Any, venv: Any, max_steps: int) -> tuple[FloatArray, FloatArray | None]:
    """One deterministic episode of sub-env 0: its rewards and, when the env reports it, equity."""
    predictor = Predictor(model)
    predictor.reset(venv.num_envs)
    obs = venv.reset()
    rewards: list[float] = []
    equity: list[float] = []
    for _ in range(max_steps):
        masks = vec_action_masks(venv) if predictor.maskable else None
        action = predictor(obs, masks)
        obs, reward, done, infos = venv.step(action)
        predictor.episode_start = np.asarray(done, dtype=bool)
        rewards.append(float(np.asarray(reward)[0]))
        info = infos[0]
        if "equity" in info:
            equity.append(float(np.asarray(info["equity"]).reshape(-1)[0]))
        if bool(np.asarray(done)[0]):
            break
    eq = np.asarray(equity, dtype=np.float64) if len(equity) == len(rewards) else None
    return np.asarray(rewards, dtype=np.float64), eq


def sharpe(returns: FloatArray, periods_per_year: int = 252) -> float:
    """Annualised Sharpe ratio of per-period returns (0 when flat or too short)."""
    clean = returns[np.isfinite(returns)]
    if clean.size < 2:
        return 0.0
    std = float(np.std(clean, ddof=1))
    if std < 1e-12:
        return 0.0
    return float(np.mean(clean) / std * math.sqrt(periods_per_year))


def episode_metrics(
    rewards: FloatArray, equity: FloatArray | None, periods_per_year: int
) -> dict[str, float]:
    """Scores of one validation episode. Returns come from equity when the env reports it."""
    if equity is not None and equity.size >= 2:
        returns = np.diff(equity) / equity[:-1]
        total_return = float(equity[-1] / equity[0] - 1.0)
        peak = np.maximum.accumulate(equity)
        max_dd = float(np.max(1.0 - equity / peak))
    else:
        returns = rewards
        total_return = float(np.sum(rewards))
        curve = np.cumsum(rewards)
        max_dd = float(np.max(np.maximum.accumulate(curve) - curve)) if curve.size else 0.0
    return {
        "sharpe": sharpe(returns, periods_per_year),
        "total_reward": float(np.sum(rewards)),
        "mean_reward": float(np.mean(rewards)) if rewards.size else 0.0,
        "total_return": total_return,
        "max_drawdown": max_dd,
        "steps": float(rewards.size),
    }


def evaluate(
    model: Any,
    venv: Any,
    *,
    episodes: int = 1,
    max_steps: int = 100_000,
    periods_per_year: int = 252,
) -> dict[str, float]:
    """Mean of :func:`episode_metrics` over ``episodes`` deterministic episodes."""
    runs = [
        episode_metrics(*run_episode(model, venv, max_steps), periods_per_year)
        for _ in range(episodes)
    ]
    return {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}


__all__ = ["Predictor", "episode_metrics", "evaluate", "run_episode", "sharpe", "vec_action_masks"]
