"""The suite's pooled Sharpe difference on synthetic returns with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tradeforge.core.errors import BacktestError
from tradeforge.experiment.suite_report import (
    FoldData,
    Window,
    pooled_sharpe_difference,
    sharpe_rows,
)


def _noise(n: int, seed: int, scale: float = 0.01) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0003, scale, n)


def _sharpe(r: np.ndarray, ppy: int) -> float:
    return float(np.mean(r) / np.std(r, ddof=1) * math.sqrt(ppy))


def test_identical_agent_and_benchmark_give_zero_with_an_interval_at_zero():
    bench = _noise(300, 1)
    windows = [Window("a", np.vstack([bench, bench]), bench, 252)]
    res = pooled_sharpe_difference(windows, n_boot=400)
    assert res.diff == 0.0
    assert res.ci_low <= 0.0 <= res.ci_high
    assert abs(res.ci_low) < 1e-12
    assert abs(res.ci_high) < 1e-12
    assert res.p_value == 1.0
    assert res.share_won == 0.0  # a tie is not a win


def test_constant_positive_excess_has_an_interval_above_zero():
    windows = []
    for k in range(3):
        bench = _noise(250, 10 + k)
        windows.append(Window(f"w{k}", (bench + 0.0005)[None, :], bench, 252))
    res = pooled_sharpe_difference(windows, n_boot=500)
    # the same std, a higher mean: the agent's Sharpe is above the benchmark's in every resample
    expected = np.mean([0.0005 / np.std(w.benchmark, ddof=1) * math.sqrt(252) for w in windows])
    assert res.diff == pytest.approx(expected, rel=1e-12)
    assert res.ci_low > 0.0
    assert res.p_value < 0.05
    assert res.share_won == 1.0


def test_constant_negative_excess_has_an_interval_below_zero():
    bench = _noise(400, 3)
    res = pooled_sharpe_difference([Window("w", (bench - 0.001)[None, :], bench, 252)], n_boot=300)
    assert res.diff < 0.0
    assert res.ci_high < 0.0


def test_pooled_difference_is_the_year_weighted_mean_of_seed_averaged_window_differences():
    a1, a2, b1 = _noise(252, 4), _noise(252, 5), _noise(252, 6)  # one year, two seeds
    a3, b2 = _noise(504, 7), _noise(504, 8)  # two years, one seed
    d1 = (_sharpe(a1, 252) + _sharpe(a2, 252)) / 2 - _sharpe(b1, 252)
    d2 = _sharpe(a3, 252) - _sharpe(b2, 252)
    windows = [Window("one", np.vstack([a1, a2]), b1, 252), Window("two", a3[None, :], b2, 252)]
    res = pooled_sharpe_difference(windows, n_boot=200)
    assert res.diff == pytest.approx((1 * d1 + 2 * d2) / 3, rel=1e-12)
    np.testing.assert_allclose(res.window_diffs, [d1, d2], rtol=1e-12)
    assert res.years == pytest.approx(3.0)
    assert res.n_windows == 2
    assert res.share_won == pytest.approx(np.mean([d1 > 0, d2 > 0]))


def test_unrelated_noise_gives_an_interval_that_spans_its_estimate_and_is_seeded():
    windows = [
        Window(f"w{k}", _noise(500, 20 + k)[None, :], _noise(500, 40 + k), 252) for k in range(4)
    ]
    res = pooled_sharpe_difference(windows, n_boot=600, seed=7)
    again = pooled_sharpe_difference(windows, n_boot=600, seed=7)
    assert res.ci_low < res.diff < res.ci_high
    assert res.ci_high - res.ci_low > 0.5  # four years of noise cannot pin a Sharpe difference
    assert (res.ci_low, res.ci_high, res.p_value) == (again.ci_low, again.ci_high, again.p_value)


def test_a_flat_agent_counts_as_sharpe_zero():
    bench = _noise(100, 9)
    res = pooled_sharpe_difference([Window("w", np.zeros((1, 100)), bench, 52)], n_boot=200)
    assert res.diff == pytest.approx(-_sharpe(bench, 52))
    assert sharpe_rows(np.zeros(5), 252) == 0.0


@pytest.mark.parametrize(
    ("agent", "bench", "match"),
    [
        (np.zeros((1, 30)), np.zeros(29), "same bars"),
        (np.zeros((1, 10)), np.zeros(10), "at least 20"),
        (np.zeros(30), np.zeros(30), "seeds, bars"),
        (np.full((1, 30), np.nan), np.zeros(30), "NaN"),
    ],
)
def test_bad_windows_are_rejected_with_their_key(agent, bench, match):
    with pytest.raises(BacktestError, match=match) as info:
        Window("exp/market/fold 3", agent, bench, 252)
    assert "exp/market/fold 3" in str(info.value)


def test_pooling_needs_windows_and_sane_settings():
    with pytest.raises(BacktestError, match="at least one window"):
        pooled_sharpe_difference([])
    w = Window("w", _noise(50, 1)[None, :], _noise(50, 2), 252)
    with pytest.raises(BacktestError, match="n_boot = 10"):
        pooled_sharpe_difference([w], n_boot=10)


def test_best_of_picks_the_baseline_with_the_higher_sharpe_on_each_fold():
    index = pd.date_range("2020-01-01", periods=60, freq="D", tz="UTC")
    good, poor = _noise(60, 1) + 0.002, _noise(60, 2)
    fold = FoldData(
        "exp", "mkt", 0, index, good[None, :],
        {"buy_and_hold": poor, "equal_weight": good, "momentum": good + 0.01}, 252, (0,),
    )  # fmt: skip
    assert fold.best_of(["buy_and_hold", "equal_weight"]) == "equal_weight"
    np.testing.assert_array_equal(fold.benchmark("best_of", ["buy_and_hold", "equal_weight"]), good)
    assert fold.window("best_of", ["buy_and_hold", "equal_weight"]).difference() == 0.0
    with pytest.raises(BacktestError, match="min_variance"):
        fold.benchmark("min_variance", ["buy_and_hold"])
    with pytest.raises(BacktestError, match="none of the best_of"):
        fold.best_of(["min_variance"])
