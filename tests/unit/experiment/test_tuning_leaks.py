"""A one-fold sweep names the folds whose test windows its validation window comes after."""

from __future__ import annotations

import pandas as pd

from tradeforge.data.folds import WalkForwardConfig, make_folds
from tradeforge.experiment.tuning import tuning_leaks


def _folds():
    index = pd.date_range("2010-01-01", periods=1000, freq="D", tz="UTC")
    cfg = WalkForwardConfig(train=400, val=100, test=100, unit="bars")
    return index, make_folds(index, cfg)


def test_tuning_on_the_last_fold_warns_about_every_earlier_fold() -> None:
    index, folds = _folds()
    assert len(folds) == 5
    warnings = tuning_leaks(folds, folds[-1], index)
    assert len(warnings) == len(folds) - 1
    assert "fold 0's test window" in warnings[0]
    assert "nested: true" in warnings[0]


def test_tuning_on_the_first_fold_warns_about_none() -> None:
    index, folds = _folds()
    assert tuning_leaks(folds, folds[0], index) == []


def test_a_middle_fold_warns_only_about_folds_tested_before_its_validation_ends() -> None:
    index, folds = _folds()
    warned = tuning_leaks(folds, folds[2], index)
    end = folds[2].val.stop
    expected = [f.number for f in folds if f.number != 2 and f.test.start < end]
    assert expected == [0, 1]
    assert len(warned) == 2
