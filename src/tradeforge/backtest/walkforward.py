"""Walk-forward orchestration: run a fit and a test per fold and stitch the out-of-sample returns.

The folds themselves (``Fold``, ``WalkForwardConfig``, ``make_folds``, ``purged_kfold``) live in
:mod:`tradeforge.data.folds` and are re-exported here. :func:`run_walk_forward` is the one fold
loop: ``tradeforge.experiment.run_experiment`` runs its folds through it.

Backtesting a fold: run the engine over :func:`fold_test_window` (``fold.test`` plus the next bar,
on which the last test decision fills), so that the stitched returns of consecutive folds are
contiguous with no duplicate timestamps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.backtest.metrics import compute_metrics, equity_curve
from tradeforge.core.errors import BacktestError
from tradeforge.data.folds import (
    Fold,
    WalkForwardConfig,
    bars_per_year,
    cut_fold,
    make_folds,
    purged_kfold,
)


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
    "cut_fold",
    "fold_test_window",
    "make_folds",
    "purged_kfold",
    "run_walk_forward",
    "stitch",
]
