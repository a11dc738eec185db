"""Every registered id builds from bundled real data and passes both env checkers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from tradeforge.envs import TradingEnv, register_envs
from tradeforge.envs.registration import ENV_IDS

IDS = register_envs()


def test_register_is_idempotent_and_versioned():
    assert register_envs() == IDS
    assert set(IDS) == set(ENV_IDS)
    for env_id in IDS:
        assert env_id.startswith("tradeforge/")
        assert env_id.endswith("-v0")
        assert env_id in gym.registry


@pytest.mark.parametrize("env_id", IDS)
def test_every_registered_id_passes_gymnasium_and_sb3_checkers(env_id):
    env = gym.make(env_id)
    inner = env.unwrapped
    assert isinstance(inner, TradingEnv)
    assert inner.panel.symbols == ENV_IDS[env_id]["symbols"]
    gym_check_env(inner, skip_render_check=True)
    sb3_check_env(gym.make(env_id).unwrapped, warn=True)
    obs, _ = env.reset(seed=0)
    assert np.isfinite(obs).all()
    env.close()


def test_make_accepts_a_range_and_config_overrides(equities_panel):
    env = gym.make(
        "tradeforge/Portfolio-v0",
        panel=equities_panel,
        config={"window": 10, "episode_length": 50},
        start=0,
        end=1000,
    ).unwrapped
    _first, last = env.decision_bars
    assert last == 998
    assert env.config.window == 10
    assert env.config.action == "weights"
    assert env.observation_space.shape == (10 * 3 * len(env.feature_names) + 3 + 2,)
