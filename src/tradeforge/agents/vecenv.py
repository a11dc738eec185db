"""Environment plumbing: factories to VecEnvs, the single normalizer, env-method helpers.

Nothing here knows the trading envs' internals: any Gymnasium env or SB3 VecEnv works. An env
factory is a zero-argument callable returning either one ``gymnasium.Env`` (it is called
``n_envs`` times) or a ready ``VecEnv`` (such as ``BatchedTradingVecEnv``), used as is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from tradeforge.core.errors import AgentError, ArtifactError

EnvFactory = Callable[[], Any]


def make_vec_env(factory: EnvFactory, n_envs: int, seed: int) -> Any:
    """A seeded, monitored SB3 VecEnv from ``factory``."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor

    first = factory()
    if isinstance(first, VecEnv):
        venv = first
    elif isinstance(first, gym.Env):
        envs = [first] + [factory() for _ in range(n_envs - 1)]
        fns = [_constant(env) for env in envs]
        venv = DummyVecEnv(fns)
    else:
        raise AgentError(
            f"env factory returned {type(first).__name__}; expected a gymnasium.Env or an SB3 VecEnv"
        )
    if not _is_monitored(venv):
        venv = VecMonitor(venv)
    venv.seed(seed)
    venv.action_space.seed(seed)
    return venv


def _constant(env: gym.Env[Any, Any]) -> Callable[[], gym.Env[Any, Any]]:
    return lambda: env


def _is_monitored(venv: Any) -> bool:
    from stable_baselines3.common.vec_env import VecEnvWrapper, VecMonitor

    current = venv
    while True:
        if isinstance(current, VecMonitor):
            return True
        if not isinstance(current, VecEnvWrapper):
            return False
        current = current.venv


def wrap_normalizer(venv: Any, *, obs: bool, reward: bool, clip_obs: float, gamma: float) -> Any:
    """The one observation/reward normalizer, fitted on training data only."""
    from stable_baselines3.common.vec_env import VecNormalize

    return VecNormalize(
        venv, training=True, norm_obs=obs, norm_reward=reward, clip_obs=clip_obs, gamma=gamma
    )


def frozen_copy(train_norm: Any, eval_venv: Any) -> Any:
    """``eval_venv`` behind a normalizer holding the training statistics, never updated."""
    from stable_baselines3.common.vec_env import VecNormalize

    norm = VecNormalize(
        eval_venv,
        training=False,
        norm_obs=train_norm.norm_obs,
        norm_reward=False,
        clip_obs=train_norm.clip_obs,
        gamma=train_norm.gamma,
    )
    sync_stats(train_norm, norm)
    return norm


def sync_stats(source: Any, target: Any) -> None:
    import copy

    target.obs_rms = copy.deepcopy(source.obs_rms)


def normalizer_to_dict(norm: Any) -> dict[str, Any]:
    """JSON-safe normalizer statistics (no pickle)."""
    rms = norm.obs_rms
    if isinstance(rms, dict):
        stats: Any = {key: _rms_dict(value) for key, value in rms.items()}
    else:
        stats = _rms_dict(rms)
    return {
        "norm_obs": bool(norm.norm_obs),
        "clip_obs": float(norm.clip_obs),
        "epsilon": float(norm.epsilon),
        "obs_rms": stats,
    }


def _rms_dict(rms: Any) -> dict[str, Any]:
    return {
        "mean": np.asarray(rms.mean, dtype=np.float64).tolist(),
        "var": np.asarray(rms.var, dtype=np.float64).tolist(),
        "count": float(rms.count),
    }


def load_normalizer_stats(norm: Any, data: dict[str, Any]) -> None:
    """Put statistics saved by :func:`normalizer_to_dict` into a VecNormalize."""
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    def build(item: dict[str, Any]) -> RunningMeanStd:
        mean = np.asarray(item["mean"], dtype=np.float64)
        rms = RunningMeanStd(shape=mean.shape)
        rms.mean = mean
        rms.var = np.asarray(item["var"], dtype=np.float64)
        rms.count = float(item["count"])
        return rms

    stats = data["obs_rms"]
    if "mean" in stats:
        norm.obs_rms = build(stats)
    else:
        norm.obs_rms = {key: build(value) for key, value in stats.items()}


def save_normalizer(norm: Any | None, path: Path) -> None:
    payload = None if norm is None else normalizer_to_dict(norm)
    path.write_text(json.dumps(payload), encoding="utf-8")


def normalize_observation(obs: Any, stats: dict[str, Any] | None) -> Any:
    """Apply saved statistics to one raw observation (Box array or Dict of arrays)."""
    if stats is None or not stats.get("norm_obs", False):
        return obs
    clip, eps = stats["clip_obs"], stats["epsilon"]

    def apply(x: Any, item: dict[str, Any]) -> np.ndarray:
        mean = np.asarray(item["mean"], dtype=np.float64)
        var = np.asarray(item["var"], dtype=np.float64)
        arr = np.asarray(x, dtype=np.float64)
        if arr.shape != mean.shape:
            raise ArtifactError(
                f"observation shape {arr.shape} does not match the normalizer statistics in "
                f"normalizer.json, which expect {mean.shape}"
            )
        out: np.ndarray = np.clip((arr - mean) / np.sqrt(var + eps), -clip, clip)
        return out.astype(np.float32)

    rms = stats["obs_rms"]
    if "mean" in rms:
        return apply(obs, rms)
    return {key: apply(obs[key], rms[key]) for key in rms}


def env_action_to_weights(venv: Any) -> Callable[[Any], np.ndarray] | None:
    """The env's ``action_to_weights`` reached through VecEnv and gym wrappers, or None."""
    current = venv
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper

    while isinstance(current, VecEnvWrapper):
        if hasattr(current, "action_to_weights"):
            break
        current = current.venv
    if hasattr(current, "action_to_weights"):
        fn: Callable[[Any], np.ndarray] = current.action_to_weights
        return fn
    if isinstance(current, DummyVecEnv):
        inner = current.envs[0]
        try:
            fn = inner.get_wrapper_attr("action_to_weights")
        except AttributeError:
            return None
        return fn
    return None


def discrete_weight_table(venv: Any) -> list[list[float]] | None:
    """For a Discrete action space, the target weights each action maps to (from the env)."""
    space = venv.action_space
    if not isinstance(space, gym.spaces.Discrete):
        return None
    fn = env_action_to_weights(venv)
    if fn is None:
        return None
    table = []
    for action in range(int(space.n)):
        weights = np.atleast_1d(np.asarray(fn(int(space.start) + action), dtype=np.float64))
        table.append(weights.tolist())
    return table


def trading_env_config(venv: Any) -> tuple[dict[str, Any], int] | None:
    """The tradeforge ``EnvConfig`` (as JSON) and asset count of a trading VecEnv, else None.

    Stored in the artifact so that a loaded policy maps actions to target weights with the very
    action interpreter the env used (``tradeforge.envs.make_action_interpreter``).
    """
    from tradeforge.envs.config import EnvConfig

    try:
        config = venv.get_attr("config")[0]
    except (AttributeError, IndexError, TypeError):
        return None
    if not isinstance(config, EnvConfig):
        return None
    space = venv.action_space
    if isinstance(space, gym.spaces.Discrete):
        n_assets = 1
    elif isinstance(space, gym.spaces.MultiDiscrete):
        n_assets = len(space.nvec)
    elif isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        cash = 1 if config.action == "weights" and config.weights_cash else 0
        n_assets = int(space.shape[0]) - cash
    else:
        return None
    return config.model_dump(mode="json"), n_assets


__all__ = [
    "EnvFactory",
    "discrete_weight_table",
    "env_action_to_weights",
    "frozen_copy",
    "load_normalizer_stats",
    "make_vec_env",
    "normalize_observation",
    "normalizer_to_dict",
    "save_normalizer",
    "sync_stats",
    "trading_env_config",
    "wrap_normalizer",
]
