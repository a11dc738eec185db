"""A do-nothing VecEnv shared by the agent benchmarks (bench_agents.py, bench_ppo.py): it isolates
the learner's own cost from the environment's."""

from __future__ import annotations

from typing import Any


def null_vec_env(like: Any, episode_len: int, copy_obs: bool) -> Any:
    """A VecEnv with ``like``'s spaces and batch size that computes nothing: zero observations and
    rewards, every env done each ``episode_len`` steps; ``copy_obs`` hands out a fresh array each step."""
    import numpy as np
    from stable_baselines3.common.vec_env import VecEnv

    class NullVecEnv(VecEnv):
        def __init__(self) -> None:
            super().__init__(like.num_envs, like.observation_space, like.action_space)
            self.t = 0
            self.obs = np.zeros((self.num_envs, *self.observation_space.shape), dtype=np.float32)

        def reset(self) -> Any:
            self.t = 0
            return self.obs

        def step_async(self, actions: Any) -> None:
            self.t += 1

        def step_wait(self) -> Any:
            done = self.t % episode_len == 0
            dones = np.full(self.num_envs, done)
            infos = [{"terminal_observation": self.obs[0]} if done else {} for _ in dones]
            obs = self.obs.copy() if copy_obs else self.obs
            return obs, np.zeros(self.num_envs, dtype=np.float32), dones, infos

        def close(self) -> None: ...

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [None] * self.num_envs

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None: ...

        def env_method(
            self, method_name: str, *args: Any, indices: Any = None, **kw: Any
        ) -> list[Any]:
            return [None] * self.num_envs

        def env_is_wrapped(self, wrapper_class: Any, indices: Any = None) -> list[bool]:
            return [False] * self.num_envs

    return NullVecEnv()
