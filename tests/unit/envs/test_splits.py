from __future__ import annotations

import pandas as pd
import pytest

from tradeforge.core.errors import SimulationError
from tradeforge.envs import time_splits

INDEX = pd.date_range("2020-01-01", periods=1000, freq="D", tz="UTC")


def test_fraction_splits_with_embargo():
    s = time_splits(INDEX, 0.6, 0.2, 0.2, embargo=10)
    assert s.as_dict() == {"train": (0, 600), "val": (610, 800), "test": (810, 1000)}
    assert s.train.last < s.val.first
    assert s.val.last < s.test.first
    assert (s.val.first - s.train.last).days == 11
    assert s.test.n_bars == 190


def test_date_splits_include_their_end_date():
    s = time_splits(INDEX, "2021-06-30", "2021-12-31", None, embargo=5)
    assert s.train.last == pd.Timestamp("2021-06-30", tz="UTC")
    assert s.val.first == pd.Timestamp("2021-07-06", tz="UTC")
    assert s.val.last == pd.Timestamp("2021-12-31", tz="UTC")
    assert s.test.last == INDEX[-1]


def test_no_validation_part():
    s = time_splits(INDEX, 0.8, 0.0, 0.2, embargo=3)
    assert s.val is None
    assert s.as_dict() == {"train": (0, 800), "test": (803, 1000)}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train": 0.8, "val": 0.2, "test": 0.2}, "sum"),
        ({"train": 0.0}, "train"),
        ({"embargo": -1}, "embargo"),
        ({"train": 0.7, "val": "2021-01-01"}, "not a mix"),
        ({"train": 0.7, "val": 0.005, "test": 0.1, "embargo": 20}, "embargo = 20"),
        ({"train": "2022-01-01", "val": "2021-01-01", "test": None}, "increasing"),
    ],
)
def test_bad_splits(kwargs, match):
    with pytest.raises(SimulationError, match=match):
        time_splits(INDEX, **kwargs)


def test_a_time_split_is_the_walk_forward_fold_with_the_same_lengths() -> None:
    from tradeforge.data.folds import cut_fold

    index = pd.date_range("2015-01-01", periods=500, freq="D", tz="UTC")
    split = time_splits(index, train=0.6, val=0.2, test=0.2, embargo=5)
    fold = cut_fold(0, range(0, 300), 100 - 5, 100 - 5, 5)
    assert (split.train.start, split.train.end) == (fold.train.start, fold.train.stop)
    assert split.val is not None
    assert split.test is not None
    assert (split.val.start, split.val.end) == (fold.val.start, fold.val.stop)
    assert (split.test.start, split.test.end) == (fold.test.start, fold.test.stop)
