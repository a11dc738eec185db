"""Imitation warm start: behaviour cloning from a rule-based expert before RL fine-tuning.

An expert is a ``(T, N)`` array of target levels in {-1, 0, +1} per bar and asset (short / flat /
long), computed from closes up to and including each bar (no look-ahead):
:func:`ma_crossover_expert` and :func:`momentum_expert`. :func:`behaviour_clone` runs the expert on
the training env, maps its levels to env actions, and fits the model's policy to them by maximum
likelihood (PPO/A2C) or regression of the actor (DDPG/TD3/SAC). :class:`BCWarmStart` plugs that
into ``train_agent(..., warm_start=...)``::

    levels = expert_levels(panel.close, bc_config)
    warm = BCWarmStart(levels, bc_config)
    result = train_agent(agent_config, make_train_env, make_val_env, run_dir, warm_start=warm)
    warm.result.agreement   # fraction of training states where the clone matches the expert
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import pandas as pd
from pydantic import Field

from tradeforge.agents.vecenv import discrete_weight_table
from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import AgentError
from tradeforge.core.types import FloatArray

logger = logging.getLogger(__name__)


class BCConfig(FrozenConfig):
    """Behaviour cloning settings.

    ``expert``: ``ma_crossover`` (long while the ``fast`` moving average of close is above the
    ``slow`` one) or ``momentum`` (sign of the ``lookback``-bar return). Below / negative means
    short when ``allow_short``, else flat. ``samples``: env steps (summed over envs) of expert
    demonstrations; ``epochs`` passes of minibatch gradient descent over them.
    """

    expert: Literal["ma_crossover", "momentum"] = "ma_crossover"
    fast: int = Field(default=10, ge=1)
    slow: int = Field(default=50, ge=2)
    lookback: int = Field(default=20, ge=1)
    allow_short: bool = False
    samples: int = Field(default=2048, ge=1)
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    seed: int = Field(default=0, ge=0)


def _close(prices: Any) -> FloatArray:
    close = getattr(prices, "close", prices)
    arr = np.asarray(close, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise AgentError(f"expert prices have shape {arr.shape}; expected (T, N) closes")
    return arr


def _levels(signal: FloatArray, allow_short: bool) -> FloatArray:
    up = signal > 0.0
    down = signal < 0.0
    out = np.where(up, 1.0, np.where(down & allow_short, -1.0, 0.0))
    out[~np.isfinite(signal)] = 0.0
    return out


def ma_crossover_expert(
    prices: Any, fast: int = 10, slow: int = 50, allow_short: bool = False
) -> FloatArray:
    """Levels (T, N): +1 while MA(fast) > MA(slow) of close, else -1 (shorts) or 0; 0 in warm-up.

    ``prices`` is a ``BarPanel`` or a (T, N) / (T,) array of closes. Bar t uses closes <= t.
    """
    if fast >= slow:
        raise AgentError(f"ma_crossover_expert fast = {fast}, slow = {slow}; expected fast < slow")
    frame = pd.DataFrame(_close(prices))
    fast_ma = frame.rolling(fast, min_periods=fast).mean().to_numpy()
    slow_ma = frame.rolling(slow, min_periods=slow).mean().to_numpy()
    return _levels(fast_ma - slow_ma, allow_short)


def momentum_expert(prices: Any, lookback: int = 20, allow_short: bool = False) -> FloatArray:
    """Levels (T, N): the sign of the ``lookback``-bar return of close (bar t uses closes <= t)."""
    close = _close(prices)
    signal = np.full_like(close, np.nan)
    signal[lookback:] = close[lookback:] / close[:-lookback] - 1.0
    return _levels(signal, allow_short)


def expert_levels(prices: Any, config: BCConfig) -> FloatArray:
    """The levels of the expert named by ``config``."""
    if config.expert == "ma_crossover":
        return ma_crossover_expert(prices, config.fast, config.slow, config.allow_short)
    return momentum_expert(prices, config.lookback, config.allow_short)


# -- env plumbing ---------------------------------------------------------------------------------
def _base_venv(venv: Any) -> Any:
    from stable_baselines3.common.vec_env import VecEnvWrapper

    current = venv
    while isinstance(current, VecEnvWrapper):
        current = current.venv
    return current


def current_bars(venv: Any) -> np.ndarray:
    """The decision bar of every sub-env (``env.bar``, or the batched engine's rows)."""
    try:
        return np.asarray(venv.get_attr("bar"), dtype=np.int64)
    except AttributeError:
        core = getattr(_base_venv(venv), "_core", None)
        if core is None:
            raise AgentError(
                "behaviour cloning needs the current bar of each env: an env.bar attribute "
                "(TradingEnv) or a BatchedTradingVecEnv"
            ) from None
        return np.asarray(core.t, dtype=np.int64).copy()


def _env_config(venv: Any) -> Any:
    with contextlib.suppress(AttributeError, IndexError, TypeError):
        return venv.get_attr("config")[0]
    return None


class LevelActions:
    """Maps expert levels (n_envs, N) to actions of a venv's action space, and back to levels."""

    def __init__(self, venv: Any, n_assets: int) -> None:
        space = venv.action_space
        config = _env_config(venv)
        action_kind = getattr(config, "action", None)
        if getattr(config, "discrete_mode", "position") == "trade":
            raise AgentError(
                "behaviour cloning needs position-style actions; env discrete_mode = 'trade'"
            )
        if action_kind in ("weights", "tilt"):
            raise AgentError(
                "behaviour cloning supports env action 'discrete' or 'continuous'; got "
                f"{action_kind!r}"
            )
        self.space = space
        self.n_assets = n_assets
        self.table: FloatArray | None = None
        if isinstance(space, gym.spaces.Discrete):
            table = discrete_weight_table(venv)
            if table is None:
                raise AgentError("behaviour cloning needs the env's action_to_weights for Discrete")
            self.table = np.asarray(table, dtype=np.float64)
            self.unit = float(np.abs(self.table).max()) or 1.0
        elif isinstance(space, gym.spaces.MultiDiscrete):
            self.nvec = np.asarray(space.nvec, dtype=np.int64)
        elif isinstance(space, gym.spaces.Box):
            if space.shape != (n_assets,):
                raise AgentError(
                    f"behaviour cloning needs a Box action of shape ({n_assets},); got {space.shape}"
                )
        else:
            raise AgentError(f"behaviour cloning does not support the action space {space}")

    def actions(self, levels: FloatArray) -> np.ndarray:
        space = self.space
        if self.table is not None:
            target = levels[:, :1] * self.unit  # (B, 1) single asset
            dist = np.abs(self.table[None, :, 0] - target)
            chosen: np.ndarray = np.argmin(dist, axis=1).astype(np.int64)
            return chosen
        if isinstance(space, gym.spaces.MultiDiscrete):
            three = self.nvec >= 3
            idx = np.where(three[None, :], levels + 1.0, (levels > 0).astype(np.float64))
            return idx.astype(np.int64)
        low = np.asarray(space.low, dtype=np.float64)
        high = np.asarray(space.high, dtype=np.float64)
        out: np.ndarray = np.clip(levels, low, high).astype(np.float32)
        return out

    def agree(self, predicted: np.ndarray, expert: np.ndarray) -> FloatArray:
        """Per-sample agreement in [0, 1] between predicted and expert actions."""
        if isinstance(self.space, gym.spaces.Discrete):
            same: FloatArray = (np.asarray(predicted).reshape(-1) == expert.reshape(-1)).astype(
                np.float64
            )
            return same
        pred = np.asarray(predicted, dtype=np.float64).reshape(expert.shape)
        if isinstance(self.space, gym.spaces.MultiDiscrete):
            out: FloatArray = (pred == expert).mean(axis=1)
            return out
        out = (np.abs(pred - expert) < 0.5).mean(axis=1)
        return out


@dataclass(frozen=True)
class BCResult:
    """What :func:`behaviour_clone` did and how well the clone matches its expert."""

    samples: int
    epochs: int
    loss_first: float
    loss_last: float
    agreement_before: float
    agreement: float
    changed: float

    def summary(self) -> dict[str, float]:
        return {
            "samples": float(self.samples),
            "epochs": float(self.epochs),
            "loss_first": self.loss_first,
            "loss_last": self.loss_last,
            "agreement_before": self.agreement_before,
            "agreement": self.agreement,
            "changed": self.changed,
        }


def collect_demonstrations(
    venv: Any, levels: FloatArray, samples: int
) -> tuple[np.ndarray, np.ndarray, LevelActions]:
    """Run the expert on ``venv``: raw observations (S, ...) and expert actions (S, ...)."""
    if getattr(venv.observation_space, "shape", None) is None or isinstance(
        venv.observation_space, gym.spaces.Dict
    ):
        raise AgentError("behaviour cloning supports Box observations (EnvConfig.dict_obs = False)")
    mapper = LevelActions(venv, levels.shape[1])
    original = getattr(venv, "get_original_obs", None)
    obs = venv.reset()
    obs_list: list[np.ndarray] = []
    act_list: list[np.ndarray] = []
    n = 0
    while n < samples:
        raw = np.asarray(original() if original is not None else obs)
        bars = current_bars(venv)
        if bars.max() >= levels.shape[0] or bars.min() < 0:
            raise AgentError(
                f"env bar {int(bars.max())} is outside the expert levels (T = {levels.shape[0]}); "
                "expected levels computed on the env's whole panel"
            )
        actions = mapper.actions(levels[bars])
        obs_list.append(raw.copy())
        act_list.append(np.asarray(actions).copy())
        obs, _, _, _ = venv.step(actions)
        n += venv.num_envs
    return np.concatenate(obs_list)[:samples], np.concatenate(act_list)[:samples], mapper


def _policy_loss(policy: Any, obs: Any, actions: Any, discrete: bool) -> Any:
    import torch
    from stable_baselines3.common.policies import ActorCriticPolicy

    if isinstance(policy, ActorCriticPolicy):
        dist = policy.get_distribution(obs)
        act = actions.long() if discrete else actions
        return -dist.log_prob(act).mean()
    actor = getattr(policy, "actor", None)
    if actor is None:
        raise AgentError(f"behaviour cloning does not support the policy {type(policy).__name__}")
    pred = actor(obs, deterministic=True) if _takes_deterministic(actor) else actor(obs)
    return torch.nn.functional.mse_loss(pred, actions)


def _takes_deterministic(actor: Any) -> bool:
    import inspect

    return "deterministic" in inspect.signature(actor.forward).parameters


def behaviour_clone(model: Any, venv: Any, levels: FloatArray, config: BCConfig) -> BCResult:
    """Fit ``model``'s policy to the expert ``levels`` on the training ``venv`` (in place).

    ``venv`` is the env the model trains on (a VecEnv, possibly behind ``VecNormalize``: the
    clone sees observations normalized exactly like the RL updates that follow).
    """
    import torch

    name = type(model).__name__
    if name == "RecurrentPPO":
        raise AgentError("behaviour cloning does not support recurrent_ppo; use ppo or a2c")
    levels = np.asarray(levels, dtype=np.float64)
    if levels.ndim != 2:
        raise AgentError(f"expert levels have shape {levels.shape}; expected (T, N)")
    raw_obs, expert_actions, mapper = collect_demonstrations(venv, levels, config.samples)
    normalize = getattr(venv, "normalize_obs", None)
    obs = normalize(raw_obs) if normalize is not None else raw_obs
    policy = model.policy
    discrete = isinstance(venv.action_space, gym.spaces.Discrete | gym.spaces.MultiDiscrete)
    target = expert_actions.astype(np.float32)
    if not discrete and hasattr(policy, "scale_action") and not hasattr(policy, "value_net"):
        target = policy.scale_action(target).astype(np.float32)  # actor outputs are in [-1, 1]

    def predict() -> np.ndarray:
        predicted, _ = model.predict(obs, deterministic=True)
        out: np.ndarray = np.asarray(predicted).reshape(expert_actions.shape)
        return out

    initial = predict()
    before = float(mapper.agree(initial, expert_actions).mean())
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32))
    act_t = torch.as_tensor(target)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)
    policy.set_training_mode(True)
    losses: list[float] = []
    size = obs_t.shape[0]
    for _ in range(config.epochs):
        order = rng.permutation(size)
        total = 0.0
        for lo in range(0, size, config.batch_size):
            idx = torch.as_tensor(order[lo : lo + config.batch_size])
            loss = _policy_loss(policy, obs_t[idx], act_t[idx], discrete)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / size)
    policy.set_training_mode(False)
    actor_target = getattr(policy, "actor_target", None)
    if actor_target is not None:
        actor_target.load_state_dict(policy.actor.state_dict())
    final = predict()
    result = BCResult(
        samples=size,
        epochs=config.epochs,
        loss_first=losses[0],
        loss_last=losses[-1],
        agreement_before=before,
        agreement=float(mapper.agree(final, expert_actions).mean()),
        changed=float(1.0 - mapper.agree(final, initial.astype(expert_actions.dtype)).mean()),
    )
    logger.info("behaviour cloning: %s", result.summary())
    return result


class BCWarmStart:
    """A ``train_agent`` warm-start hook: behaviour cloning of ``levels`` before RL training.

    ``results`` keeps one :class:`BCResult` per seed trained; ``result`` is the last.
    """

    def __init__(self, levels: FloatArray, config: BCConfig | None = None) -> None:
        self.levels = np.asarray(levels, dtype=np.float64)
        self.config = config or BCConfig()
        self.results: list[BCResult] = []

    @property
    def result(self) -> BCResult | None:
        return self.results[-1] if self.results else None

    def __call__(self, model: Any, venv: Any) -> None:
        self.results.append(behaviour_clone(model, venv, self.levels, self.config))


__all__ = [
    "BCConfig",
    "BCResult",
    "BCWarmStart",
    "LevelActions",
    "behaviour_clone",
    "collect_demonstrations",
    "current_bars",
    "expert_levels",
    "ma_crossover_expert",
    "momentum_expert",
]
