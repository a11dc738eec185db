"""``rollout_weights``: a policy run deterministically over an env's range, as target weights."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from tradeforge.core.errors import AgentError
from tradeforge.core.types import FloatArray


def policy_env_action(policy: Any, observation: Any, env: Any) -> Any:
    """The env action for ``observation``: ``policy.env_action`` when it has one, else ``act``."""
    masks = None
    if hasattr(env, "action_masks"):
        masks = env.action_masks()
    elif hasattr(env, "unwrapped") and hasattr(env.unwrapped, "action_masks"):
        masks = env.unwrapped.action_masks()
    if hasattr(policy, "env_action"):
        if masks is not None:
            return policy.env_action(observation, action_masks=masks)
        return policy.env_action(observation)
    action = policy.act(observation)
    if isinstance(env.action_space, gym.spaces.Discrete):
        return int(np.asarray(action).reshape(-1)[0])
    return np.asarray(action, dtype=env.action_space.dtype)


def _n_bars_assets(env: Any) -> tuple[int, int]:
    base = getattr(env, "unwrapped", env)
    panel = getattr(base, "panel", None)
    if panel is not None:
        return int(panel.n_bars), int(panel.n_symbols)
    n_bars = getattr(base, "n_bars", None)
    n_assets = getattr(base, "n_assets", None)
    if n_bars is None or n_assets is None:
        raise AgentError(
            "rollout_weights needs an env exposing .panel (TradingEnv) or .n_bars and .n_assets"
        )
    return int(n_bars), int(n_assets)


def rollout_weights(policy: Any, env: Any, *, seed: int | None = 0) -> FloatArray:
    """Target weights ``(T, N)`` decided at each bar of the env's range; NaN where no decision.

    The env's current bar before each step comes from ``info["bar"]`` (``reset`` and ``step``)
    or ``env.bar``; the weights come from ``info["weights"]`` after the step. The episode runs
    until terminated or truncated. The policy's ``reset()`` is called first when it has one.
    """
    n_bars, n_assets = _n_bars_assets(env)
    out: FloatArray = np.full((n_bars, n_assets), np.nan, dtype=np.float64)
    if hasattr(policy, "reset"):
        policy.reset()
    obs, info = env.reset(seed=seed)
    bar = _bar(env, info)
    while True:
        action = policy_env_action(policy, obs, env)
        obs, _reward, terminated, truncated, info = env.step(action)
        if "weights" not in info:
            raise AgentError("rollout_weights needs info['weights'] from env.step")
        out[bar] = np.asarray(info["weights"], dtype=np.float64).reshape(-1)
        if hasattr(policy, "observe"):
            policy.observe(info)
        if terminated or truncated:
            break
        bar = _bar(env, info)
    return out


def _bar(env: Any, info: dict[str, Any]) -> int:
    if "bar" in info:
        return int(info["bar"])
    base = getattr(env, "unwrapped", env)
    if hasattr(base, "bar"):
        return int(base.bar)
    raise AgentError("rollout_weights needs info['bar'] or env.bar (the current decision bar)")


__all__ = ["policy_env_action", "rollout_weights"]
