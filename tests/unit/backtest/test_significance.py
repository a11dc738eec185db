"""Stationary block bootstrap of Sharpe differences, PSR and deflated Sharpe (real SP500 returns)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradeforge.backtest import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    optimal_block_length,
    probabilistic_sharpe_ratio,
    psr_from_moments,
    sharpe_inference,
    significance_table,
    stationary_block_bootstrap_sharpe_diff,
)
from tradeforge.backtest.significance import stationary_bootstrap_indices
from tradeforge.core.errors import BacktestError


@pytest.fixture(scope="module")
def sp_returns(sp500_panel: Any) -> pd.Series:
    close = pd.Series(sp500_panel.close[:, 0], index=sp500_panel.index)
    return close.pct_change().dropna().iloc[-2000:]


def _ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n)
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


def test_bootstrap_indices_form_wrapped_blocks_of_the_requested_mean_length() -> None:
    rng = np.random.default_rng(3)
    idx = stationary_bootstrap_indices(500, 10.0, 200, rng)
    assert idx.shape == (200, 500)
    assert idx.min() >= 0
    assert idx.max() < 500
    continues = (np.diff(idx, axis=1) % 500) == 1  # next bar of the same block (or a lucky start)
    # P(new block) = 1/10; a new start continues by chance with prob 1/500
    assert continues.mean() == pytest.approx(0.9 + 0.1 / 500, abs=0.01)
    with pytest.raises(BacktestError, match="mean_block"):
        stationary_bootstrap_indices(10, 0.5, 1, rng)


def test_optimal_block_length_matches_arch_on_dependent_data() -> None:
    from arch.bootstrap import optimal_block_length as arch_obl

    x = _ar1(3000, 0.7, 0)
    ours = optimal_block_length(x)
    theirs = float(arch_obl(x)["stationary"].iloc[0])
    assert ours == pytest.approx(theirs, rel=0.05)
    assert ours > 10  # strong dependence -> long blocks
    white = np.random.default_rng(1).standard_normal(3000)
    assert optimal_block_length(white) < 5


def test_identical_series_give_p_one_and_ci_containing_zero(sp_returns: pd.Series) -> None:
    res = stationary_block_bootstrap_sharpe_diff(sp_returns, sp_returns, n_boot=500, seed=1)
    assert res.diff == 0.0
    assert res.p_value == pytest.approx(1.0)
    assert res.ci_low <= 0.0 <= res.ci_high
    assert res.n_obs == len(sp_returns)


def test_large_known_difference_gives_small_p_and_ci_excluding_zero(
    sp_returns: pd.Series,
) -> None:
    # the same market plus 10 bps a day (about +25 % a year): a large, real Sharpe difference
    better = sp_returns + 0.001
    res = stationary_block_bootstrap_sharpe_diff(better, sp_returns, n_boot=1000, seed=7)
    assert res.diff > 1.0
    assert res.p_value < 0.01
    assert res.ci_low > 0.0
    assert res.ci_low < res.diff < res.ci_high
    # reproducible with a seed, different with another
    again = stationary_block_bootstrap_sharpe_diff(better, sp_returns, n_boot=1000, seed=7)
    assert again == res
    other = stationary_block_bootstrap_sharpe_diff(better, sp_returns, n_boot=1000, seed=8)
    assert other.ci_low != res.ci_low


def test_unrelated_noise_is_not_significant() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(0, 0.01, 1500), rng.normal(0, 0.01, 1500)
    res = stationary_block_bootstrap_sharpe_diff(a, b, n_boot=1000, seed=0)
    assert res.p_value > 0.05
    assert res.ci_low < 0.0 < res.ci_high


def test_bootstrap_spread_agrees_with_arch_stationary_bootstrap(sp_returns: pd.Series) -> None:
    from arch.bootstrap import StationaryBootstrap

    a = sp_returns.to_numpy()
    b = np.roll(a, 1) * 0.5 + 0.0002  # correlated partner series
    block = 8.0
    ours = stationary_block_bootstrap_sharpe_diff(a, b, n_boot=2000, mean_block=block, seed=0)

    def sharpe(x: np.ndarray) -> float:
        return float(x.mean() / x.std(ddof=1) * math.sqrt(252))

    bs = StationaryBootstrap(block, a, b, seed=0)
    diffs = np.array([sharpe(pa) - sharpe(pb) for (pa, pb), _ in bs.bootstrap(2000)])
    theirs_lo, theirs_hi = np.quantile(diffs, [0.025, 0.975])
    ours_width = ours.ci_high - ours.ci_low
    assert ours_width == pytest.approx(theirs_hi - theirs_lo, rel=0.12)
    assert ours.ci_low == pytest.approx(theirs_lo, abs=0.12 * ours_width)
    assert ours.ci_high == pytest.approx(theirs_hi, abs=0.12 * ours_width)


def test_significance_table_has_one_row_per_baseline(sp_returns: pd.Series) -> None:
    baselines = {"same": sp_returns, "cash": pd.Series(0.0, index=sp_returns.index) + 1e-5}
    baselines["cash"] += np.random.default_rng(0).normal(0, 1e-5, len(sp_returns))
    table = significance_table(sp_returns + 0.001, baselines, n_boot=300, seed=0)
    assert list(table["baseline"]) == ["same", "cash"]
    assert {"sharpe_diff", "ci_low", "ci_high", "p_value", "mean_block", "n_obs"} <= set(table)
    assert table.loc[0, "p_value"] < 0.01
    np.testing.assert_allclose(
        table["sharpe_diff"], table["sharpe_strategy"] - table["sharpe_baseline"]
    )


def test_bootstrap_input_errors(sp_returns: pd.Series) -> None:
    with pytest.raises(BacktestError, match=">= 20 paired returns"):
        stationary_block_bootstrap_sharpe_diff(sp_returns[:10], sp_returns[:10])
    with pytest.raises(BacktestError, match="equal lengths"):
        stationary_block_bootstrap_sharpe_diff(np.zeros(30), np.zeros(31))
    with pytest.raises(BacktestError, match="n_boot"):
        stationary_block_bootstrap_sharpe_diff(sp_returns, sp_returns, n_boot=10)


def test_deflated_sharpe_worked_example_bailey_lopez_de_prado_2014() -> None:
    """Paper example: annual SR 2.5 over 5 years of daily data (T=1250), skew -3, kurtosis 10,
    N=100 trials with annualised Sharpe variance 1/2 -> E[max SR] = 0.1132, DSR = 0.9004."""
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = psr_from_moments(2.5 / math.sqrt(250), 1250, -3.0, 10.0, sr0)
    assert dsr == pytest.approx(0.9004, abs=5e-4)
    assert expected_max_sharpe(1, 1.0) == 0.0
    # normal returns, SR = 0 exactly on the benchmark -> 0.5
    assert psr_from_moments(0.05, 500, 0.0, 3.0, 0.05) == pytest.approx(0.5)


def test_psr_and_dsr_from_returns_are_consistent(sp_returns: pd.Series) -> None:
    from scipy import stats

    r = sp_returns.to_numpy()
    sr = r.mean() / r.std(ddof=1)
    psr = probabilistic_sharpe_ratio(sp_returns)
    manual = psr_from_moments(sr, r.size, stats.skew(r), stats.kurtosis(r, fisher=False))
    assert psr == pytest.approx(manual)
    assert deflated_sharpe_ratio(sp_returns, 1) == pytest.approx(psr)
    dsrs = [deflated_sharpe_ratio(sp_returns, n) for n in (1, 10, 100, 1000)]
    assert all(x > y for x, y in itertools.pairwise(dsrs))
    trials = np.array([0.2, 0.5, 0.9, -0.1, 0.4])
    var = float(np.var(trials, ddof=1)) / 252
    assert deflated_sharpe_ratio(sp_returns, 5, trial_sharpes=trials) == pytest.approx(
        probabilistic_sharpe_ratio(sp_returns, expected_max_sharpe(5, var))
    )
    info = sharpe_inference(sp_returns, n_trials=5, trial_sharpes=trials)
    assert info["sharpe"] == pytest.approx(sr * math.sqrt(252))
    assert info["psr"] == pytest.approx(psr)
    assert info["dsr"] < info["psr"]
    assert info["expected_max_sharpe"] == pytest.approx(
        expected_max_sharpe(5, var) * math.sqrt(252)
    )
    with pytest.raises(BacktestError, match="non-constant"):
        probabilistic_sharpe_ratio(np.zeros(50))
    with pytest.raises(BacktestError, match="n_trials"):
        deflated_sharpe_ratio(sp_returns, 0)


def test_dsr_counts_every_configuration_tried_and_uses_their_spread(sp_returns: pd.Series) -> None:
    # 2 tuning trials x 2 members x 3 seeds = 12 configurations, each with a validation Sharpe
    trials = np.array([0.2, 0.5, 0.9, -0.1, 0.4, 0.3, 0.8, 0.1, 0.6, 0.0, 0.7, 0.45])
    info = sharpe_inference(sp_returns, trial_sharpes=trials)
    var = float(np.var(trials, ddof=1)) / 252
    assert info["n_trials"] == 12
    assert info["n_trial_sharpes"] == 12
    assert info["trial_sharpe_std"] == pytest.approx(float(np.std(trials, ddof=1)))
    assert info["expected_max_sharpe"] == pytest.approx(
        expected_max_sharpe(12, var) * math.sqrt(252)
    )
    assert info["dsr"] == pytest.approx(
        probabilistic_sharpe_ratio(sp_returns, expected_max_sharpe(12, var))
    )
    assert info["dsr"] < info["psr"] - 0.05
    assert deflated_sharpe_ratio(sp_returns, trial_sharpes=trials) == pytest.approx(info["dsr"])
    # the same count with a wider spread of trial Sharpes sets a higher bar
    wider = sharpe_inference(sp_returns, trial_sharpes=trials * 3.0)
    assert wider["n_trials"] == 12
    assert wider["expected_max_sharpe"] == pytest.approx(3.0 * info["expected_max_sharpe"])
    assert wider["dsr"] < info["dsr"]


def test_trials_with_undefined_sharpe_count_but_do_not_set_the_spread(
    sp_returns: pd.Series,
) -> None:
    known = np.array([0.2, 0.9, -0.3])
    info = sharpe_inference(sp_returns, trial_sharpes=np.append(known, [np.nan, np.nan]))
    assert info["n_trials"] == 5
    assert info["n_trial_sharpes"] == 3
    assert info["trial_sharpe_std"] == pytest.approx(float(np.std(known, ddof=1)))
    # pruned tuning trials whose Sharpe is unknown can be added to the count
    more = sharpe_inference(sp_returns, n_trials=40, trial_sharpes=known)
    assert more["n_trials"] == 40
    assert more["trial_sharpe_std"] == pytest.approx(info["trial_sharpe_std"])
    assert more["dsr"] < info["dsr"]
    # the same 3 configurations retrained on 2 folds: 6 Sharpe ratios measure the spread of 3
    folds = sharpe_inference(sp_returns, n_trials=3, trial_sharpes=np.append(known, known + 0.1))
    assert folds["n_trials"] == 3
    assert folds["n_trial_sharpes"] == 6
    assert folds["trial_sharpe_std"] == pytest.approx(
        float(np.std(np.append(known, known + 0.1), ddof=1))
    )
    with pytest.raises(BacktestError, match="n_trials = 0"):
        sharpe_inference(sp_returns, n_trials=0)


def test_count_alone_assumes_the_sampling_error_of_one_sharpe(sp_returns: pd.Series) -> None:
    r = sp_returns.to_numpy()
    sr = r.mean() / r.std(ddof=1)
    c = r - r.mean()
    skew = np.mean(c**3) / np.mean(c**2) ** 1.5
    kurt = np.mean(c**4) / np.mean(c**2) ** 2
    sampling_var = (1 - skew * sr + (kurt - 1) / 4 * sr**2) / (r.size - 1)
    for given in (None, np.array([0.4])):  # one known Sharpe has no spread either
        info = sharpe_inference(sp_returns, n_trials=7, trial_sharpes=given)
        assert info["n_trials"] == 7
        assert info["n_trial_sharpes"] == 0
        assert info["trial_sharpe_std"] == pytest.approx(math.sqrt(sampling_var * 252))
        assert info["dsr"] == pytest.approx(deflated_sharpe_ratio(sp_returns, 7))
    assert sharpe_inference(sp_returns)["n_trials"] == 1
    assert sharpe_inference(sp_returns)["dsr"] == pytest.approx(sharpe_inference(sp_returns)["psr"])
