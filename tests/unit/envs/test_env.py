from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from tradeforge.core.errors import SimulationError
from tradeforge.envs import EnvConfig, TradingEnv

CONFIGS = [
    {"action": "continuous"},
    {"action": "discrete"},
    {"action": "discrete", "discrete_mode": "trade", "sim": {"allow_short": True}},
    {"action": "weights"},
    {"action": "weights", "weights_transform": "simplex", "sim": {"allow_short": True}},
    {"action": "continuous", "dict_obs": True, "reward": {"dsr": 1.0, "log_return": 0.0}},
]


@pytest.mark.parametrize("assets", ["one_asset", "three_assets"])
@pytest.mark.parametrize("raw", CONFIGS)
def test_passes_gymnasium_and_sb3_checkers(raw, assets, request):
    panel, feats = request.getfixturevalue(assets)
    config = EnvConfig.model_validate(
        {"window": 5, "episode_length": 40, "random_start": True, **raw}
    )
    gym_check_env(TradingEnv(panel, feats, config), skip_render_check=True)
    if not config.dict_obs:  # SB3's checker treats a 3-D Box inside a Dict as an image
        sb3_check_env(TradingEnv(panel, feats, config), warn=True)


def rollout(env, seed, n_episodes=2):
    rng = np.random.default_rng(seed)
    env.action_space.seed(seed)
    out = []
    for ep in range(n_episodes):
        obs, _ = env.reset(seed=seed if ep == 0 else None)
        done = False
        while not done:
            action = env.action_space.sample()
            obs, reward, term, trunc, info = env.step(action)
            out.append((obs.copy(), reward, term, trunc, info["equity"], info["weights"].copy()))
            done = term or trunc
        out.append(("reset", rng.random()))
    return out


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, np.ndarray):
                np.testing.assert_array_equal(u, v)
            else:
                assert u == v


@pytest.mark.parametrize(
    ("assets", "action"), [("one_asset", "continuous"), ("three_assets", "weights")]
)
def test_same_seed_same_trajectory(assets, action, request):
    panel, feats = request.getfixturevalue(assets)
    config = EnvConfig(action=action, window=5, episode_length=30, random_start=True)
    a = rollout(TradingEnv(panel, feats, config), seed=7)
    b = rollout(TradingEnv(panel, feats, config), seed=7)
    assert_same(a, b)
    c = rollout(TradingEnv(panel, feats, config), seed=8)
    assert [x[4] for x in a if len(x) > 2] != [x[4] for x in c if len(x) > 2]


def test_random_starts_stay_inside_the_range_and_length_is_fixed(one_asset):
    panel, feats = one_asset
    env = TradingEnv(
        panel, feats, EnvConfig(window=5, episode_length=20, random_start=True), start=50, end=150
    )
    first, last = env.decision_bars
    assert (first, last) == (50, 148)
    starts = set()
    for seed in range(30):
        env.reset(seed=seed)
        starts.add(env.bar)
        for i in range(20):
            _, _, term, trunc, info = env.step(np.array([0.3], dtype=np.float32))
            assert info["bar"] <= 149
            assert trunc == (i == 19)
            assert not term
    assert min(starts) >= first
    assert max(starts) <= last - 20 + 1
    assert len(starts) > 10


def test_episode_to_the_end_of_the_range(one_asset):
    panel, feats = one_asset
    env = TradingEnv(panel, feats, EnvConfig(window=5), end=100)
    env.reset(seed=0)
    steps = 0
    while True:
        _, _, term, trunc, info = env.step(np.array([1.0], dtype=np.float32))
        steps += 1
        if term or trunc:
            break
    first, last = env.decision_bars
    assert steps == last - first + 1
    assert info["bar"] == 99
    with pytest.raises(SimulationError, match="reset"):
        env.step(np.array([1.0], dtype=np.float32))


def test_drawdown_limit_and_ruin_terminate(one_asset):
    panel, feats = one_asset
    env = TradingEnv(
        panel, feats, EnvConfig(window=5, max_drawdown=0.01, sim={"allow_short": True})
    )
    env.reset(seed=0)
    peak = env.equity
    while True:
        _, _, term, trunc, info = env.step(np.array([1.0], dtype=np.float32))
        peak = max(peak, info["equity"])
        if term or trunc:
            break
    assert term
    assert not trunc
    assert 1.0 - info["equity"] / peak >= 0.01
    ruin = TradingEnv(
        panel,
        feats,
        EnvConfig(window=5, ruin_fraction=0.9999, sim={"costs": {"commission_bps": 100.0}}),
    )
    ruin.reset(seed=0)
    _, _, term, _, info = ruin.step(np.array([1.0], dtype=np.float32))
    assert term
    assert info["equity"] < 0.9999 * 1_000_000


def test_info_weights_match_action_to_weights(three_assets):
    panel, feats = three_assets
    env = TradingEnv(panel, feats, EnvConfig(action="weights", window=5))
    env.reset(seed=0)
    action = np.array([0.9, -0.3, 0.2, 0.0], dtype=np.float32)
    expected = env.action_to_weights(action)
    assert expected.shape == (3,)
    _, _, _, _, info = env.step(action)
    np.testing.assert_array_equal(info["weights"], expected)
    with pytest.raises(SimulationError, match="outside the action space"):
        env.step(np.array([3.0, 0.0, 0.0, 0.0], dtype=np.float32))


def test_reward_is_log_equity_change_net_of_costs(one_asset):
    panel, feats = one_asset
    env = TradingEnv(panel, feats, EnvConfig(window=5, sim={"costs": {"commission_bps": 10.0}}))
    env.reset(seed=0)
    prev = env.equity
    total = 0.0
    for _ in range(10):
        _, reward, _, _, info = env.step(np.array([1.0], dtype=np.float32))
        assert reward == pytest.approx(np.log(info["equity"] / prev), abs=1e-12)
        total += reward
        prev = info["equity"]
    assert total == pytest.approx(np.log(env.equity / 1_000_000), abs=1e-10)


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_carry_rates_use_the_bars_per_year_of_the_data(kernel):
    """On hourly FX bars (bundled EUR/USD) a flat account earns 6.24 %/yr over 260 x 24 bars:
    1 bp of its cash per bar (daily-bar arithmetic, 252 a year, would pay 24.8 bp)."""
    from tradeforge.data.bundled import load_bundled_panel
    from tradeforge.sim.kernel import NUMBA_AVAILABLE
    from tradeforge.testing.envs import simple_features

    if kernel == "numba" and not NUMBA_AVAILABLE:
        pytest.skip("numba is not installed")
    panel = load_bundled_panel(["EURUSD"], frequency="1h").iloc(slice(0, 300))
    sim = {"calendar": "fx", "costs": {"cash_rate_annual": 0.0624}}
    env = TradingEnv(panel, simple_features(panel), {"window": 5, "sim": sim}, kernel=kernel)
    env.reset(seed=0)
    equity = [env.equity]
    for _ in range(3):
        equity.append(env.step(np.zeros(1, dtype=np.float32))[4]["equity"])
    np.testing.assert_allclose(np.diff(equity) / equity[:-1], 1e-5, rtol=1e-9)


def test_levered_env_pays_margin_interest(one_asset):
    """A 2x long borrows its equity and pays the default margin rate (1.5 %/yr) on the loan."""
    panel, feats = one_asset
    levered = {"max_leverage": 2.0, "max_position": 2.0}
    for kernel in ("numba", "numpy"):
        runs = {}
        for name, spread in (("paid", 0.015), ("free", 0.0)):
            sim = {**levered, "costs": {"margin_spread_annual": spread}}
            env = TradingEnv(panel, feats, {"window": 5, "sim": sim}, kernel=kernel)
            env.reset(seed=0)
            runs[name] = [env.step(np.ones(1, dtype=np.float32))[4] for _ in range(20)]
        assert runs["paid"][0]["position"][0] == pytest.approx(2.0, abs=0.05)
        loss = runs["free"][-1]["equity"] - runs["paid"][-1]["equity"]
        # about 20 bars of 1.5 %/yr on a loan of about the equity
        assert loss == pytest.approx(20 * 0.015 / 252 * 1e6, rel=0.1)


def test_render_modes(three_assets):
    panel, feats = three_assets
    env = TradingEnv(panel, feats, EnvConfig(action="weights", window=5), render_mode="ansi")
    env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    text = env.render()
    assert "equity" in text
    assert "A2=" in text
    img_env = TradingEnv(panel, feats, EnvConfig(window=5), render_mode="rgb_array")
    img_env.reset(seed=0)
    for _ in range(5):
        img_env.step(np.array([0.5, 0.1, 0.2], dtype=np.float32))
    img = img_env.render()
    assert img.shape == (480, 640, 3)
    assert img.dtype == np.uint8
    assert img.min() < 128 < img.max()  # something was drawn
    with pytest.raises(SimulationError, match="render_mode"):
        TradingEnv(panel, feats, EnvConfig(window=5), render_mode="human")
