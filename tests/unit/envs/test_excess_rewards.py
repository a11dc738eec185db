"""Rewards in excess of a benchmark (``RewardConfig.excess_*``, ``envs.rewards.BenchmarkAccount``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tradeforge.core.errors import SimulationError
from tradeforge.data.bundled import load_bundled_panel
from tradeforge.envs import BatchedTradingVecEnv, EnvConfig, TradingEnv
from tradeforge.envs.config import RewardConfig
from tradeforge.envs.rewards import BenchmarkAccount, RewardState
from tradeforge.testing.envs import simple_features

# 3 bars, 2 assets: closes (marks) and the prices orders fill at (bar t+1's open)
MARK = np.array([[10.0, 20.0], [11.0, 19.0], [12.0, 21.0]])
FILL = np.array([[10.0, 20.0], [10.5, 19.5], [11.5, 20.5]])
AGENT = np.array([100.0, 102.0, 110.0])  # the agent's equity at the three closes

# By hand, benchmark equity at the three closes, starting with 100 in cash:
# step 0: buy 0.5 * 100 / 10 = 5 and 0.5 * 100 / 20 = 2.5 shares at 10.5 and 19.5:
#   cash 100 - 52.5 - 48.75 = -1.25; equity -1.25 + 5 * 11 + 2.5 * 19 = 101.25
# equal weight, step 1: targets 0.5 * 101.25 / 11 = 4.60227..., 0.5 * 101.25 / 19 = 2.66447...;
#   trades -0.39773 at 11.5 and +0.16447 at 20.5: cash -0.0478469;
#   equity -0.0478469 + 4.60227 * 12 + 2.66447 * 21 = 185815 / 1672 = 111.1333732...
# hold, step 1: no trade: -1.25 + 5 * 12 + 2.5 * 21 = 111.25
EW = np.array([100.0, 101.25, 185815.0 / 1672.0])
HOLD = np.array([100.0, 101.25, 111.25])
ZERO_COSTS = {
    "commission_bps": 0.0,
    "half_spread_bps": 0.0,
    "slippage_bps": 0.0,
    "impact_coef": 0.0,
    "margin_spread_annual": 0.0,
}


def run(config: RewardConfig, agent: np.ndarray = AGENT) -> np.ndarray:
    state = RewardState(config, 1, 100.0, (MARK, FILL))
    out = []
    for t in range(2):
        out.append(state.step(agent[t : t + 1], agent[t + 1 : t + 2], np.zeros(1), np.array([t])))
    return np.array(out)[:, 0]


@pytest.fixture(scope="module")
def stocks():
    panel = load_bundled_panel(["AAPL", "IBM", "MSFT", "GOOG"], frequency="1d")
    panel = panel.iloc(slice(panel.n_bars - 300, panel.n_bars))
    return panel, simple_features(panel)


@pytest.mark.parametrize(("kind", "expected"), [("equal_weight", EW), ("hold", HOLD)])
def test_benchmark_account_by_hand(kind, expected):
    account = BenchmarkAccount(MARK, FILL, kind, 1, 100.0)
    before, after = account.step(np.array([0]))
    assert before[0] == 100.0
    assert after[0] == pytest.approx(101.25, rel=1e-15)
    np.testing.assert_allclose(account.shares[0], [5.0, 2.5])
    before, after = account.step(np.array([1]))
    assert before[0] == pytest.approx(101.25, rel=1e-15)
    assert after[0] == pytest.approx(expected[2], rel=1e-14)


def test_excess_log_return_by_hand():
    got = run(RewardConfig(log_return=0.0, excess_log_return=1.0))
    expected = [math.log(102 / 100) - math.log(101.25 / 100), math.log(110 / 102)]
    expected[1] -= math.log(EW[2] / 101.25)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(got, [0.00738010729762262, -0.017630781933644576], rtol=1e-9)
    hold = run(RewardConfig(log_return=0.0, excess_log_return=1.0, excess_benchmark="hold"))
    np.testing.assert_allclose(hold[1], math.log(110 / 102) - math.log(111.25 / 101.25))
    # added to the other terms after their scale, and scaled too
    both = run(RewardConfig(log_return=1.0, excess_log_return=2.0, scale=10.0))
    np.testing.assert_allclose(both, 10.0 * (np.diff(np.log(AGENT)) + 2.0 * got), rtol=1e-12)


def test_excess_dsr_by_hand():
    eta = 0.5
    got = run(RewardConfig(log_return=0.0, excess_dsr=1.0, dsr_eta=eta))
    r1 = 102 / 100 - 1 - (101.25 / 100 - 1)
    r2 = 110 / 102 - 1 - (EW[2] / 101.25 - 1)
    a, b = eta * r1, eta * r1 * r1  # after the first step (whose term is 0: no variance yet)
    d2 = (b * (r2 - a) - 0.5 * a * (r2 * r2 - b)) / (b - a * a) ** 1.5
    np.testing.assert_allclose(got, [0.0, d2], rtol=1e-10)
    assert got[1] != 0.0


def test_excess_drawdown_by_hand():
    got = run(RewardConfig(log_return=0.0, excess_drawdown=2.0))
    rel1, rel2 = 102 / 101.25, 110 / EW[2]
    assert rel2 < rel1  # the agent fell behind the benchmark on the second step
    np.testing.assert_allclose(got, [0.0, -2.0 * (1.0 - rel2 / rel1)], rtol=1e-12, atol=1e-15)
    # ahead of the benchmark on both steps: no penalty
    ahead = run(RewardConfig(log_return=0.0, excess_drawdown=2.0), np.array([100.0, 102.0, 115]))
    assert np.array_equal(ahead, [0.0, 0.0])


def test_reward_at_t_reads_no_price_after_t_plus_1():
    later = MARK.copy()
    later[2] = [1.0, 1.0]
    account = BenchmarkAccount(MARK, FILL, "equal_weight", 1, 100.0)
    moved = BenchmarkAccount(later, FILL, "equal_weight", 1, 100.0)
    assert account.step(np.array([0])) == moved.step(np.array([0]))


def test_config_and_state_validation():
    config = RewardConfig(log_return=0.0, excess_dsr=1.0)  # an excess term alone is enough
    assert config.has_excess
    assert "excess_log_return" not in RewardConfig().model_dump()  # old configs dump as before
    assert RewardConfig.model_validate(config.model_dump()) == config
    with pytest.raises(SimulationError, match="no prices"):
        RewardState(config, 1, 100.0)
    state = RewardState(config, 1, 100.0, (MARK, FILL))
    with pytest.raises(SimulationError, match="t = None"):
        state.step(np.array([100.0]), np.array([101.0]), np.zeros(1))
    with pytest.raises(ValueError, match="excess_drawdown"):
        RewardConfig(excess_drawdown=-1.0)


def excess_config(**raw: Any) -> EnvConfig:
    base = {
        "action": "tilt",
        "window": 5,
        "reward": {
            "log_return": 0.0,
            "excess_log_return": 1.0,
            "excess_dsr": 0.5,
            "excess_drawdown": 0.3,
        },
        "sim": {"costs": ZERO_COSTS},
    }
    return EnvConfig.model_validate({**base, **raw})


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_zero_tilt_earns_exactly_zero_excess_over_equal_weight(stocks, kernel):
    panel, feats = stocks
    env = TradingEnv(panel, feats, excess_config(), kernel=kernel)
    env.reset(seed=0)
    rewards = []
    for _ in range(200):
        _, reward, term, trunc, info = env.step(np.zeros(4, dtype=np.float32))
        rewards.append(reward)
        assert not term
        assert not trunc
    assert info["turnover"] > 0.0  # it does trade (the drift back to 1/N), yet earns exactly 0
    assert np.array_equal(rewards, np.zeros(200))
    vec = BatchedTradingVecEnv(
        panel, feats, excess_config(episode_length=40, random_start=True), 3, seed=2, kernel=kernel
    )
    vec.reset()
    for _ in range(90):  # across auto-resets
        _, reward, _, _ = vec.step(np.zeros((3, 4), dtype=np.float32))
        assert np.array_equal(reward, np.zeros(3))


def test_costs_make_the_zero_tilt_excess_negative(stocks):
    panel, feats = stocks
    costs = {**ZERO_COSTS, "commission_bps": 5.0}
    reward = {"log_return": 0.0, "excess_log_return": 1.0}
    config = excess_config(reward=reward, sim={"costs": costs})
    env = TradingEnv(panel, feats, config)
    env.reset(seed=0)
    _, first, *_, info = env.step(np.zeros(4, dtype=np.float32))
    bench = env._core.rewards.benchmark
    assert bench is not None
    # the same shares as the benchmark, less the fee on the first buy: log(1 - fee / B)
    fee = 5e-4 * info["turnover"] * 1_000_000.0
    assert first == pytest.approx(math.log(1.0 - fee / bench.equity[0]), rel=1e-9)
    rewards = [env.step(np.zeros(4, dtype=np.float32))[1] for _ in range(20)]
    assert all(r < 0.0 for r in rewards)


def test_excess_terms_equal_on_kernel_and_numpy_paths(stocks):
    panel, feats = stocks
    costs = {"commission_bps": 1.0, "half_spread_bps": 2.0, "impact_coef": 0.1}
    reward = {
        "log_return": 1.0,
        "dsr": 0.2,
        "drawdown": 0.1,
        "excess_log_return": 1.0,
        "excess_dsr": 0.5,
        "excess_drawdown": 0.3,
        "excess_benchmark": "hold",
        "scale": 3.0,
    }
    config = excess_config(reward=reward, sim={"costs": costs})
    fast = TradingEnv(panel, feats, config, kernel="numba")
    slow = TradingEnv(panel, feats, config, kernel="numpy")
    fast.reset(seed=0)
    slow.reset(seed=0)
    rng = np.random.default_rng(5)
    got = []
    for _ in range(60):
        action = rng.uniform(-1.0, 1.0, 4).astype(np.float32)
        a, b = fast.step(action)[1], slow.step(action)[1]
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
        got.append(a)
    assert np.std(got) > 0.0
