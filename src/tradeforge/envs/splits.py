"""Train / validation / test splits by time, with an embargo gap between consecutive parts.

Each part is a half-open integer range ``[start, end)`` of bar positions, in time order and never
overlapping; ``embargo`` bars are dropped after the train part and after the validation part so
that labels or rewards near a boundary cannot leak into the next part. The layout is the
walk-forward fold's (:func:`tradeforge.data.folds.cut_fold`), so a split and a fold never disagree. Pass the ranges to
``TradingEnv(..., start=split.start, end=split.end)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

import numpy as np
import pandas as pd

from tradeforge.core.errors import SimulationError
from tradeforge.data.folds import cut_fold

Boundary = float | str | date | datetime | pd.Timestamp | None


@dataclass(frozen=True)
class Split:
    """One part of the data: bars ``start`` (inclusive) to ``end`` (exclusive)."""

    name: str
    start: int
    end: int
    first: pd.Timestamp
    last: pd.Timestamp

    @property
    def n_bars(self) -> int:
        return self.end - self.start

    @property
    def slice(self) -> slice:
        return slice(self.start, self.end)


@dataclass(frozen=True)
class Splits:
    """The train, validation and test parts (validation may be None when ``val`` is 0)."""

    train: Split
    val: Split | None
    test: Split | None
    embargo: int

    def as_dict(self) -> dict[str, tuple[int, int]]:
        parts = {"train": self.train, "val": self.val, "test": self.test}
        return {k: (v.start, v.end) for k, v in parts.items() if v is not None}


def _is_fraction(value: Boundary) -> bool:
    return isinstance(value, float | int) and not isinstance(value, bool)


def _date_end(index: pd.DatetimeIndex, value: Boundary, name: str) -> int:
    """Exclusive end position for a part that runs up to and including the date ``value``."""
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SimulationError(
            f"time_splits {name} = {value!r}; expected a fraction in (0, 1] or a date"
        ) from None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(np.searchsorted(index.values, ts.to_datetime64(), side="right"))


def time_splits(
    index: pd.DatetimeIndex,
    train: Boundary = 0.7,
    val: Boundary = 0.15,
    test: Boundary = 0.15,
    embargo: int = 0,
) -> Splits:
    """Split ``index`` by time into train, validation and test ranges.

    Either all fractions (of the number of bars; they may sum to less than 1, the rest is unused)
    or all dates (each part ends at and includes its date; ``test=None`` runs to the end; ``val``
    may be None for no validation part). ``embargo`` bars are skipped before the validation and
    the test part.
    """
    n = len(index)
    if embargo < 0:
        raise SimulationError(f"time_splits embargo = {embargo}; expected an integer >= 0")
    if n == 0:
        raise SimulationError("time_splits index is empty; expected at least one timestamp")
    given = [b for b in (train, val, test) if b is not None]
    if all(_is_fraction(b) for b in given):
        fr = {
            k: float(cast(float, v)) if v is not None else 0.0
            for k, v in (("train", train), ("val", val), ("test", test))
        }
        for k, v in fr.items():
            if not 0.0 <= v <= 1.0:
                raise SimulationError(f"time_splits {k} = {v}; expected a fraction in [0, 1]")
        if fr["train"] <= 0.0:
            raise SimulationError(f"time_splits train = {fr['train']}; expected a fraction > 0")
        if sum(fr.values()) > 1.0 + 1e-9:
            raise SimulationError(
                f"time_splits fractions train + val + test sum to {sum(fr.values()):.4f}; expected <= 1"
            )
        train_end = round(fr["train"] * n)
        val_end = train_end + round(fr["val"] * n)
        test_end = min(n, val_end + round(fr["test"] * n))
    elif any(_is_fraction(b) for b in given):
        raise SimulationError(
            f"time_splits got train={train!r}, val={val!r}, test={test!r}; expected all fractions "
            "or all dates, not a mix"
        )
    else:
        if train is None:
            raise SimulationError("time_splits train = None; expected the last date of training")
        train_end = _date_end(index, train, "train")
        val_end = _date_end(index, val, "val") if val is not None else train_end
        test_end = _date_end(index, test, "test") if test is not None else n
        if not train_end <= val_end <= test_end:
            raise SimulationError(
                f"time_splits dates train={train!r}, val={val!r}, test={test!r} are not in "
                "increasing order"
            )

    if train_end <= 0:
        raise SimulationError(f"time_splits train = {train!r} leaves no training bars")
    val_bars = val_end - train_end - embargo
    if val_end > train_end and val_bars <= 0:
        raise SimulationError(
            f"time_splits embargo = {embargo} bars swallows a whole part of "
            f"{val_end - train_end} bars; expected a smaller embargo or a larger part"
        )
    test_start = val_end + embargo if val_end > train_end else train_end + embargo
    if test is not None and test_end > val_end and test_start >= test_end:
        raise SimulationError(
            f"time_splits embargo = {embargo} bars swallows a whole part of "
            f"{test_end - val_end} bars; expected a smaller embargo or a larger part"
        )
    fold = cut_fold(
        0, range(0, train_end), max(val_bars, 0), max(test_end - test_start, 0), embargo
    )

    def part(name: str, rng: range) -> Split | None:
        if len(rng) == 0:
            return None
        return Split(name, rng.start, rng.stop, index[rng.start], index[rng.stop - 1])

    train_part = Split("train", 0, train_end, index[0], index[train_end - 1])
    val_part = part("val", fold.val)
    test_part = part("test", fold.test)
    return Splits(train=train_part, val=val_part, test=test_part, embargo=embargo)


__all__ = ["Split", "Splits", "time_splits"]
