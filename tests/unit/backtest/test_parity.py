"""Parity: TradingEnv and run_backtest are one simulator, so the same actions give the same equity.

The env is stepped with seeded random actions on bundled real data with non-zero costs; the
target weights it reports (``info["weights"]``) are backtested with ``run_backtest`` over the
same bars, and the two equity curves must agree to 1e-9 (relative), for one asset and for a
portfolio, with both engine kernels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tradeforge.agents.rollout import rollout_weights
from tradeforge.backtest.engine import decision_window, run_backtest
from tradeforge.backtest.engine_kernel import numba_available
from tradeforge.data.panel import BarPanel
from tradeforge.envs import EnvConfig, TradingEnv
from tradeforge.sim import SimConfig
from tradeforge.testing.envs import simple_features
from tradeforge.testing.sim import EVERY_COST

KERNELS = ["step", pytest.param("numba", marks=pytest.mark.skipif(not numba_available(), reason="numba is not installed"))]  # fmt: skip

COSTS = EVERY_COST


def run_env(env: TradingEnv, n_steps: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Step with seeded random actions; returns (T, N) targets, equity per bar and first bar."""
    env.action_space.seed(seed)
    _, info = env.reset(seed=seed)
    first = int(info["bar"])
    weights = np.full((env.panel.n_bars, env.panel.n_symbols), np.nan)
    equity = [float(info["equity"])]
    bar = first
    for _ in range(n_steps):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        weights[bar] = info["weights"]
        equity.append(float(info["equity"]))
        bar = int(info["bar"])
        if terminated or truncated:
            break
    return weights, np.asarray(equity), first


def check_parity(env: TradingEnv, kernel: Any, n_steps: int, seed: int = 3) -> None:
    weights, env_equity, first = run_env(env, n_steps, seed)
    end = first + len(env_equity)
    res = run_backtest(env.panel, weights, env.config.sim, start=first, end=end, kernel=kernel)
    assert len(res.equity) == len(env_equity) > 100
    np.testing.assert_allclose(res.equity.to_numpy(), env_equity, rtol=1e-9, atol=0.0)
    costs = res.costs
    assert (costs[["commission", "spread", "slippage", "impact"]].sum() > 0).all()
    assert abs(env_equity[-1] - env.config.sim.initial_cash) > 1.0  # it really traded


@pytest.mark.parametrize("kernel", KERNELS)
def test_single_asset_continuous_long_short(sp500_panel: BarPanel, kernel: Any) -> None:
    sim = SimConfig(costs=COSTS, allow_short=True, max_leverage=1.0)
    config = EnvConfig(action="continuous", window=5, sim=sim)
    env = TradingEnv(sp500_panel, simple_features(sp500_panel), config, start=100, end=800)
    check_parity(env, kernel, n_steps=2000)
    assert env.history()["bar"][-1] == 799  # the episode ran to the end of the range


@pytest.mark.parametrize("kernel", KERNELS)
def test_portfolio_weights_actions(equities_panel: BarPanel, kernel: Any) -> None:
    sim = SimConfig(costs=COSTS, fill_price="vwap", initial_cash=250_000)
    config = EnvConfig(action="weights", window=5, sim=sim)
    env = TradingEnv(equities_panel, simple_features(equities_panel), config, start=0, end=600)
    check_parity(env, kernel, n_steps=2000)


@pytest.mark.parametrize("kernel", KERNELS)
def test_portfolio_discrete_whole_lots(equities_panel: BarPanel, kernel: Any) -> None:
    sim = SimConfig(
        costs=COSTS.model_copy(update={"participation_cap": 0.001}),
        allow_short=True,
        fractional=False,
        lot_size=10,
        max_leverage=1.5,
        fill_price="close",
    )
    config = EnvConfig(action="discrete", window=3, sim=sim, episode_length=400)
    env = TradingEnv(equities_panel, simple_features(equities_panel), config, start=1000)
    check_parity(env, kernel, n_steps=400)


@pytest.mark.parametrize("kernel", KERNELS)
def test_levered_portfolio_with_latency(equities_panel: BarPanel, kernel: Any) -> None:
    """Margin interest and delayed fills are the same in the env and the backtester."""
    sim = SimConfig(
        costs=COSTS.model_copy(update={"short_rebate_annual": 0.003}),
        allow_short=True,
        max_leverage=2.0,
        max_position=1.0,
        delay_bars=2,
    )
    config = EnvConfig(action="continuous", window=5, sim=sim)
    env = TradingEnv(equities_panel, simple_features(equities_panel), config, start=0, end=700)
    check_parity(env, kernel, n_steps=2000)
    weights, _, first = run_env(env, 300, seed=5)
    res = run_backtest(env.panel, weights, sim, start=first, end=first + 301, kernel=kernel)
    assert res.costs["margin"].sum() > 0  # the levered account paid for its loans
    assert (res.positions.iloc[:3] == 0).all().all()  # two bars of latency: first fill at +3
    assert (res.fills["timestamp"] > res.fills["decision_timestamp"]).all()
    gap = res.fills["timestamp"].map(env.panel.index.get_loc) - res.fills["decision_timestamp"].map(
        env.panel.index.get_loc
    )
    assert (gap == 3).all()


class AlternatingPolicy:
    """A Policy (``act(observation) -> action``): long the first half of the assets on even
    calls, the second half on odd calls (a deterministic, trading-heavy policy)."""

    def __init__(self, n_assets: int) -> None:
        self.n = n_assets
        self.calls = 0

    def act(self, observation: Any) -> np.ndarray:
        a = np.full(self.n, -1.0, dtype=np.float32)
        half = max(self.n // 2, 1)
        if self.calls % 2 == 0:
            a[:half] = 1.0
        else:
            a[half:] = 1.0
        self.calls += 1
        return a


def test_policy_rollout_weights_backtest_to_the_env_equity(equities_panel: BarPanel) -> None:
    """The lead's path: rollout_weights(policy, env) -> run_backtest over env.decision_bars."""
    sim = SimConfig(costs=COSTS)
    config = EnvConfig(action="continuous", window=5, sim=sim)
    env = TradingEnv(equities_panel, simple_features(equities_panel), config, start=0, end=700)
    weights = rollout_weights(AlternatingPolicy(3), env)
    start, end = decision_window(weights)
    assert start == env.decision_bars[0]
    res = run_backtest(env.panel, weights, sim, start=start, end=end)
    np.testing.assert_allclose(res.equity.to_numpy(), env.history()["equity"], rtol=1e-9)
    # this costly flip-flopping lost 95 % in the 2000-2001 crash: the env ended the episode
    # (ruin), and decision_window ends the backtest at the same bar
    assert end - 1 < env.decision_bars[1]
    assert res.equity.iloc[-1] < 0.05 * sim.initial_cash
    assert len(res.fills) > 500
    assert len(res.trades) > 200
