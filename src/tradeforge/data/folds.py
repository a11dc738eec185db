"""Time folds over a bar index: walk-forward (rolling or expanding) and purged k-fold.

Folds are integer bar ranges on one time index. Within a walk-forward fold ``train < val < test``
with ``embargo`` bars left out between consecutive parts, so that labels or features that look a
few bars ahead cannot leak across a boundary. Test ranges of different folds never overlap.
:func:`cut_fold` is the one place that lays out a fold's parts; :func:`make_folds` repeats it
along the index and ``tradeforge.envs.splits.time_splits`` uses it for a single split.

Purged k-fold (``mode="purged_kfold"``, Lopez de Prado 2018, ch. 7) cuts the index into
``n_splits`` contiguous test blocks; training uses the bars before the block (less ``purge`` bars
whose labels could reach into it) and the bars after it (less ``embargo`` bars), so its folds have
a second training range ``train_after``. It suits model selection on stationary data; for an honest
out-of-sample track record use the rolling or expanding walk-forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import BacktestError
from tradeforge.core.types import IntArray


class WalkForwardConfig(FrozenConfig):
    """How to cut an index into folds.

    ``train``, ``val``, ``test`` and ``step`` are lengths in ``unit`` (bars, or years converted to
    bars with the index's average bars per year). ``step`` defaults to ``test`` and must be at least
    ``test`` so test ranges never overlap. ``mode="rolling"`` moves the training window with the
    fold; ``"expanding"`` keeps it anchored at bar 0. ``n_folds`` keeps only the most recent folds.
    ``embargo`` (bars) separates train from val and val from test.

    ``mode="purged_kfold"`` ignores ``train``/``val``/``test``/``step`` and makes ``n_splits``
    contiguous test blocks, training on every other bar except ``purge`` bars before each block and
    ``embargo`` bars after it. ``warm_start`` asks the orchestrator to hand each fold's fit the
    previous fold's artifact.
    """

    mode: Literal["rolling", "expanding", "purged_kfold"] = "rolling"
    unit: Literal["bars", "years"] = "bars"
    train: float | None = Field(default=None, gt=0)
    val: float = Field(default=0, ge=0)
    test: float | None = Field(default=None, gt=0)
    step: float | None = Field(default=None, gt=0)
    embargo: int = Field(default=0, ge=0)
    purge: int = Field(default=0, ge=0)
    n_splits: int = Field(default=5, ge=2)
    n_folds: int | None = Field(default=None, ge=1)
    warm_start: bool = False

    @model_validator(mode="after")
    def _check_lengths(self) -> WalkForwardConfig:
        if self.mode == "purged_kfold":
            return self
        if self.train is None or self.test is None:
            raise ValueError(
                f"mode = {self.mode!r} needs train and test lengths, got train = {self.train}, "
                f"test = {self.test}"
            )
        if self.step is not None and self.step < self.test:
            raise ValueError(
                f"step = {self.step} is shorter than test = {self.test}; test ranges would overlap"
            )
        return self


@dataclass(frozen=True)
class Fold:
    """One fold: half-open integer bar ranges on the index it was made from.

    ``train_after`` is empty except in purged k-fold, where it holds the training bars after the
    test block (and its embargo).
    """

    number: int
    train: range
    val: range
    test: range
    train_after: range = range(0)

    @property
    def train_end(self) -> int:
        """First bar after the (first) training window (exclusive end)."""
        return self.train.stop

    @property
    def train_segments(self) -> tuple[range, ...]:
        """The non-empty contiguous training ranges, in time order."""
        return tuple(r for r in (self.train, self.train_after) if len(r))

    @property
    def train_bars(self) -> IntArray:
        """Every training bar as one sorted integer array."""
        parts = [np.arange(r.start, r.stop, dtype=np.int64) for r in self.train_segments]
        out: IntArray = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return out

    def times(self, index: pd.DatetimeIndex) -> dict[str, Any]:
        """First/last timestamps of each part (None for an empty part)."""
        out: dict[str, Any] = {}
        for part in ("train", "val", "test", "train_after"):
            rng: range = getattr(self, part)
            out[f"{part}_start"] = index[rng.start] if len(rng) else None
            out[f"{part}_end"] = index[rng.stop - 1] if len(rng) else None
        return out


def bars_per_year(index: pd.DatetimeIndex) -> float:
    """Average number of bars per 365.25-day year spanned by ``index``."""
    if len(index) < 2:
        raise BacktestError("index has fewer than 2 bars; cannot estimate bars per year")
    days = (index[-1] - index[0]).total_seconds() / 86400.0
    return (len(index) - 1) / (days / 365.25)


def _to_bars(value: float, per_year: float | None, field: str) -> int:
    bars = value if per_year is None else value * per_year
    out = round(bars)
    if value > 0 and out < 1:
        raise BacktestError(f"walk-forward {field} = {value} is less than one bar")
    return out


def cut_fold(number: int, train: range, val: int, test: int, embargo: int = 0) -> Fold:
    """Lay out one fold after its training range: ``embargo`` bars, ``val`` validation bars,
    ``embargo`` bars again (only when there is a validation part), then ``test`` bars."""
    if val < 0 or test < 0 or embargo < 0:
        raise BacktestError(
            f"cut_fold val = {val}, test = {test}, embargo = {embargo}; expected lengths >= 0"
        )
    v0 = train.stop + embargo
    v1 = v0 + val
    s0 = v1 + embargo if val > 0 else v0
    return Fold(number, train, range(v0, v1), range(s0, s0 + test))


def make_folds(index: pd.DatetimeIndex | int, config: WalkForwardConfig) -> list[Fold]:
    """Folds over ``index`` (or a bar count) per ``config``. Raises if not even one fold fits."""
    n = index if isinstance(index, int) else len(index)
    if config.mode == "purged_kfold":
        return purged_kfold(n, config.n_splits, embargo=config.embargo, purge=config.purge)
    if (
        config.train is None or config.test is None
    ):  # guarded by the validator; for the type checker
        raise BacktestError(f"mode = {config.mode!r} needs train and test lengths")
    per_year = None
    if config.unit == "years":
        if isinstance(index, int):
            raise BacktestError("unit = 'years' needs a DatetimeIndex, got a bar count")
        per_year = bars_per_year(index)
    train = _to_bars(config.train, per_year, "train")
    val = _to_bars(config.val, per_year, "val")
    test = _to_bars(config.test, per_year, "test")
    step = _to_bars(config.step if config.step is not None else config.test, per_year, "step")
    step = max(step, test)
    gap = config.embargo
    folds: list[Fold] = []
    k = 0
    while True:
        t0 = 0 if config.mode == "expanding" else k * step
        fold = cut_fold(k, range(t0, train + k * step), val, test, gap)
        if fold.test.stop > n:
            break
        folds.append(fold)
        k += 1
    if not folds:
        need = train + val + test + (2 if val > 0 else 1) * gap
        raise BacktestError(
            f"walk-forward: {n} bars cannot hold one fold of train={train}, val={val}, "
            f"test={test} bars with embargo={gap}; expected at least {need} bars"
        )
    if config.n_folds is not None:
        folds = folds[-config.n_folds :]
        folds = [Fold(i, f.train, f.val, f.test) for i, f in enumerate(folds)]
    return folds


def purged_kfold(
    index: pd.DatetimeIndex | int, n_splits: int = 5, embargo: int = 0, purge: int = 0
) -> list[Fold]:
    """K contiguous test blocks; training uses every other bar except the ``purge`` bars just before
    each test block (whose labels may reach into it) and the ``embargo`` bars just after it.

    Fold ``k`` has ``train`` = bars before the block (less ``purge``), ``val`` empty, ``test`` =
    the block, ``train_after`` = bars after the block (less ``embargo``).
    """
    n = index if isinstance(index, int) else len(index)
    if n_splits < 2 or n_splits > n:
        raise BacktestError(f"purged_kfold n_splits = {n_splits}; expected 2 <= n_splits <= {n}")
    if embargo < 0 or purge < 0:
        raise BacktestError(f"purged_kfold embargo = {embargo}, purge = {purge}; expected >= 0")
    edges = np.linspace(0, n, n_splits + 1).astype(int)
    out: list[Fold] = []
    for k in range(n_splits):
        a, b = int(edges[k]), int(edges[k + 1])
        before = range(0, max(a - purge, 0))
        after = range(min(b + embargo, n), n)
        out.append(Fold(k, before, range(a, a), range(a, b), after))
    return out


__all__ = [
    "Fold",
    "WalkForwardConfig",
    "bars_per_year",
    "cut_fold",
    "make_folds",
    "purged_kfold",
]
