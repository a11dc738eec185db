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
import sys
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


def _count(slots: list[np.ndarray], i: int) -> int:
    """The reference count of ``slots[i]`` (one expression for the calibration and the test)."""
    return sys.getrefcount(slots[i])


class _OutputPool:
    """Output arrays of one shape and dtype handed out by successive steps: an array is written
    again only once nothing outside the pool refers to it (CPython reference counts: a caller
    holding the array, a view of it or a tensor sharing its memory keeps it out of reuse), so
    an array a caller holds never changes under it, as if each step made a new one."""

    def __init__(self, shape: tuple[int, ...], dtype: Any, slots: int = 3) -> None:
        self._shape, self._dtype = shape, np.dtype(dtype)
        self._slots = [np.empty(shape, dtype=self._dtype) for _ in range(slots)]
        self._next = 0
        self._free = _count(self._slots, 0)  # the count of an array only the pool holds

    def take(self) -> np.ndarray:
        slots = self._slots
        for i in range(len(slots)):
            if _count(slots, i) == self._free:
                return slots[i]
        fresh = np.empty(self._shape, dtype=self._dtype)  # all held: a new one replaces a slot
        slots[self._next] = fresh
        self._next = (self._next + 1) % len(slots)
        return fresh


class _InfoLists:
    """Each step's list of ``n`` info dicts: a new list every step whose dicts are empty
    dicts taken from two sets used in turn (the dicts of consecutive steps are distinct);
    a set a caller wrote into is replaced by new dicts before its next use."""

    def __init__(self, n: int) -> None:
        self._blank = marshal.dumps([{} for _ in range(n)])
        self._sets = [marshal.loads(self._blank), marshal.loads(self._blank)]
        self._turn = 0

    def take(self) -> list[dict[str, Any]]:
        self._turn ^= 1
        dicts: list[dict[str, Any]] = self._sets[self._turn]
        if any(dicts):  # a caller added keys to one of them: new dicts for this set
            dicts = self._sets[self._turn] = marshal.loads(self._blank)
        return dicts[:]


class _CompiledOutputs:
    """What ``BatchedTradingVecEnv``'s compiled step writes into: the pools of the returned
    observations, float32 rewards and dones, the info lists and the kernel's private
    (float64 reward, terminated, truncated) arrays."""

    def __init__(self, n_envs: int, obs_size: int) -> None:
        from tradeforge.envs.kernel import BAD_ACTION, vec_env_step

        self.kernel = vec_env_step
        self.bad_action = BAD_ACTION
        self.obs = _OutputPool((n_envs, obs_size), np.float32)
        self.reward32 = _OutputPool((n_envs,), np.float32)
        self.done = _OutputPool((n_envs,), np.bool_)
        self.infos = _InfoLists(n_envs)
        self.scratch = (
            np.empty(n_envs),
            np.empty(n_envs, dtype=bool),
            np.empty(n_envs, dtype=bool),
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["kernel"] = None  # looked up again on load
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from tradeforge.envs.kernel import vec_env_step

        self.__dict__.update(state)
        self.kernel = vec_env_step


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
        self._outputs: _CompiledOutputs | None = None  # the compiled step's buffers (first step)
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

    def step(self, actions: np.ndarray) -> VecEnvStepReturn:
        self._actions = actions
        return self.step_wait()

    def step_wait(self) -> VecEnvStepReturn:
        actions = self._actions
        if actions is None:
            raise SimulationError("step_wait() called without step_async(actions)")
        self._actions = None
        core = self._core
        acts = self._kernel_actions(actions) if core.compiled else None
        if acts is not None:
            return self._step_compiled(core, actions, acts)
        obs: VecEnvObs | None = None
        if core.compiled:  # the kernel also wrote the observations of the new decision bars
            obs, reward, terminated, truncated = core.step_batch(actions)
        else:
            reward, terminated, truncated = core.step(actions)
        self.episode_returns += reward
        self.episode_lengths += 1
        done = terminated | truncated
        infos: list[dict[str, Any]] = marshal.loads(self._blank_infos)
        if done.any():
            self._finish_rows(done, truncated, obs if isinstance(obs, np.ndarray) else None, infos)
        if obs is None:
            obs = core.observe()
        return obs, reward.astype(np.float32), done, infos

    def _kernel_actions(self, actions: Any) -> np.ndarray | None:
        """``actions`` as the float64 (n_envs, A) array ``vec_env_step`` maps in the kernel, or
        None when the step must take ``TradingCore.step_batch`` (actions mapped in Python,
        benchmark-relative reward terms, observations the kernel does not write)."""
        core = self._core
        if (
            type(actions) is not np.ndarray
            or actions.dtype.kind not in "iuf"
            or not core._kernel_obs
            or core._python_actions
            or core.actions is not core._interpreter
            or core.rewards.has_excess
        ):
            return None
        shape = (self.num_envs, core._action_shape[0])
        if actions.shape != shape:
            if actions.ndim != 1 or actions.size != shape[0] * shape[1]:
                return None
            actions = actions.reshape(shape)
        return np.ascontiguousarray(actions, dtype=np.float64)

    def _step_compiled(self, core: TradingCore, actions: Any, acts: np.ndarray) -> VecEnvStepReturn:
        """One step in one compiled call (``kernel.vec_env_step``): the rows' steps, their next
        observations, the episode returns and lengths, float32 rewards and dones, written into
        reused buffers (``_OutputPool``); Python runs only for the rows that finished."""
        if self._outputs is None:
            self._outputs = _CompiledOutputs(self.num_envs, core._obs_size)
        out = self._outputs
        obs, reward32, done = out.obs.take(), out.reward32.take(), out.done.take()
        reward, terminated, truncated = out.scratch
        code, row, equity, n_done = out.kernel(
            core._ints,
            acts,
            core._stack,
            core._assets,
            core._acct,
            core._params,
            core._padded,
            obs,
            core.pending,
            core._scratch,
            reward,
            terminated,
            truncated,
            self.episode_returns,
            self.episode_lengths,
            reward32,
            done,
        )
        if code != 0:  # kernel.OK
            if code == out.bad_action:  # nothing changed: the core's own step raises its error
                core.step_batch(actions)
                raise SimulationError(f"action of row {row} is outside the action space")
            t1 = int(core.t[row]) + 1
            raise SimulationError(
                f"equity is {equity} after the fill at bar {t1} (row {row}); "
                "expected a finite value: a held asset has no known price"
            )
        infos = out.infos.take()
        if n_done:
            self._finish_rows(done, truncated, obs, infos)
        return obs, reward32, done, infos

    def _finish_rows(
        self,
        done: np.ndarray,
        truncated: np.ndarray,
        obs: np.ndarray | None,
        infos: list[dict[str, Any]],
    ) -> None:
        """The info dicts of the finished rows, then their auto-reset: new episodes, their
        first observations written into ``obs`` (when given)."""
        core = self._core
        idx = np.flatnonzero(done)
        final = obs[idx] if obs is not None else core.observe(done)
        rows = idx.tolist()
        if isinstance(final, dict):
            finals: Any = [{key: val[k] for key, val in final.items()} for k in range(len(rows))]
        else:
            finals = final  # its rows, one view each
        for i, obs_k, trunc, equity, ret, length in zip(
            rows,
            finals,
            truncated[idx].tolist(),
            core.equity[idx].tolist(),
            self.episode_returns[idx].tolist(),
            self.episode_lengths[idx].tolist(),
            strict=True,
        ):
            infos[i] = {
                "terminal_observation": obs_k,
                "TimeLimit.truncated": trunc,
                "final_equity": equity,
                "episode_return": ret,
                "episode_length": length,
            }
        core.reset_rows(done, self._rng)
        self.episode_returns[done] = 0.0
        self.episode_lengths[done] = 0
        if obs is not None:  # the first observations of the new episodes
            obs[idx] = core.observe(done)

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
