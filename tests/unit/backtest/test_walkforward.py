"""Walk-forward folds, purged k-fold, stitching and the fold orchestrator (real SP500 data)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tradeforge.backtest import (
    BacktestResult,
    Fold,
    WalkForwardConfig,
    baseline_weights,
    compute_metrics,
    fold_test_window,
    make_folds,
    purged_kfold,
    run_backtest,
    run_walk_forward,
    stitch,
)
from tradeforge.backtest.walkforward import bars_per_year
from tradeforge.core.errors import BacktestError
from tradeforge.sim import CostConfig, SimConfig


def _check_walk_forward_invariants(folds: list[Fold], embargo: int, n: int) -> None:
    for f in folds:
        assert len(f.train) > 0
        assert len(f.test) > 0
        assert f.test.stop <= n
        # train precedes val and test, separated by at least the embargo
        assert f.test.start - f.train.stop >= embargo
        if len(f.val):
            assert f.val.start - f.train.stop >= embargo
            assert f.test.start - f.val.stop >= embargo
    for a, b in itertools.pairwise(folds):
        assert a.test.stop <= b.test.start  # test ranges never overlap, in time order
        assert not set(a.test) & set(b.test)


@pytest.mark.parametrize("mode", ["rolling", "expanding"])
@pytest.mark.parametrize("val", [0, 250])
def test_folds_on_real_index_respect_embargo_and_never_overlap(
    sp500_panel: Any, mode: str, val: int
) -> None:
    index = sp500_panel.index
    cfg = WalkForwardConfig(mode=mode, train=1500, val=val, test=500, embargo=10)  # type: ignore[arg-type]
    folds = make_folds(index, cfg)
    _check_walk_forward_invariants(folds, 10, len(index))
    first = folds[0]
    assert first.train == range(0, 1500)
    assert first.test.start == 1500 + 10 + (val + 10 if val else 0)
    assert [f.number for f in folds] == list(range(len(folds)))
    # step defaults to test: consecutive test blocks are adjacent
    assert all(b.test.start - a.test.start == 500 for a, b in itertools.pairwise(folds))
    if mode == "expanding":
        assert all(f.train.start == 0 for f in folds)
        assert len(folds[-1].train) > len(folds[0].train)
    else:
        assert all(len(f.train) == 1500 for f in folds)
    # the last fold fits; one more would not
    assert folds[-1].test.stop <= len(index) < folds[-1].test.stop + 500


def test_years_unit_converts_with_bars_per_year(sp500_panel: Any) -> None:
    index = sp500_panel.index
    per_year = bars_per_year(index)
    assert 250 < per_year < 254  # NYSE trading days
    folds = make_folds(index, WalkForwardConfig(unit="years", train=5, test=1, embargo=5))
    assert len(folds[0].train) == round(5 * per_year)
    assert len(folds[0].test) == round(per_year)
    assert folds[0].times(index)["test_start"].year == 2004
    _check_walk_forward_invariants(folds, 5, len(index))


def test_n_folds_keeps_the_most_recent_and_renumbers() -> None:
    all_folds = make_folds(1000, WalkForwardConfig(train=300, test=100))
    last = make_folds(1000, WalkForwardConfig(train=300, test=100, n_folds=2))
    assert len(all_folds) == 7
    assert [f.test for f in last] == [f.test for f in all_folds[-2:]]
    assert [f.number for f in last] == [0, 1]


def test_step_longer_than_test_leaves_gaps_but_no_overlap() -> None:
    folds = make_folds(1000, WalkForwardConfig(train=200, test=100, step=150))
    assert [f.test.start for f in folds] == [200, 350, 500, 650, 800]
    _check_walk_forward_invariants(folds, 0, 1000)


def test_bad_configs_raise_clear_errors() -> None:
    with pytest.raises(ValidationError, match="test ranges would overlap"):
        WalkForwardConfig(train=100, test=50, step=20)
    with pytest.raises(ValidationError, match="needs train and test"):
        WalkForwardConfig(train=100)
    with pytest.raises(ValidationError):
        WalkForwardConfig(train=100, test=50, embargo=-1)
    with pytest.raises(BacktestError, match="expected at least 315 bars"):
        make_folds(300, WalkForwardConfig(train=200, test=100, embargo=15, val=0))
    with pytest.raises(BacktestError, match="DatetimeIndex"):
        make_folds(300, WalkForwardConfig(unit="years", train=1, test=1))


def test_purged_kfold_purges_before_and_embargoes_after(sp500_panel: Any) -> None:
    n = sp500_panel.n_bars
    folds = purged_kfold(sp500_panel.index, n_splits=5, embargo=7, purge=3)
    tests = np.concatenate([np.arange(f.test.start, f.test.stop) for f in folds])
    np.testing.assert_array_equal(tests, np.arange(n))  # test blocks tile the index in order
    for f in folds:
        train = f.train_bars
        assert not np.isin(train, np.arange(f.test.start - 3, f.test.stop + 7)).any()
        assert len(train) == n - len(range(max(f.test.start - 3, 0), min(f.test.stop + 7, n)))
        assert len(f.val) == 0
        if len(f.train):
            assert f.test.start - f.train.stop >= 3
        if len(f.train_after):
            assert f.train_after.start - f.test.stop >= 7
    assert folds[0].train_segments == (folds[0].train_after,)
    assert len(folds[2].train_segments) == 2
    # the config route gives the same folds
    via_config = make_folds(
        sp500_panel.index, WalkForwardConfig(mode="purged_kfold", n_splits=5, embargo=7, purge=3)
    )
    assert via_config == folds
    with pytest.raises(BacktestError, match="n_splits"):
        purged_kfold(10, n_splits=1)


def test_stitch_concatenates_and_rejects_overlaps() -> None:
    idx = pd.date_range("2020-01-01", periods=10, freq="D", tz="UTC")
    a = pd.Series(np.arange(5.0) / 100, index=idx[:5])
    b = pd.Series(np.arange(5.0, 10.0) / 100, index=idx[5:])
    out = stitch([a, pd.Series(dtype=float), b])
    pd.testing.assert_series_equal(out, pd.concat([a, b]).rename("returns"))
    assert stitch([]).empty
    with pytest.raises(BacktestError, match="overlap"):
        stitch([a, a.iloc[3:]])
    with pytest.raises(BacktestError, match="overlap"):
        stitch([b, a])


def test_walk_forward_with_engine_stitches_contiguous_oos_returns(sp500_panel: Any) -> None:
    """Each fold 'trains' a moving-average window length on its training bars (the artifact),
    backtests it over its test window; stitched returns tile the out-of-sample period."""
    panel = sp500_panel
    cfg = SimConfig(costs=CostConfig(commission_bps=2.0, half_spread_bps=1.0))
    folds = make_folds(panel.index, WalkForwardConfig(train=1000, test=750, embargo=5))
    seen: list[tuple[int, Any]] = []
    done: list[int] = []

    def fit(fold: Fold, previous: Any) -> dict[str, int]:
        seen.append((fold.number, previous))
        close = panel.close[fold.train.start : fold.train.stop, 0]
        slow = 50 if close[-1] > close[0] else 100  # a toy "fit" on training data only
        return {"fold": fold.number, "slow": slow}

    def test(fold: Fold, artifact: dict[str, int]) -> BacktestResult:
        w = baseline_weights("ma_crossover", panel, fold.test.start, slow=artifact["slow"])
        start, end = fold_test_window(fold, panel.n_bars)
        return run_backtest(panel, w, cfg, start, end)

    result = run_walk_forward(
        folds, fit, test, warm_start=True, progress=lambda i, n, f: done.append(i)
    )
    assert done == list(range(1, len(folds) + 1))
    # warm start hands each fit the previous fold's artifact
    assert seen[0] == (0, None)
    for k in range(1, len(folds)):
        assert seen[k][1] is result.folds[k - 1].artifact
    # stitched = concatenation of fold returns; contiguous, no duplicates
    expected = pd.concat([fr.returns for fr in result.folds])
    np.testing.assert_array_equal(result.returns.to_numpy(), expected.to_numpy())
    assert not result.returns.index.has_duplicates
    first, last = folds[0].test.start, folds[-1].test.stop
    pd.testing.assert_index_equal(
        result.returns.index, panel.index[first + 1 : min(last + 1, panel.n_bars)]
    )
    for fr in result.folds:
        assert fr.returns.index[0] == panel.index[fr.fold.test.start + 1]
        assert fr.metrics["sharpe"] == pytest.approx(compute_metrics(fr.returns)["sharpe"])
    table = result.fold_table(panel.index)
    assert list(table["fold"]) == list(range(len(folds)))
    assert table["test_bars"].tolist() == [750] * len(folds)
    assert table.loc[0, "test_start"] == panel.index[folds[0].test.start]
    np.testing.assert_allclose(
        table["total_return"], [fr.metrics["total_return"] for fr in result.folds]
    )
    eq = result.equity()
    assert eq.iloc[-1] == pytest.approx(float(np.prod(1 + result.returns)))
    weights = result.stitched_frame("weights")
    assert weights is not None
    assert not weights.index.has_duplicates
    assert weights.index[0] == panel.index[first]


def test_without_warm_start_fit_gets_none_and_bad_outputs_raise() -> None:
    folds = make_folds(400, WalkForwardConfig(train=100, test=100))
    idx = pd.date_range("2020-01-01", periods=400, freq="D", tz="UTC")
    previous: list[Any] = []

    def fit(fold: Fold, prev: Any) -> int:
        previous.append(prev)
        return fold.number

    def test(fold: Fold, art: int) -> pd.Series:
        return pd.Series(0.001, index=idx[fold.test.start : fold.test.stop])

    result = run_walk_forward(folds, fit, test)
    assert previous == [None, None, None]
    assert len(result.returns) == 300
    with pytest.raises(BacktestError, match=r"expected a pd\.Series of returns"):
        run_walk_forward(folds, fit, lambda f, a: 1.0)
    with pytest.raises(BacktestError, match="overlap"):
        run_walk_forward(folds, fit, lambda f, a: pd.Series(0.0, index=idx[:10]))


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(50, 3000),
    train=st.integers(5, 800),
    val=st.integers(0, 100),
    test=st.integers(1, 400),
    extra_step=st.integers(0, 50),
    embargo=st.integers(0, 30),
    mode=st.sampled_from(["rolling", "expanding"]),
)
def test_fold_invariants_hold_for_any_config(
    n: int, train: int, val: int, test: int, extra_step: int, embargo: int, mode: str
) -> None:
    cfg = WalkForwardConfig(
        mode=mode,  # type: ignore[arg-type]
        train=train,
        val=val,
        test=test,
        step=test + extra_step,
        embargo=embargo,
    )
    try:
        folds = make_folds(n, cfg)
    except BacktestError:
        gaps = 2 if val else 1
        assert train + val + test + gaps * embargo > n  # only when not even one fold fits
        return
    _check_walk_forward_invariants(folds, embargo, n)
    assert all(len(f.test) == test and len(f.val) == val for f in folds)
