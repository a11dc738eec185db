"""Agents on the real tradeforge envs and bundled data (AAPL, IBM)."""

from __future__ import annotations

import numpy as np
import pytest
from agent_helpers import tiny_config

from tradeforge.agents import TradeMasks, load_policy, rollout_weights, train_agent
from tradeforge.core.errors import AgentError


@pytest.fixture(scope="module")
def market():
    from tradeforge.data.bundled import load_bundled_panel
    from tradeforge.envs import time_splits
    from tradeforge.features.pipeline import build_features

    panel = load_bundled_panel(["AAPL", "IBM"]).slice_time("2008-01-01", "2010-12-31")
    splits = time_splits(panel.index, 0.6, 0.2, 0.2)
    train = splits.train
    pipeline, features = build_features(
        panel, None, panel.index[train.start], panel.index[train.end - 1]
    )
    return panel, splits, pipeline, features


def _factories(market, env_config, wrap=lambda env: env):
    from tradeforge.envs import TradingEnv

    panel, splits, _, features = market
    val_config = env_config.model_copy(update={"episode_length": None, "random_start": False})

    def make_train():
        return wrap(TradingEnv(panel, features, env_config, splits.train.start, splits.train.end))

    def make_val():
        return wrap(TradingEnv(panel, features, val_config, splits.val.start, splits.val.end))

    return make_train, make_val, val_config


@pytest.mark.parametrize(
    "env_kwargs",
    [
        {"action": "weights", "weights_transform": "softmax"},
        {"action": "discrete", "discrete_mode": "trade", "sim": {"allow_short": True}},
    ],
)
def test_policy_act_equals_env_weights(market, tmp_path, env_kwargs):
    from tradeforge.envs import EnvConfig, TradingEnv

    panel, splits, pipeline, features = market
    config = EnvConfig(window=5, episode_length=32, random_start=True, **env_kwargs)
    make_train, make_val, val_config = _factories(market, config)
    result = train_agent(tiny_config(), make_train, make_val, tmp_path / "run", pipeline=pipeline)
    policy = load_policy(result.artifact_path, expected_feature_hash=pipeline.content_hash)
    assert policy.n_assets == 2
    env = TradingEnv(panel, features, val_config, splits.test.start, splits.test.end)
    obs, _ = env.reset()
    policy.reset()
    for _ in range(25):
        action = policy.env_action(obs)
        weights = policy.act(obs)
        obs, _, _, _, info = env.step(action)
        np.testing.assert_array_equal(weights, info["weights"])
    weights = rollout_weights(policy, env)
    decided = np.isfinite(weights).all(axis=1)
    first, last = env.decision_bars
    assert weights.shape == (panel.n_bars, 2)
    assert decided.sum() == last - first + 1
    assert not decided[: splits.test.start].any()


def test_maskable_ppo_respects_min_hold(market, tmp_path):
    from tradeforge.envs import EnvConfig

    config = EnvConfig(
        action="discrete", window=5, episode_length=32, random_start=True, sim={"allow_short": True}
    )
    make_train, make_val, _ = _factories(
        market, config, wrap=lambda env: TradeMasks(env, min_hold=4)
    )
    agent = tiny_config(algo="maskable_ppo")
    result = train_agent(agent, make_train, make_val, tmp_path / "run")
    weights = rollout_weights(load_policy(result.artifact_path), make_val())
    weights = weights[np.isfinite(weights).all(axis=1)]
    for j in range(2):
        changes = np.flatnonzero(np.diff(weights[:, j]) != 0)
        assert changes.size > 0
        assert np.diff(changes).min() >= 4
    with pytest.raises(AgentError, match="maskable_ppo' needs an env with an action_masks"):
        train_agent(agent, _factories(market, config)[0], make_val, tmp_path / "nomask")


def test_trade_masks_rules(market):
    from tradeforge.envs import EnvConfig, TradingEnv

    panel, _splits, _, features = market
    trade = EnvConfig(action="discrete", discrete_mode="trade", window=5)
    env = TradeMasks(TradingEnv(panel, features, trade, 0, 200), frozen=[1])
    env.reset()
    # long-only trade mode, flat: sell (0) is impossible for both; asset 1 may not trade at all
    np.testing.assert_array_equal(env.action_masks(), [False, True, True, False, True, False])
    env.step(np.array([2, 1]))
    np.testing.assert_array_equal(env.action_masks(), [True, True, False, False, True, False])
    with pytest.raises(AgentError, match=r"EnvConfig\.action = 'discrete'"):
        TradeMasks(TradingEnv(panel, features, EnvConfig(window=5), 0, 200))
    with pytest.raises(AgentError, match=r"indices \[5\]"):
        TradeMasks(TradingEnv(panel, features, trade, 0, 200), frozen=[5])
