"""Algorithm factory: an :class:`AgentConfig` and an environment in, an SB3 model out.

Hyperparameters are checked against the algorithm class's own constructor signature, so a typo or
a value of the wrong type fails with the key, the value and the allowed names before any training
starts. Action spaces an algorithm cannot handle fail with the algorithms that would work.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from tradeforge.agents.config import (
    CONTINUOUS_ALGOS,
    DISCRETE_ALGOS,
    AgentConfig,
    algo_list,
)
from tradeforge.core.errors import AgentError

#: Defaults tuned for small daily-bar data sets (a few thousand bars): short rollouts, small
#: batches, a small network. Any key can be overridden through ``AgentConfig.hyperparams``.
DEFAULT_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "ppo": {"n_steps": 256, "batch_size": 64, "n_epochs": 10, "gamma": 0.99, "ent_coef": 0.01},
    "a2c": {"n_steps": 16, "gamma": 0.99, "ent_coef": 0.01},
    "ddpg": {"buffer_size": 100_000, "learning_starts": 256, "batch_size": 128, "gamma": 0.99},
    "td3": {"buffer_size": 100_000, "learning_starts": 256, "batch_size": 128, "gamma": 0.99},
    "sac": {"buffer_size": 100_000, "learning_starts": 256, "batch_size": 128, "gamma": 0.99},
    "recurrent_ppo": {"n_steps": 128, "batch_size": 64, "n_epochs": 10, "gamma": 0.99},
    "maskable_ppo": {"n_steps": 256, "batch_size": 64, "n_epochs": 10, "gamma": 0.99},
}
DEFAULT_NET_ARCH: list[int] = [64, 64]

# Constructor arguments tradeforge sets itself; users may not pass them as hyperparameters.
_MANAGED = frozenset(
    {"self", "policy", "env", "seed", "verbose", "device", "tensorboard_log", "policy_kwargs"}
)
_MANAGED |= {"_init_setup_model"}


def algo_class(algo: str) -> type[Any]:
    """The SB3 / sb3-contrib class for an algorithm name (imported lazily)."""
    if algo in ("ppo", "a2c", "ddpg", "td3", "sac"):
        import stable_baselines3 as sb3

        return {"ppo": sb3.PPO, "a2c": sb3.A2C, "ddpg": sb3.DDPG, "td3": sb3.TD3, "sac": sb3.SAC}[
            algo
        ]
    if algo in ("recurrent_ppo", "maskable_ppo"):
        import sb3_contrib

        return sb3_contrib.RecurrentPPO if algo == "recurrent_ppo" else sb3_contrib.MaskablePPO
    raise AgentError(
        f"algo = {algo!r} is not known; expected one of: "
        "ppo, a2c, ddpg, td3, sac, recurrent_ppo, maskable_ppo"
    )


def uses_fast_ppo(config: AgentConfig) -> bool:
    """Whether ``config`` trains with :class:`tradeforge.agents.fastppo.FastPPO`."""
    return config.algo == "ppo" and config.backend == "fast"


def model_class(config: AgentConfig) -> type[Any]:
    """The class that trains ``config``: ``FastPPO`` for ``backend: fast`` PPO, else SB3's.

    A ``FastPPO`` model saves an SB3 PPO ``model.zip``: loading for inference uses
    :func:`algo_class` (``PPO``), as the policy artifact does.
    """
    if uses_fast_ppo(config):
        from tradeforge.agents.fastppo import FastPPO

        return FastPPO
    return algo_class(config.algo)


def default_hyperparams(algo: str, backend: str = "sb3") -> dict[str, Any]:
    """tradeforge's defaults for ``algo`` (``FAST_HYPERPARAMS`` for PPO on the fast backend)."""
    if algo == "ppo" and backend == "fast":
        from tradeforge.agents.fastppo import FAST_HYPERPARAMS

        return dict(FAST_HYPERPARAMS)
    return dict(DEFAULT_HYPERPARAMS.get(algo, {}))


def allowed_hyperparams(algo: str) -> tuple[str, ...]:
    """Names ``AgentConfig.hyperparams`` may use for ``algo``."""
    sig = inspect.signature(algo_class(algo).__init__)
    return tuple(name for name in sig.parameters if name not in _MANAGED)


def _matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits a constructor annotation (lenient where the annotation is vague)."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return True
    if isinstance(annotation, str | typing.ForwardRef):
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin is tuple:
        return isinstance(value, tuple)
    if origin in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    if origin in (collections.abc.Callable,) or annotation is collections.abc.Callable:
        return callable(value)
    if origin is type:
        return isinstance(value, type)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _coerce(algo: str, key: str, value: Any) -> Any:
    """YAML-friendly spellings: ``train_freq: [4, step]`` and ``action_noise: 0.1`` (sigma)."""
    if key == "train_freq" and isinstance(value, list):
        return tuple(value)
    if key == "action_noise" and isinstance(value, int | float) and not isinstance(value, bool):
        return ("normal", float(value))
    return value


def validate_hyperparams(
    algo: str, hyperparams: dict[str, Any], backend: str = "sb3"
) -> dict[str, Any]:
    """Checked, coerced hyperparameters (defaults merged in) for ``algo``; AgentError otherwise.

    ``backend`` only changes the defaults (``"fast"``: :func:`default_hyperparams` for PPO).
    """
    sig = inspect.signature(algo_class(algo).__init__)
    allowed = allowed_hyperparams(algo)
    merged = default_hyperparams(algo, backend)
    merged.update(hyperparams)
    out: dict[str, Any] = {}
    for key, raw in merged.items():
        if key not in allowed:
            raise AgentError(
                f"hyperparams.{key} is not a parameter of {algo}; allowed: {', '.join(allowed)}"
            )
        value = _coerce(algo, key, raw)
        if key == "action_noise" and isinstance(value, tuple):
            if value[1] < 0:
                raise AgentError(f"hyperparams.action_noise = {raw!r}: expected a sigma >= 0")
            out[key] = value
            continue
        annotation = sig.parameters[key].annotation
        if not _matches(value, annotation):
            raise AgentError(
                f"hyperparams.{key} = {raw!r} ({type(raw).__name__}) has the wrong type for "
                f"{algo}; expected {_describe(annotation)}"
            )
        out[key] = value
    return out


def _describe(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "").replace("collections.abc.", "")
    return text.replace("<class '", "").replace("'>", "")


def check_action_space(algo: str, space: gym.Space[Any]) -> None:
    """AgentError if ``algo`` cannot act in ``space``, naming the algorithms that can."""
    if isinstance(space, gym.spaces.Box):
        if algo not in CONTINUOUS_ALGOS:
            raise AgentError(
                f"algo {algo!r} needs a discrete action space but the env's is continuous "
                f"{space}; algorithms that handle continuous actions: {algo_list(CONTINUOUS_ALGOS)}"
            )
        return
    if isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete | gym.spaces.MultiBinary):
        if algo not in DISCRETE_ALGOS:
            raise AgentError(
                f"algo {algo!r} cannot handle the discrete action space {space}; algorithms that "
                f"handle discrete actions: {algo_list(DISCRETE_ALGOS)} (or use a continuous "
                "action env for ddpg/td3/sac)"
            )
        return
    raise AgentError(f"action space {space} is not supported; expected Box or Discrete")


def default_policy(algo: str, observation_space: gym.Space[Any]) -> str:
    is_dict = isinstance(observation_space, gym.spaces.Dict)
    if algo == "recurrent_ppo":
        return "MultiInputLstmPolicy" if is_dict else "MlpLstmPolicy"
    return "MultiInputPolicy" if is_dict else "MlpPolicy"


def _policy_kwargs(config: AgentConfig) -> dict[str, Any]:
    kwargs = dict(config.policy_kwargs)
    kwargs.setdefault("net_arch", list(DEFAULT_NET_ARCH))
    if "activation_fn" in kwargs and isinstance(kwargs["activation_fn"], str):
        import torch.nn

        name = kwargs["activation_fn"]
        table = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "elu": torch.nn.ELU}
        if name.lower() not in table:
            raise AgentError(
                f"policy_kwargs.activation_fn = {name!r}; expected one of {', '.join(table)}"
            )
        kwargs["activation_fn"] = table[name.lower()]
    return kwargs


def build_model(
    config: AgentConfig,
    env: Any,
    *,
    seed: int | None = None,
    tensorboard_log: Path | None = None,
    hyperparams: dict[str, Any] | None = None,
) -> Any:
    """An untrained SB3 model for ``config`` on ``env`` (a VecEnv), seeded, on its torch device."""
    algo = config.algo
    check_action_space(algo, env.action_space)
    if algo == "maskable_ppo" and not _has_masks(env):
        raise AgentError(
            "algo 'maskable_ppo' needs an env with an action_masks() method returning the allowed "
            "actions; this env has none (use 'ppo' instead)"
        )
    params = validate_hyperparams(
        algo, dict(config.hyperparams if hyperparams is None else hyperparams), config.backend
    )
    noise = params.pop("action_noise", None)
    if isinstance(noise, tuple):
        from stable_baselines3.common.noise import NormalActionNoise

        dim = int(np.prod(env.action_space.shape))
        params["action_noise"] = NormalActionNoise(np.zeros(dim), np.full(dim, noise[1]))
    elif noise is not None:
        params["action_noise"] = noise
    cls = model_class(config)
    policy = config.policy or default_policy(algo, env.observation_space)
    try:
        return cls(
            policy,
            env,
            seed=config.seed if seed is None else seed,
            device=config.torch_device(),
            verbose=0,
            policy_kwargs=_policy_kwargs(config),
            tensorboard_log=str(tensorboard_log) if tensorboard_log else None,
            **params,
        )
    except (TypeError, ValueError, AssertionError) as exc:
        raise AgentError(
            f"cannot build {algo} (backend {config.backend!r}) with hyperparams {params}: {exc}"
        ) from exc


def _has_masks(env: Any) -> bool:
    if hasattr(env, "action_masks"):
        return True
    try:
        flags = env.has_attr("action_masks")
    except AttributeError:
        return False
    return bool(flags)


__all__ = [
    "DEFAULT_HYPERPARAMS",
    "algo_class",
    "allowed_hyperparams",
    "build_model",
    "check_action_space",
    "default_hyperparams",
    "default_policy",
    "model_class",
    "uses_fast_ppo",
    "validate_hyperparams",
]
