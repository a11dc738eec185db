"""Target weights from a user's CSV file (``tradeforge backtest --weights weights.csv``).

Format: one row per decision date, a first column of dates (named ``date``, ``timestamp`` or
anything, it is the first column) and one column per symbol, values = target weight decided at
that bar's close::

    date,AAPL,IBM,MSFT
    2010-01-04,0.3,0.3,0.3
    2010-02-01,0.5,0.0,0.5

Rules:

* A symbol column that is not in the panel: error (names the column).
* A date that is not a bar of the panel: error (names the file line and the date). Dates match
  the panel's timestamps exactly, or by calendar day when the panel has one bar per day.
  Duplicate dates: error.
* Panel bars without a row in the file hold their positions (NaN rows): a file may list only
  its rebalancing dates. Panel symbols without a column get weight 0 on the listed dates
  (``missing_symbols="error"`` makes that an error instead).
* An empty / NaN cell: error (``nan="error"``, the default) or hold that asset (``nan="hold"``).
* Weights breaking the ``SimConfig`` limits (negative when ``allow_short`` is False, above
  ``max_position`` in absolute value, row gross above ``max_leverage``): error
  (``on_limit="error"``, the default) or clipped the way ``sim.step`` clips them
  (``on_limit="clip"``), with every clipped cell counted in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import BacktestError
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import BarPanel
from tradeforge.sim import SimConfig

_TOL = 1e-9


class WeightsFileConfig(FrozenConfig):
    """How strictly a weights file is read (see the module docstring)."""

    on_limit: Literal["error", "clip"] = "error"
    nan: Literal["error", "hold"] = "error"
    missing_symbols: Literal["zero", "error"] = "zero"


@dataclass(frozen=True)
class WeightsFileReport:
    """What the loader changed or assumed, in readable lines (empty when nothing)."""

    n_rows: int
    clipped_cells: int = 0
    held_nan_cells: int = 0
    missing_symbols: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise BacktestError(f"weights file {str(path)!r} does not exist; expected a CSV file")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BacktestError(f"weights file {path}: cannot be read as CSV: {exc}") from None
    if table.shape[1] < 2:
        raise BacktestError(
            f"weights file {path}: has {table.shape[1]} column(s); expected a date column and "
            "one column per symbol"
        )
    return table


def _rows_for_dates(path: Path, dates: pd.Series, panel: BarPanel) -> np.ndarray:
    try:
        stamps = pd.to_datetime(dates, utc=True, format="mixed")
    except (ValueError, TypeError):
        for i, raw in enumerate(dates):
            try:
                pd.to_datetime(raw, utc=True)
            except (ValueError, TypeError):
                raise BacktestError(
                    f"weights file {path}: line {i + 2}, column {dates.name!r}: {raw!r} is not a "
                    "date; expected e.g. 2010-01-04"
                ) from None
        raise
    rows = panel.index.get_indexer(pd.DatetimeIndex(stamps))
    days = panel.index.normalize()
    if (rows < 0).any() and not days.has_duplicates:
        by_day = days.get_indexer(pd.DatetimeIndex(stamps).normalize())
        rows = np.where(rows < 0, by_day, rows)
    for i, row in enumerate(rows):
        if row < 0:
            raise BacktestError(
                f"weights file {path}: line {i + 2}, column {dates.name!r}: date {dates.iloc[i]!r} "
                f"is not a bar of the data ({panel.index[0].date()} .. {panel.index[-1].date()})"
            )
    seen: dict[int, int] = {}
    for i, row in enumerate(rows):
        if int(row) in seen:
            raise BacktestError(
                f"weights file {path}: line {i + 2}: date {dates.iloc[i]!r} repeats line "
                f"{seen[int(row)] + 2}; expected one row per date"
            )
        seen[int(row)] = i
    return np.asarray(rows, dtype=np.int64)


def _apply_limits(
    path: Path,
    values: FloatArray,
    dates: pd.Series,
    columns: list[str],
    config: SimConfig,
    options: WeightsFileConfig,
) -> tuple[FloatArray, int]:
    lower = -config.max_position if config.allow_short else 0.0
    with np.errstate(invalid="ignore"):
        cell_bad = (values < lower - _TOL) | (values > config.max_position + _TOL)
        gross = np.nansum(np.abs(values), axis=1)
    row_bad = gross > config.max_leverage + _TOL
    if options.on_limit == "error" and (cell_bad.any() or row_bad.any()):
        first = int(np.argmax(cell_bad.any(axis=1) | row_bad))  # the earliest bad line
        if cell_bad[first].any():
            i, j = first, int(np.argmax(cell_bad[first]))
            raise BacktestError(
                f"weights file {path}: line {i + 2} ({dates.iloc[i]}), column {columns[j]!r}: "
                f"weight {values[i, j]} is outside [{lower}, {config.max_position}] allowed by "
                "allow_short/max_position; fix the file or clip (on_limit='clip')"
            )
        i = first
        raise BacktestError(
            f"weights file {path}: line {i + 2} ({dates.iloc[i]}): gross weight "
            f"{gross[i]:.6g} exceeds max_leverage {config.max_leverage}; fix the file or clip "
            "(on_limit='clip')"
        )
    if options.on_limit == "error":
        return values, 0
    clipped = np.clip(values, lower, config.max_position)
    with np.errstate(invalid="ignore", divide="ignore"):
        gross_c = np.nansum(np.abs(clipped), axis=1)
        scale = np.where(gross_c > config.max_leverage, config.max_leverage / gross_c, 1.0)
    out: FloatArray = clipped * scale[:, None]
    changed = (out != values) & ~np.isnan(values)
    return out, int(changed.sum())


def load_weights_csv_with_report(
    path: str | Path,
    panel: BarPanel,
    config: SimConfig | None = None,
    options: WeightsFileConfig | None = None,
) -> tuple[FloatArray, WeightsFileReport]:
    """Read a weights file into a (T, N) array aligned with ``panel`` plus a report."""
    file = Path(path)
    opts = options or WeightsFileConfig()
    sim = config or SimConfig()
    table = _read_table(file)
    dates = table.iloc[:, 0]
    columns = [str(c) for c in table.columns[1:]]
    for col in columns:
        if col not in panel.symbols:
            raise BacktestError(
                f"weights file {file}: column {col!r} is not a symbol of the data; "
                f"available: {', '.join(panel.symbols)}"
            )
    if len(set(columns)) != len(columns):
        raise BacktestError(f"weights file {file}: repeated symbol columns in {columns}")
    missing = tuple(s for s in panel.symbols if s not in columns)
    if missing and opts.missing_symbols == "error":
        raise BacktestError(
            f"weights file {file}: no column for symbols {list(missing)}; expected one column per "
            "symbol of the data (or missing_symbols='zero')"
        )
    rows = _rows_for_dates(file, dates, panel)
    body = table.iloc[:, 1:].apply(pd.to_numeric, errors="coerce")
    values = body.to_numpy(dtype=np.float64)
    raw = table.iloc[:, 1:].to_numpy(dtype=object)
    not_numeric = np.isnan(values) & pd.notna(raw)
    if not_numeric.any():
        i, j = (int(x) for x in np.argwhere(not_numeric)[0])
        raise BacktestError(
            f"weights file {file}: line {i + 2}, column {columns[j]!r}: {raw[i, j]!r} is not a "
            "number; expected a weight such as 0.25"
        )
    if np.isinf(values).any():
        i, j = (int(x) for x in np.argwhere(np.isinf(values))[0])
        raise BacktestError(
            f"weights file {file}: line {i + 2}, column {columns[j]!r}: {values[i, j]} is not a "
            "finite weight"
        )
    nan_cells = np.isnan(values)
    if nan_cells.any() and opts.nan == "error":
        i, j = (int(x) for x in np.argwhere(nan_cells)[0])
        raise BacktestError(
            f"weights file {file}: line {i + 2} ({dates.iloc[i]}), column {columns[j]!r}: empty "
            "or NaN weight; expected a number (or nan='hold' to hold that asset)"
        )
    values, n_clipped = _apply_limits(file, values, dates, columns, sim, opts)
    out = np.full((panel.n_bars, panel.n_symbols), np.nan)
    out[rows] = 0.0  # symbols without a column: weight 0 on the listed dates
    cols = np.array([panel.column(c) for c in columns], dtype=np.int64)
    out[np.ix_(rows, cols)] = values
    notes = []
    if n_clipped:
        notes.append(f"{n_clipped} weight(s) clipped to the position/leverage limits")
    if nan_cells.any():
        notes.append(f"{int(nan_cells.sum())} empty/NaN cell(s) held (no order)")
    if missing:
        notes.append(f"symbols without a column get weight 0: {', '.join(missing)}")
    report = WeightsFileReport(
        n_rows=len(rows),
        clipped_cells=n_clipped,
        held_nan_cells=int(nan_cells.sum()),
        missing_symbols=missing,
        notes=tuple(notes),
    )
    return out, report


def load_weights_csv(
    path: str | Path,
    panel: BarPanel,
    config: SimConfig | None = None,
    options: WeightsFileConfig | None = None,
) -> FloatArray:
    """A weights file as a (T, N) target-weight array for ``run_backtest`` (NaN rows = hold)."""
    weights, _ = load_weights_csv_with_report(path, panel, config, options)
    return weights


__all__ = [
    "WeightsFileConfig",
    "WeightsFileReport",
    "load_weights_csv",
    "load_weights_csv_with_report",
]
