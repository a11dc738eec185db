from __future__ import annotations

import numpy as np
import pytest

from tradeforge.core.errors import ConfigError, SimulationError
from tradeforge.envs import EnvConfig, TradingEnv
from tradeforge.features.panel import FeaturePanel
from tradeforge.testing.envs import simple_features, synthetic_panel, with_nan


def test_first_observation_is_the_window_ending_at_the_decision_bar(three_assets):
    panel, feats = three_assets
    env = TradingEnv(panel, feats, EnvConfig(window=7))
    obs, _info = env.reset(seed=0)
    t = env.bar
    first, _ = env.decision_bars
    assert t == first == 5 + 7 - 1  # warm-up of 5 bars, then a full window
    window = feats.values[t - 6 : t + 1].astype(np.float32).reshape(-1)
    np.testing.assert_array_equal(obs[: window.size], window)
    # account part: no position, all cash, no open P&L
    np.testing.assert_array_equal(obs[window.size :], [0, 0, 0, 1, 0])
    assert obs.dtype == np.float32
    assert obs.shape == env.observation_space.shape


def test_future_features_and_prices_do_not_change_observations(one_asset):
    """Replacing every bar after K by garbage changes nothing the agent saw up to bar K."""
    panel, feats = one_asset
    k = 60
    values = feats.values.copy()
    values[k + 1 :] = 123.0
    future_feats = FeaturePanel(feats.index, feats.symbols, feats.names, values)
    env_a = TradingEnv(panel, feats, EnvConfig(window=3))
    env_b = TradingEnv(panel, future_feats, EnvConfig(window=3))
    obs_a, _ = env_a.reset(seed=0)
    obs_b, _ = env_b.reset(seed=0)
    while env_a.bar <= k:
        np.testing.assert_array_equal(obs_a, obs_b)
        t = env_a.bar
        np.testing.assert_array_equal(
            obs_a[:9], feats.values[t - 2 : t + 1].astype(np.float32).reshape(-1)
        )
        action = np.array([np.sin(t)], dtype=np.float32)
        obs_a, *_ = env_a.step(action)
        obs_b, *_ = env_b.step(action)
    assert not np.array_equal(obs_a, obs_b)  # bar K+1 is visible once the env reaches it


def test_account_state_after_a_step(one_asset):
    panel, feats = one_asset
    env = TradingEnv(panel, feats, EnvConfig(window=3))
    env.reset(seed=0)
    obs, _, _, _, info = env.step(np.array([0.5], dtype=np.float32))
    weight, cash_frac, upnl = obs[-3:]
    assert weight == pytest.approx(info["position"][0], rel=1e-6)
    assert weight + cash_frac == pytest.approx(1.0, abs=1e-6)
    t = info["bar"]
    # bought at the open of bar t, valued at the close of bar t
    expected = weight * (1 - panel.open[t, 0] / panel.close[t, 0])
    assert upnl == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_dict_observation(three_assets):
    panel, feats = three_assets
    env = TradingEnv(panel, feats, EnvConfig(window=4, dict_obs=True, action="weights"))
    obs, _ = env.reset(seed=0)
    assert obs["features"].shape == (4, 3, 3)
    assert obs["account"].shape == (5,)
    assert env.observation_space.contains(obs)
    t = env.bar
    np.testing.assert_array_equal(obs["features"], feats.values[t - 3 : t + 1].astype(np.float32))


def test_feature_selection_and_missing_feature(one_asset):
    panel, feats = one_asset
    env = TradingEnv(panel, feats, EnvConfig(window=2, feature_names=["range"]))
    assert env.observation_space.shape == (2 * 1 + 3,)
    assert env.feature_names == ("range",)
    with pytest.raises(SimulationError, match=r"feature_names \['rsi'\]"):
        TradingEnv(panel, feats, EnvConfig(window=2, feature_names=["rsi"]))


def test_nan_inside_the_range_names_bar_symbol_and_feature(three_assets):
    panel, feats = three_assets
    holed = with_nan(feats, bar=120, symbol=2, feature=1)
    with pytest.raises(SimulationError, match=r"'ret_5' of 'A2' is NaN at bar 120"):
        TradingEnv(panel, holed, EnvConfig(window=5))
    # the same hole before the env's range is harmless
    env = TradingEnv(panel, holed, EnvConfig(window=5), start=140)
    assert env.decision_bars[0] == 140


def test_episode_starts_after_warmup_of_late_feature(one_asset):
    panel, feats = one_asset
    values = feats.values.copy()
    values[:40, 0, 0] = np.nan  # a feature with a longer warm-up
    late = FeaturePanel(feats.index, feats.symbols, feats.names, values)
    env = TradingEnv(panel, late, EnvConfig(window=10))
    assert env.decision_bars[0] == 40 + 10 - 1
    obs, _ = env.reset(seed=0)
    assert np.isfinite(obs).all()


def test_bad_settings_fail_at_construction(one_asset):
    panel, feats = one_asset
    with pytest.raises(SimulationError, match="window = 500"):
        TradingEnv(panel, feats, EnvConfig(window=500))
    with pytest.raises(SimulationError, match="episode_length = 1000"):
        TradingEnv(panel, feats, EnvConfig(window=5, episode_length=1000))
    with pytest.raises(SimulationError, match="end = 500"):
        TradingEnv(panel, feats, EnvConfig(window=5), end=500)
    with pytest.raises(ConfigError, match="commission_bps"):
        TradingEnv(panel, feats, {"sim": {"costs": {"commission_bps": -1.0}}})
    with pytest.raises(ConfigError, match="window"):
        TradingEnv(panel, feats, {"window": 0})


def test_features_must_match_the_panel(one_asset, three_assets):
    panel, _feats = one_asset
    _other_panel, other_feats = three_assets
    with pytest.raises(SimulationError, match=r"features\.symbols"):
        TradingEnv(panel, other_feats, EnvConfig(window=5))
    short = simple_features(synthetic_panel(n_bars=150, n_assets=1, seed=1))
    with pytest.raises(SimulationError, match=r"features\.values has shape"):
        TradingEnv(panel, short, EnvConfig(window=5))
    shifted = simple_features(synthetic_panel(n_bars=200, n_assets=1, seed=1, start="2021-01-01"))
    with pytest.raises(SimulationError, match=r"features\.index"):
        TradingEnv(panel, shifted, EnvConfig(window=5))


def test_precomputed_and_strided_windows_give_the_same_observations(three_assets, monkeypatch):
    import tradeforge.envs.observations as observations

    panel, feats = three_assets
    config = EnvConfig(action="weights", window=6)
    fast = TradingEnv(panel, feats, config)
    monkeypatch.setattr(observations, "PADDED_BUDGET", 0)
    slow = TradingEnv(panel, feats, config)
    assert fast._core.observations._padded is not None
    assert slow._core.observations._padded is None
    a, _ = fast.reset(seed=0)
    b, _ = slow.reset(seed=0)
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        a = fast.step(action)[0]
        b = slow.step(action)[0]
        np.testing.assert_array_equal(a, b)
        assert a.flags.writeable  # a fresh array, not a view of the precomputed windows
