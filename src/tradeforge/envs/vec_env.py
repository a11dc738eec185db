"""``BatchedTradingVecEnv``: N trading episodes stepped as one batch behind SB3's ``VecEnv``.

All N rows share one ``TradingCore``: a step is one call of the compiled batch kernel
(``tradeforge.envs.kernel.batch_env_step``: the single env's compiled step for every row in one
loop, writing the next observations too) when numba is installed (``kernel="auto"``), or of the
vectorized numpy engine (one ``tradeforge.sim.step`` over the whole batch; ``kernel="numpy"``,
the reference the kernel is tested equal to), with no per-env Python loop in the computation.
Rows that finish are reset in the same step (SB3 auto-reset): the returned observation is the
first one of the new episode, the last one of the finished episode is in
``infos[i]["terminal_observation"]`` and ``infos[i]["TimeLimit.truncated"]`` tells truncation from
termination. The target weights of the last step are in ``last_weights`` (N_envs, N_assets).
"""

from __future__ import annotations

import marshal
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from tradeforge.core.errors import SimulationError
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import BarPanel
from tradeforge.envs.config import EnvConfig, as_env_config
from tradeforge.envs.engine import Kernel, TradingCore
from tradeforge.envs.observations import FeaturesLike


class BatchedTradingVecEnv(VecEnv):
    """``n_envs`` independent episodes over one panel, stepped in one call.

    ``seed`` seeds the episode starts (with ``random_start``); the same seed gives identical
    trajectories. ``VecEnv.seed(s)`` re-seeds at the next ``reset()``. ``kernel``: ``"auto"``
    (the compiled batch kernel when numba is installed), ``"numba"`` or ``"numpy"``.
    """

    def __init__(
        self,
        panel: BarPanel,
        features: FeaturesLike,
        config: EnvConfig | Mapping[str, Any] | None = None,
        n_envs: int = 8,
        start: int = 0,
        end: int | None = None,
        seed: int | None = None,
        kernel: Kernel = "auto",
    ) -> None:
        self.config = as_env_config(config)
        self.render_mode = None
        self._core = TradingCore(panel, features, self.config, n_envs, start, end, kernel)
        self._rng = np.random.default_rng(seed)
        self._actions: np.ndarray | None = None
        self._all = np.ones(n_envs, dtype=bool)
        self.episode_returns = np.zeros(n_envs)
        self.episode_lengths = np.zeros(n_envs, dtype=np.int64)
        # n_envs distinct empty dicts, serialized once: unmarshalling builds a step's list of
        # info dicts in C, about twice as fast as a list comprehension (each still a new dict)
        self._blank_infos = marshal.dumps([{} for _ in range(n_envs)])
        super().__init__(n_envs, self._core.observations.space, self._core.actions.space)

    @property
    def last_weights(self) -> FloatArray:
        """Target weights (n_envs, N) the last actions mapped to."""
        return self._core.target

    @property
    def decision_bars(self) -> tuple[int, int]:
        return self._core.range.first, self._core.range.last

    def action_to_weights(self, actions: np.ndarray) -> FloatArray:
        """Target weights (n_envs, N) for a batch of actions (no state is changed)."""
        return self._core.actions.to_weights(np.asarray(actions), self._core.target)

    # -- VecEnv API -----------------------------------------------------------------------------
    def reset(self) -> VecEnvObs:
        if self._seeds[0] is not None:
            self._rng = np.random.default_rng(self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        self._core.reset_rows(self._all, self._rng)
        self.episode_returns[:] = 0.0
        self.episode_lengths[:] = 0
        return self._core.observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise SimulationError("step_wait() called without step_async(actions)")
        core = self._core
        obs: VecEnvObs | None = None
        if core.compiled:  # the kernel also wrote the observations of the new decision bars
            obs, reward, terminated, truncated = core.step_batch(self._actions)
        else:
            reward, terminated, truncated = core.step(self._actions)
        self._actions = None
        self.episode_returns += reward
        self.episode_lengths += 1
        done = terminated | truncated
        infos: list[dict[str, Any]] = marshal.loads(self._blank_infos)
        if done.any():
            idx = np.flatnonzero(done)
            final = obs[idx] if isinstance(obs, np.ndarray) else core.observe(done)
            rets = self.episode_returns[idx]
            lens = self.episode_lengths[idx]
            equity = core.equity[idx]
            for k, i in enumerate(idx.tolist()):  # only finished rows
                obs_k = (
                    {key: val[k] for key, val in final.items()}
                    if isinstance(final, dict)
                    else final[k]
                )
                infos[i] = {
                    "terminal_observation": obs_k,
                    "TimeLimit.truncated": bool(truncated[i]),
                    "final_equity": float(equity[k]),
                    "episode_return": float(rets[k]),
                    "episode_length": int(lens[k]),
                }
            core.reset_rows(done, self._rng)
            self.episode_returns[done] = 0.0
            self.episode_lengths[done] = 0
            if isinstance(obs, np.ndarray):  # the first observations of the new episodes
                obs[idx] = core.observe(done)
        if obs is None:
            obs = core.observe()
        return obs, reward.astype(np.float32), done, infos

    def close(self) -> None:
        return None

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(
        self,
        wrapper_class: type[gym.Wrapper],
        indices: VecEnvIndices = None,
    ) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]


__all__ = ["BatchedTradingVecEnv"]
