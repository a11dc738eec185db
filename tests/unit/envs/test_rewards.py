from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tradeforge.envs.config import RewardConfig
from tradeforge.envs.rewards import RewardState


def run(config, equity, traded=None):
    state = RewardState(config, 1, float(equity[0]))
    traded = np.zeros(len(equity)) if traded is None else traded
    out = []
    for i in range(1, len(equity)):
        out.append(state.step(equity[i - 1 : i], equity[i : i + 1], traded[i : i + 1])[0])
    return np.array(out)


EQUITY = 100.0 * np.cumprod(1.0 + np.array([0.0, 0.01, -0.02, 0.015, 0.003, -0.01, 0.02, -0.005]))


def test_pnl_and_log_return():
    np.testing.assert_allclose(
        run(RewardConfig(log_return=0.0, pnl=1.0), EQUITY), np.diff(EQUITY) / 100.0
    )
    np.testing.assert_allclose(run(RewardConfig(), EQUITY), np.diff(np.log(EQUITY)))


def test_differential_sharpe_ratio_matches_the_recursion():
    eta = 0.1
    got = run(RewardConfig(log_return=0.0, dsr=1.0, dsr_eta=eta), EQUITY)
    a = b = 0.0
    expected = []
    for r in EQUITY[1:] / EQUITY[:-1] - 1.0:
        var = b - a * a
        d = (b * (r - a) - 0.5 * a * (r * r - b)) / var**1.5 if var > 1e-12 else 0.0
        expected.append(d)
        a += eta * (r - a)
        b += eta * (r * r - b)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[0] == 0.0
    assert np.all(np.isfinite(got))
    assert np.any(got != 0.0)


def test_penalties():
    rets = EQUITY[1:] / EQUITY[:-1] - 1.0
    down = run(RewardConfig(log_return=0.0, downside=2.0), EQUITY)
    np.testing.assert_allclose(down, -2.0 * np.minimum(rets, 0.0) ** 2)
    dd = run(RewardConfig(log_return=0.0, drawdown=1.0), EQUITY)
    peak = np.maximum.accumulate(EQUITY)[1:]
    np.testing.assert_allclose(dd, -(1.0 - EQUITY[1:] / peak))
    traded = np.full(len(EQUITY), 50.0)
    turn = run(RewardConfig(log_return=0.0, turnover=0.5), EQUITY, traded)
    np.testing.assert_allclose(turn, -0.5 * 50.0 / EQUITY[:-1])


def test_weighted_sum_and_scale():
    cfg = RewardConfig(log_return=1.0, pnl=2.0, drawdown=0.5, scale=10.0)
    parts = (
        run(RewardConfig(), EQUITY)
        + 2.0 * run(RewardConfig(log_return=0.0, pnl=1.0), EQUITY)
        + 0.5 * run(RewardConfig(log_return=0.0, drawdown=1.0), EQUITY)
    )
    np.testing.assert_allclose(run(cfg, EQUITY), 10.0 * parts)


def test_reward_config_validation():
    with pytest.raises(ValidationError, match="every term weight at 0"):
        RewardConfig(log_return=0.0)
    with pytest.raises(ValidationError, match="turnover"):
        RewardConfig(turnover=-1.0)
    with pytest.raises(ValidationError, match="dsr_eta"):
        RewardConfig(dsr=1.0, dsr_eta=0.0)
