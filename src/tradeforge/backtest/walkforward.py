"""Walk-forward splits, purged k-fold, stitching of out-of-sample results and a fold orchestrator.

Folds are integer bar ranges on one time index. Within a walk-forward fold ``train < val < test``
with ``embargo`` bars left out between consecutive parts, so that labels or features that look a
few bars ahead cannot leak across a boundary. Test ranges of different folds never overlap.

Purged k-fold (``mode="purged_kfold"``, Lopez de Prado 2018, ch. 7) cuts the index into
``n_splits`` contiguous test blocks; training uses the bars before the block (less ``purge`` bars
whose labels could reach into it) and the bars after it (less ``embargo`` bars), so its folds have
a second training range ``train_after``. It suits model selection on stationary data; for an honest
out-of-sample track record use the rolling or expanding walk-forward.

Backtesting a fold: run the engine over :func:`test_window` (``fold.test`` plus the next bar, on
which the last test decision fills), so that the stitched returns of consecutive folds are
contiguous with no duplicate timestamps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from tradeforge.backtest.metrics import compute_metrics, equity_curve
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
        t1 = train + k * step
        v0 = t1 + gap
        v1 = v0 + val
        s0 = v1 + gap if val > 0 else v0
        s1 = s0 + test
        if s1 > n:
            break
        folds.append(Fold(k, range(t0, t1), range(v0, v1), range(s0, s1)))
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


def fold_test_window(fold: Fold, n_bars: int) -> tuple[int, int]:
    """``(start, end)`` for :func:`tradeforge.backtest.engine.run_backtest` on the fold's test
    range: decisions at every test bar, the last one filling on the bar after the range (when the
    data has one). Consecutive folds' returns then tile the timeline without gaps or duplicates."""
    if fold.test.stop > n_bars:
        raise BacktestError(
            f"fold {fold.number} test range ends at bar {fold.test.stop}; the data has {n_bars}"
        )
    return fold.test.start, min(fold.test.stop + 1, n_bars)


def stitch(parts: Sequence[pd.Series]) -> pd.Series:
    """Concatenate per-fold out-of-sample returns into one series; timestamps must not overlap."""
    nonempty = [p for p in parts if len(p)]
    if not nonempty:
        return pd.Series(dtype=np.float64, name="returns")
    joined = pd.concat(nonempty)
    if not joined.index.is_monotonic_increasing or joined.index.has_duplicates:
        raise BacktestError(
            "stitch: fold results overlap or are out of order; expected strictly increasing "
            "timestamps across folds (non-overlapping test ranges in fold order)"
        )
    out: pd.Series = joined.rename("returns")
    return out


@dataclass(frozen=True)
class FoldResult:
    """What one fold produced: the fitted artifact, the test output and its returns and metrics."""

    fold: Fold
    artifact: Any
    output: Any
    returns: pd.Series
    metrics: dict[str, float]


@dataclass(frozen=True)
class WalkForwardResult:
    """Per-fold results and the stitched out-of-sample return series."""

    folds: list[FoldResult]
    returns: pd.Series

    def equity(self, start_value: float = 1.0) -> pd.Series:
        """The stitched returns compounded into one equity curve."""
        return equity_curve(self.returns, start_value).rename("equity")

    def stitched_frame(self, attribute: str = "weights") -> pd.DataFrame | None:
        """Concatenate a DataFrame attribute of every fold's output (e.g. a BacktestResult's
        ``weights``), keeping the earlier fold's row where two folds share a timestamp (a fold's
        last fill bar is the next fold's first decision bar). None when no output has it."""
        frames = [getattr(fr.output, attribute, None) for fr in self.folds]
        kept = [f for f in frames if isinstance(f, pd.DataFrame) and len(f)]
        if not kept:
            return None
        joined = pd.concat(kept)
        joined = joined[~joined.index.duplicated(keep="first")]
        out: pd.DataFrame = joined.sort_index()
        return out

    def fold_table(self, index: pd.DatetimeIndex | None = None) -> pd.DataFrame:
        """One row per fold: ranges (timestamps when ``index`` is given) and headline metrics."""
        rows = []
        for fr in self.folds:
            row: dict[str, Any] = {"fold": fr.fold.number}
            if index is not None:
                times = fr.fold.times(index)
                for key in ("train_start", "train_end", "test_start", "test_end"):
                    row[key] = times[key]
            row.update(
                train_bars=len(fr.fold.train) + len(fr.fold.train_after),
                test_bars=len(fr.fold.test),
                total_return=fr.metrics.get("total_return", math.nan),
                annual_return=fr.metrics.get("annual_return", math.nan),
                sharpe=fr.metrics.get("sharpe", math.nan),
                max_drawdown=fr.metrics.get("max_drawdown", math.nan),
            )
            rows.append(row)
        return pd.DataFrame(rows)


ProgressFn = Callable[[int, int, Fold], None]


def _returns_of(output: Any, fold: Fold) -> pd.Series:
    value = output if isinstance(output, pd.Series) else getattr(output, "returns", None)
    if not isinstance(value, pd.Series):
        raise BacktestError(
            f"test_fn for fold {fold.number} returned {type(output).__name__}; expected a "
            "pd.Series of returns or an object with a .returns Series"
        )
    return value


def run_walk_forward(
    folds: Sequence[Fold],
    fit_fn: Callable[[Fold, Any], Any],
    test_fn: Callable[[Fold, Any], Any],
    *,
    warm_start: bool = False,
    progress: ProgressFn | bool | None = None,
    periods_per_year: int = 252,
) -> WalkForwardResult:
    """Run ``fit_fn(fold, previous)`` then ``test_fn(fold, artifact)`` for each fold in order.

    ``previous`` is the artifact of the preceding fold when ``warm_start`` is true, else None.
    ``test_fn`` returns a returns Series or anything with a ``.returns`` Series (a BacktestResult).
    ``progress`` is a callable ``(done, total, fold)`` called after each fold, or True for a tqdm
    bar. Returns per-fold results and the stitched out-of-sample returns.
    """
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(folds), desc="walk-forward", unit="fold")
    results: list[FoldResult] = []
    previous: Any = None
    try:
        for i, fold in enumerate(folds):
            artifact = fit_fn(fold, previous if warm_start else None)
            output = test_fn(fold, artifact)
            rets = _returns_of(output, fold)
            metrics = compute_metrics(rets, periods_per_year=periods_per_year) if len(rets) else {}
            results.append(FoldResult(fold, artifact, output, rets, metrics))
            previous = artifact
            if bar is not None:
                bar.update(1)
            elif callable(progress):
                progress(i + 1, len(folds), fold)
    finally:
        if bar is not None:
            bar.close()
    return WalkForwardResult(results, stitch([r.returns for r in results]))


__all__ = [
    "Fold",
    "FoldResult",
    "WalkForwardConfig",
    "WalkForwardResult",
    "bars_per_year",
    "fold_test_window",
    "make_folds",
    "purged_kfold",
    "run_walk_forward",
    "stitch",
]
