"""Action masks for MaskablePPO: forbid trades on a discrete ``TradingEnv``.

``TradeMasks`` wraps a tradeforge ``TradingEnv`` whose ``EnvConfig.action`` is ``discrete`` and
adds ``action_masks()`` (what sb3-contrib's MaskablePPO asks for), built from the env's own
action interpreter and the executed targets in ``info["weights"]``:

* ``min_hold``: after a position changes, it must be held this many decisions before it may
  change again (a cooling-off rule; 0 = no rule);
* in ``discrete_mode="trade"``, selling at the lowest level or buying at the highest level
  (trades that cannot happen) are masked;
* ``frozen``: asset indices that may not trade at all (e.g. restricted lists).

Holding the current position is always allowed, so some action is always valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from tradeforge.core.errors import AgentError


class TradeMasks(gym.Wrapper[Any, Any, Any, Any]):
    """``action_masks()`` for a discrete tradeforge env (see the module docstring)."""

    def __init__(
        self, env: gym.Env[Any, Any], *, min_hold: int = 0, frozen: Sequence[int] = ()
    ) -> None:
        super().__init__(env)
        from tradeforge.envs.actions import DiscreteActions
        from tradeforge.envs.config import EnvConfig

        config = getattr(env.unwrapped, "config", None)
        if not isinstance(config, EnvConfig) or config.action != "discrete":
            raise AgentError(
                "TradeMasks needs a tradeforge TradingEnv with EnvConfig.action = 'discrete'; "
                f"got {type(env.unwrapped).__name__} with action "
                f"{getattr(config, 'action', None)!r}"
            )
        if min_hold < 0:
            raise AgentError(f"TradeMasks min_hold = {min_hold}; expected an integer >= 0")
        space = env.action_space
        n_assets = len(space.nvec) if isinstance(space, gym.spaces.MultiDiscrete) else 1
        bad = [i for i in frozen if not 0 <= int(i) < n_assets]
        if bad:
            raise AgentError(
                f"TradeMasks frozen = {list(frozen)}: indices {bad} are outside [0, {n_assets})"
            )
        self.interpreter = DiscreteActions(n_assets, config)
        self.n_assets = n_assets
        self.min_hold = int(min_hold)
        self.frozen = np.zeros(n_assets, dtype=bool)
        self.frozen[list(frozen)] = True
        self._level = np.zeros(n_assets)
        self._held = np.full(n_assets, np.iinfo(np.int64).max // 2, dtype=np.int64)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._level = np.zeros(self.n_assets)
        self._held[:] = np.iinfo(np.int64).max // 2
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        unit = self.interpreter.unit
        level = np.rint(np.asarray(info["weights"], dtype=np.float64).reshape(-1) / unit)
        changed = level != self._level
        self._held = np.where(changed, 1, self._held + 1)
        self._level = level
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """Allowed actions: (n_levels,) for one asset, (N * n_levels,) flattened for more."""
        interp = self.interpreter
        steps = interp.levels
        if interp.mode == "position":
            new = np.broadcast_to(steps, (self.n_assets, steps.size))
        else:
            new = np.clip(self._level[:, None] + steps[None, :], interp.low_level, 1.0)
        changes = new != self._level[:, None]
        allowed = np.ones((self.n_assets, steps.size), dtype=bool)
        if interp.mode == "trade":
            hold = int(np.flatnonzero(steps == 0.0)[0])
            allowed &= changes
            allowed[:, hold] = True
        locked = self.frozen | (self._held < self.min_hold)
        allowed[locked] &= ~changes[locked]
        # holding is always possible: if the current level is not reachable, allow everything
        empty = ~allowed.any(axis=1)
        allowed[empty] = True
        return allowed.reshape(-1)


__all__ = ["TradeMasks"]
