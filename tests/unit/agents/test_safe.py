"""Safe RL: risk-limit projection (policy and env wrapper) and the Lagrangian penalty.

The projection itself is tested in ``tests/unit/risk/test_limits.py``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from tradeforge.agents import (
    LagrangianConfig,
    LagrangianPenaltyVecEnv,
    ProjectedPolicy,
    ProjectionWrapper,
)
from tradeforge.core.errors import AgentError
from tradeforge.risk import RiskLimits

TOL = 1e-9
BEAR = (2262, 2514)  # S&P 500 in 2008


@dataclass(frozen=True)
class Features:
    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    names: tuple[str, ...]
    values: np.ndarray


def return_features(panel) -> Features:
    close = pd.DataFrame(panel.close)
    values = (np.log(close).diff().to_numpy() * 100)[:, :, None]
    return Features(panel.index, tuple(panel.symbols), ("logret",), values)


def _check(w, prev, limits):
    if limits.max_position is not None:
        assert np.all(np.abs(w) <= limits.max_position + TOL)
    if limits.long_only:
        assert np.all(w >= -TOL)
    if limits.max_gross is not None:
        assert np.abs(w).sum() <= limits.max_gross + TOL
    if limits.max_turnover is not None and prev is not None:
        assert np.abs(w - prev).sum() <= limits.max_turnover + TOL


class Wild:
    """A policy that wants large random long/short positions."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.n = n

    def act(self, observation):
        return self.rng.normal(0.0, 2.0, size=self.n)


def test_projected_policy_keeps_limits_on_real_observations_and_counts_violations(equities_panel):
    from tradeforge.envs import TradingEnv

    features = return_features(equities_panel)
    config = {"action": "continuous", "window": 5, "sim": {"allow_short": True}}
    env = TradingEnv(equities_panel, features, config, 100, 400)
    limits = RiskLimits(max_position=0.4, max_gross=1.0, max_turnover=0.3)
    inner = Wild(3)
    policy = ProjectedPolicy(inner, limits)
    obs, _ = env.reset()
    prev = np.zeros(3)
    for _ in range(100):
        w = policy.act(obs)
        _check(w, prev, limits)
        prev = w
        obs, *_ = env.step(np.clip(w / 0.4, -1, 1))
    report = policy.violations
    assert report["steps"] == 100
    assert report["any"] > 90  # N(0, 2) targets almost always break a limit
    assert report["position"] > 90
    assert 0 < report["rate"] <= 1.0


def test_projection_wrapper_bounds_what_the_simulator_trades(equities_panel):
    from tradeforge.envs import TradingEnv

    features = return_features(equities_panel)
    config = {
        "action": "continuous",
        "window": 5,
        "sim": {"allow_short": True, "max_leverage": 3.0},
    }
    limits = RiskLimits(max_position=0.3, max_gross=0.6, max_turnover=0.25)
    env = ProjectionWrapper(TradingEnv(equities_panel, features, config, 100, 400), limits)
    env.action_space.seed(1)
    env.reset(seed=1)
    prev = np.zeros(3)
    raw_breaks = 0
    for _ in range(120):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        w = info["weights"]
        _check(w, prev, limits)
        raw = info["raw_weights"]
        raw_breaks += int(
            np.any(np.abs(raw) > 0.3) or np.abs(raw).sum() > 0.6 or np.abs(raw - prev).sum() > 0.25
        )
        prev = w
        if terminated or truncated:
            break
    assert info["risk_violations"]["any"] == raw_breaks > 100
    # positions really held stay inside the gross limit (marked after fills)
    held = env.unwrapped.history()["weights"]
    assert np.abs(held).sum(axis=1).max() < 0.6 * 1.1
    import gymnasium as gym

    with pytest.raises(AgentError, match="TradingEnv"):
        ProjectionWrapper(gym.make("CartPole-v1"), limits)


def test_projection_vec_env_bounds_every_row_of_the_batched_env(equities_panel):
    from tradeforge.agents.safe import ProjectionVecEnv
    from tradeforge.envs import BatchedTradingVecEnv

    features = return_features(equities_panel)
    config = {"action": "weights", "weights_transform": "softmax", "window": 3}
    limits = RiskLimits(max_position=0.25, max_gross=0.7, long_only=True)
    venv = ProjectionVecEnv(
        BatchedTradingVecEnv(equities_panel, features, config, n_envs=4, start=100, end=300), limits
    )
    venv.reset()
    rng = np.random.default_rng(3)
    for _ in range(30):
        venv.step(rng.uniform(-1, 1, size=(4, 4)).astype(np.float32))
        targets = venv.venv.last_weights
        assert np.all(targets <= 0.25 + TOL)
        assert np.all(targets >= 0.0)
        assert np.all(np.abs(targets).sum(axis=1) <= 0.7 + TOL)
    report = venv.violations
    assert report["steps"] == 120
    assert report["any"] > 0


def _bear_venv(sp500_panel, penalty: LagrangianConfig):
    from stable_baselines3.common.vec_env import DummyVecEnv

    from tradeforge.envs import TradingEnv

    features = return_features(sp500_panel)
    config = {"action": "discrete", "window": 1, "reward": {"pnl": 1.0, "log_return": 0.0}}
    venv = DummyVecEnv([lambda: TradingEnv(sp500_panel, features, config, *BEAR)])
    return LagrangianPenaltyVecEnv(venv, penalty)


def test_lagrange_multiplier_rises_while_the_drawdown_constraint_is_violated(sp500_panel):
    env = _bear_venv(
        sp500_panel, LagrangianConfig(constraint="drawdown", target=0.05, lr=10.0, update_every=16)
    )
    env.reset()
    long = np.array([1])  # always long through 2008
    costs, penalties = [], []
    for _ in range(200):
        _, _, _, infos = env.step(long)
        costs.append(infos[0]["constraint_cost"])
        penalties.append(infos[0]["lagrange_multiplier"] * infos[0]["constraint_cost"])
    multipliers = [m for _, _, m in env.history]
    assert len(multipliers) == 200 // 16
    assert multipliers[-1] > 2.0
    assert multipliers[0] >= 0.0
    previous = 0.0
    for _, mean_cost, multiplier in env.history:  # dual ascent: up while violated, else down
        if mean_cost > 0.05:
            assert multiplier > previous
        else:
            assert multiplier <= previous
        previous = multiplier
    assert sum(c > 0.05 for _, c, _ in env.history) >= 8
    assert max(costs) > 0.2  # 2008's drawdown
    report = env.report()
    assert report["violations"] > 100
    assert report["multiplier"] == multipliers[-1]
    assert max(penalties) > 0

    # the same path with a loose target: the multiplier stays at zero, rewards untouched
    loose = _bear_venv(
        sp500_panel, LagrangianConfig(constraint="drawdown", target=0.9, update_every=16)
    )
    loose.reset()
    for _ in range(64):
        _, _reward, _, infos = loose.step(long)
        assert infos[0]["lagrange_multiplier"] == 0.0
    assert loose.multiplier == 0.0
    assert loose.violations == 0


def test_penalty_is_subtracted_from_the_reward_for_volatility(sp500_panel):
    config = LagrangianConfig(
        constraint="volatility", target=0.1, initial_multiplier=0.5, update_every=10_000
    )
    env = _bear_venv(sp500_panel, config)
    plain = _bear_venv(sp500_panel, config.model_copy(update={"initial_multiplier": 0.0}))
    env.reset()
    plain.reset()
    for _ in range(40):
        _, r_pen, _, infos = env.step(np.array([1]))
        _, r_raw, _, _ = plain.step(np.array([1]))
        assert r_pen[0] == pytest.approx(r_raw[0] - 0.5 * infos[0]["constraint_cost"], abs=1e-6)
    assert infos[0]["constraint_cost"] > 0.15  # 2008 volatility, annualised
