"""Behaviour cloning from rule-based experts on real S&P 500 data, then RL fine-tuning."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from tradeforge.agents import AgentConfig, BCConfig, load_policy, ma_crossover_expert, train_agent
from tradeforge.agents.imitation import BCWarmStart, expert_levels, momentum_expert
from tradeforge.core.errors import AgentError

TRAIN = (0, 1500)
VAL = (1500, 1620)


@dataclass(frozen=True)
class Features:
    """A FeaturesLike view of simple price features (the envs' protocol)."""

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    names: tuple[str, ...]
    values: np.ndarray


def ma_features(panel, fast: int = 10, slow: int = 50) -> Features:
    close = pd.DataFrame(panel.close)
    logret = np.log(close).diff()
    gap = close.rolling(fast).mean() / close.rolling(slow).mean() - 1.0
    values = np.stack([logret.to_numpy() * 100, gap.to_numpy() * 100], axis=-1)
    return Features(panel.index, tuple(panel.symbols), ("logret", "ma_gap"), values)


def _env(panel, features, start, end, **changes):
    from tradeforge.envs import TradingEnv

    config = {"action": "discrete", "window": 1, **changes}
    return TradingEnv(panel, features, config, start, end)


def _config(timesteps: int = 64) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "algo": "ppo",
            "timesteps": timesteps,
            "hyperparams": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
            "policy_kwargs": {"net_arch": [32]},
            "eval": {"freq": 64, "patience": 0},
            "tracking": {"learning_curve": False},
        }
    )


def test_experts_use_only_past_closes_and_follow_their_rules(sp500_panel):
    close = sp500_panel.close[:, 0]
    levels = ma_crossover_expert(sp500_panel, fast=10, slow=50)
    assert levels.shape == (sp500_panel.n_bars, 1)
    assert set(np.unique(levels)) == {0.0, 1.0}
    assert np.all(levels[:49] == 0.0)  # warm-up of the slow average
    t = 500
    fast, slow = close[t - 9 : t + 1].mean(), close[t - 49 : t + 1].mean()
    assert levels[t, 0] == (1.0 if fast > slow else 0.0)
    # changing future closes never changes today's level (no look-ahead)
    shocked = close.copy()
    shocked[t + 1 :] *= 3.0
    assert np.array_equal(ma_crossover_expert(shocked, 10, 50)[: t + 1], levels[: t + 1])
    mom = momentum_expert(close, lookback=20, allow_short=True)
    assert mom[t, 0] == np.sign(close[t] / close[t - 20] - 1.0)
    assert set(np.unique(mom[20:])) == {-1.0, 1.0}
    with pytest.raises(AgentError, match="fast < slow"):
        ma_crossover_expert(close, fast=50, slow=10)


def test_bc_warm_start_matches_expert_and_survives_into_the_artifact(sp500_panel, tmp_path):
    features = ma_features(sp500_panel)
    bc = BCConfig(expert="ma_crossover", fast=10, slow=50, samples=1024, epochs=40)
    levels = expert_levels(sp500_panel, bc)
    warm = BCWarmStart(levels, bc)
    result = train_agent(
        _config(),
        lambda: _env(sp500_panel, features, *TRAIN),
        lambda: _env(sp500_panel, features, *VAL),
        tmp_path / "run",
        warm_start=warm,
    )
    report = warm.result
    assert report is not None
    assert report.samples == 1024
    assert report.loss_last < report.loss_first
    assert report.agreement > 0.8
    assert report.agreement > report.agreement_before + 0.1

    assert report.changed > 0.1  # the clone acts differently from the untrained policy

    # the trained artifact still acts like the expert on training states
    policy = load_policy(result.artifact_path)
    env = _env(sp500_panel, features, *TRAIN)
    obs, info = env.reset()
    agree = []
    while True:
        expert = levels[info["bar"], 0]
        agree.append(policy.act(obs)[0] == expert)
        obs, _, terminated, truncated, info = env.step(int(expert))
        if terminated or truncated:
            break
    assert len(agree) > 1000
    assert np.mean(agree) > 0.8


def test_bc_rejects_what_it_cannot_imitate(sp500_panel):
    from stable_baselines3.common.vec_env import DummyVecEnv

    from tradeforge.agents.factory import build_model
    from tradeforge.agents.imitation import behaviour_clone

    features = ma_features(sp500_panel)
    venv = DummyVecEnv([lambda: _env(sp500_panel, features, *TRAIN, discrete_mode="trade")])
    model = build_model(_config(), venv)
    levels = ma_crossover_expert(sp500_panel)
    with pytest.raises(AgentError, match="discrete_mode = 'trade'"):
        behaviour_clone(model, venv, levels, BCConfig(samples=8, epochs=1))
    venv = DummyVecEnv([lambda: _env(sp500_panel, features, *TRAIN)])
    with pytest.raises(AgentError, match="expected \\(T, N\\)"):
        behaviour_clone(model, venv, levels[:, 0], BCConfig(samples=8, epochs=1))
