"""Local dumps: CSV or Parquet, either one file per ticker (as in Kaggle stock datasets, the file
stem is the symbol) or one long file with a ticker column.

Column names are matched case-insensitively against common spellings (``Date``, ``Adj Close``,
``Ticker``...); ``DataConfig.columns`` maps any other name (user column -> our field). With an
``adj_close`` column and ``adjusted=True``, OHLC are scaled by adj_close / close and volume by
its inverse, so splits and dividends do not show up as price jumps.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.config import DataConfig
from tradeforge.data.frames import canonical_bars

_ALIASES: dict[str, str] = {
    "date": "timestamp",
    "datetime": "timestamp",
    "time": "timestamp",
    "timestamp": "timestamp",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "vol": "volume",
    "adj close": "adj_close",
    "adj_close": "adj_close",
    "adjclose": "adj_close",
    "adjusted close": "adj_close",
    "ticker": "symbol",
    "symbol": "symbol",
    "name": "symbol",
}
_SUFFIXES = {"csv": (".csv", ".csv.gz", ".txt"), "parquet": (".parquet", ".pq")}


class FileSource:
    """Bars from a directory of per-ticker files or from one long file."""

    def __init__(
        self,
        path: Path,
        kind: str = "csv",
        columns: dict[str, str] | None = None,
        date_format: str | None = None,
        symbol_column: str | None = None,
        timezone: str = "UTC",
        adjusted: bool = True,
    ) -> None:
        self.name = kind
        self.path = Path(path).expanduser()
        self.kind = kind
        self.columns = dict(columns or {})
        self.date_format = date_format
        self.symbol_column = symbol_column
        self.timezone = timezone
        self.adjusted = adjusted
        if not self.path.exists():
            raise SourceError(
                f"{kind} path {str(self.path)!r} does not exist; set DataConfig.path to a "
                f"directory of per-ticker {kind} files or to one long {kind} file"
            )

    @classmethod
    def from_config(cls, config: DataConfig) -> FileSource:
        return cls(
            Path(config.path or "."),
            kind=config.source,
            columns=config.columns,
            date_format=config.date_format,
            symbol_column=config.symbol_column,
            timezone=config.timezone,
            adjusted=config.adjusted,
        )

    def symbols(self) -> list[str]:
        """Symbols available in the dump."""
        if self.path.is_dir():
            return sorted({_stem(p) for p in self._files()})
        frame = self._mapped(self.path)
        if "symbol" not in frame.columns:
            return [_stem(self.path)]
        return sorted(frame["symbol"].astype(str).unique())

    def fetch_bars(
        self, symbol: str, frequency: str, start: date | None = None, end: date | None = None
    ) -> pd.DataFrame:
        if self.path.is_dir():
            matches = [p for p in self._files() if _stem(p).upper() == symbol.upper()]
            if not matches:
                raise UnknownSymbolError(
                    f"no {self.kind} file for symbol {symbol!r} in {self.path}; available: "
                    f"{', '.join(self.symbols()[:20]) or 'none'}"
                )
            frame = self._mapped(matches[0])
            origin = str(matches[0])
        else:
            frame = self._mapped(self.path)
            origin = str(self.path)
        if "symbol" in frame.columns:
            rows = frame["symbol"].astype(str).str.upper() == symbol.upper()
            if not rows.any():
                known = sorted(frame["symbol"].astype(str).unique())[:20]
                raise UnknownSymbolError(
                    f"symbol {symbol!r} is not in {origin}; available: {', '.join(known)}"
                )
            frame = frame.loc[rows].drop(columns=["symbol"])
        elif not self.path.is_dir() and _stem(self.path).upper() != symbol.upper():
            raise UnknownSymbolError(
                f"{origin} has no ticker column and is named for {_stem(self.path)!r}, not "
                f"{symbol!r}; add a ticker column (DataConfig.symbol_column) or use a directory"
            )
        frame = self._parse_time(frame, origin)
        if "adj_close" in frame.columns:
            adj = pd.to_numeric(frame.pop("adj_close"), errors="coerce").to_numpy(np.float64)
            if self.adjusted:
                close = pd.to_numeric(frame["close"], errors="coerce").to_numpy(np.float64)
                with np.errstate(divide="ignore", invalid="ignore"):
                    factor = adj / close
                for name in ("open", "high", "low"):
                    frame[name] = pd.to_numeric(frame[name], errors="coerce") * factor
                frame["close"] = adj
                frame["volume"] = pd.to_numeric(frame["volume"], errors="coerce") / factor
        return canonical_bars(frame, origin, timezone=self.timezone)

    # internals ---------------------------------------------------------------------------------
    def _files(self) -> list[Path]:
        suffixes = _SUFFIXES[self.kind]
        return sorted(
            p for p in self.path.iterdir() if p.is_file() and p.name.lower().endswith(suffixes)
        )

    def _mapped(self, path: Path) -> pd.DataFrame:
        raw = _read_file(path, self.kind)
        rename: dict[str, str] = {}
        for col in raw.columns:
            key = str(col)
            if key in self.columns:
                rename[key] = self.columns[key]
            elif self.symbol_column and key == self.symbol_column:
                rename[key] = "symbol"
            elif key.strip().lower() in _ALIASES and _ALIASES[key.strip().lower()] not in (
                self.columns.values()
            ):
                rename[key] = _ALIASES[key.strip().lower()]
        frame = raw.rename(columns=rename)
        if frame.columns.duplicated().any():
            dups = sorted(set(frame.columns[frame.columns.duplicated()]))
            raise SourceError(
                f"{path}: several columns map to {dups}; set DataConfig.columns explicitly"
            )
        missing = [c for c in ("timestamp", "open", "high", "low", "close") if c not in frame]
        if missing:
            raise SourceError(
                f"{path}: no column for {missing} (columns are {list(map(str, raw.columns))}); "
                "map them with DataConfig.columns, e.g. columns: {{Px_Last: close}}"
            )
        if "volume" not in frame.columns:
            frame["volume"] = np.nan
        keep = [c for c in frame.columns if c in set(_ALIASES.values())]
        return frame[keep]

    def _parse_time(self, frame: pd.DataFrame, origin: str) -> pd.DataFrame:
        values = frame["timestamp"]
        stamps: pd.Series | pd.DatetimeIndex
        try:
            if self.date_format:
                stamps = pd.to_datetime(values, format=self.date_format)
            elif pd.api.types.is_numeric_dtype(values):
                numbers = values.to_numpy(np.int64)
                is_ms = float(np.abs(numbers).max()) > 1e11
                stamps = pd.to_datetime(numbers, unit="ms" if is_ms else "s", utc=True)
            else:
                stamps = pd.to_datetime(values, format="mixed")
        except (ValueError, TypeError) as exc:
            hint = f"date_format {self.date_format!r}" if self.date_format else "the dates"
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SourceError(
                f"{origin}: cannot parse timestamps with {hint} ({first_line}); set "
                "DataConfig.date_format, e.g. '%d.%m.%Y'"
            ) from None
        out = frame.copy()
        out["timestamp"] = stamps
        return out


@lru_cache(maxsize=8)
def _read_cached(path: Path, kind: str, mtime: float) -> pd.DataFrame:
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise SourceError(f"{path}: the file is empty; expected a header row and bars") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise SourceError(
            f"{path}: cannot read it as {kind} ({type(exc).__name__}: {str(exc)[:120]}); check "
            "that it is a valid file"
        ) from None


def _read_file(path: Path, kind: str) -> pd.DataFrame:
    frame = _read_cached(path, kind, path.stat().st_mtime)
    if frame.empty:
        raise SourceError(f"{path}: the file has no rows; expected bars")
    return frame


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".csv.gz", ".csv", ".txt", ".parquet", ".pq"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


__all__ = ["FileSource"]
