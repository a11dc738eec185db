"""Local dumps: CSV or Parquet, either one file per ticker (as in Kaggle stock datasets, the file
stem is the symbol) or one long file with a ticker column.

Column names are matched case-insensitively against common spellings (``Date``, ``Adj Close``,
``Ticker``...); ``DataConfig.columns`` maps any other name (user column -> our field). With an
``adj_close`` column and ``adjusted=True``, OHLC are scaled by adj_close / close and volume by
its inverse, so splits and dividends do not show up as price jumps.

The timestamp column of a file is parsed once, with one format (see ``tradeforge.data.dates``),
and each symbol's stamps must fit the requested frequency and be in time order without repeats
(unless the validation settings allow repairs). A source's series belong to its path: ``origin``
is the resolved path and ``fingerprint(symbol)`` the SHA-256 of the file a symbol is read from,
so the store can tell another dump, or a changed file, from the one it holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.config import DataConfig, RuleAction, ValidationConfig
from tradeforge.data.dates import (
    ParsedStamps,
    RowLabels,
    check_frequency,
    check_order,
    parse_timestamps,
    stored_stamps,
)
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
_KEEP_TABLES = 4  # parsed files kept per source (a long file is read once per ingest)


@dataclass(frozen=True)
class _Table:
    """One parsed file, columns as float64 arrays, its timestamp column parsed once, and the
    row positions of each symbol (upper-cased) when it has a ticker column."""

    values: dict[str, np.ndarray]
    rows: np.ndarray  # row numbers in the file (0 = first row after the header)
    stamps: ParsedStamps
    raw_time: np.ndarray
    time_column: str
    groups: dict[str, np.ndarray] | None
    spellings: tuple[str, ...]


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
        validation: ValidationConfig | None = None,
    ) -> None:
        self.name = kind
        self.path = Path(path).expanduser()
        self.kind = kind
        self.columns = dict(columns or {})
        self.date_format = date_format
        self.symbol_column = symbol_column
        self.timezone = timezone
        self.adjusted = adjusted
        rules = validation or ValidationConfig()
        # unset (None) means the file default: an error
        self.unsorted: RuleAction = rules.unsorted_timestamp or "error"
        self.duplicate: RuleAction = rules.duplicate_timestamp or "error"
        self._tables: dict[tuple[str, int, int], _Table] = {}
        if not self.path.exists():
            raise SourceError(
                f"{kind} path {str(self.path)!r} does not exist; give a directory of per-ticker "
                f"{kind} files or one long {kind} file (DataConfig.path, --path)"
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
            validation=config.effective_validation,
        )

    @property
    def origin(self) -> str:
        """The resolved path this source reads (the store records it with each series)."""
        return str(self.path.resolve())

    def symbols(self) -> list[str]:
        """Symbols available in the dump."""
        if self.path.is_dir():
            found = sorted({_stem(p) for p in self._files()})
            if not found:
                raise SourceError(
                    f"{self.path} holds no {self.kind} files (looked for "
                    f"{', '.join(_SUFFIXES[self.kind])}); point DataConfig.path at the dump"
                )
            return found
        table = self._table(self.path)
        if table.groups is None:
            return [_stem(self.path)]
        return list(table.spellings)

    def fingerprint(self, symbol: str) -> str:
        """SHA-256 of the file ``symbol`` is read from."""
        path = self._file_for(symbol)
        stat = path.stat()
        return _sha256(path, stat.st_size, stat.st_mtime_ns)

    def fetch_bars(
        self, symbol: str, frequency: str, start: date | None = None, end: date | None = None
    ) -> pd.DataFrame:
        """Every bar of ``symbol`` in the file (a local series is stored whole; ``start`` and
        ``end`` cut only what is read from the store)."""
        path = self._file_for(symbol)
        origin = str(path)
        table = self._table(path)
        if table.groups is not None:
            hit = table.groups.get(symbol.upper())
            if hit is None:
                known = list(table.spellings[:20])
                raise UnknownSymbolError(
                    f"symbol {symbol!r} is not in {origin}; available: {', '.join(known)}"
                )
            positions = hit
        elif self.path.is_dir() or _stem(self.path).upper() == symbol.upper():
            positions = np.arange(len(table.rows))
        else:
            raise UnknownSymbolError(
                f"{origin} has no ticker column and is named for {_stem(self.path)!r}, not "
                f"{symbol!r}; add a ticker column (DataConfig.symbol_column) or use a directory"
            )
        parsed = ParsedStamps(
            table.stamps.utc[positions], table.stamps.wall[positions], table.stamps.how
        )
        label = RowLabels(
            origin, table.rows[positions], table.raw_time[positions], table.time_column
        )
        who = symbol if table.groups is not None else None
        check_frequency(parsed, frequency, label, who)
        stamps = stored_stamps(parsed, frequency)
        newest_first = check_order(stamps, label, who, self.unsorted, self.duplicate)
        if newest_first:
            positions, stamps = positions[::-1], stamps[::-1]
        columns = {name: values[positions] for name, values in table.values.items()}
        adj = columns.pop("adj_close", None)
        if adj is not None and self.adjusted:
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = adj / columns["close"]
            for name in ("open", "high", "low"):
                columns[name] = columns[name] * factor
            columns["close"] = adj
            columns["volume"] = columns["volume"] / factor
        return canonical_bars(pd.DataFrame({"timestamp": stamps, **columns}), origin, "UTC")

    # internals ---------------------------------------------------------------------------------
    def _files(self) -> list[Path]:
        suffixes = _SUFFIXES[self.kind]
        return sorted(
            p for p in self.path.iterdir() if p.is_file() and p.name.lower().endswith(suffixes)
        )

    def _file_for(self, symbol: str) -> Path:
        if not self.path.is_dir():
            return self.path
        matches = [p for p in self._files() if _stem(p).upper() == symbol.upper()]
        if not matches:
            raise UnknownSymbolError(
                f"no {self.kind} file for symbol {symbol!r} in {self.path}; available: "
                f"{', '.join(sorted({_stem(p) for p in self._files()})[:20]) or 'none'}"
            )
        return matches[0]

    def _table(self, path: Path) -> _Table:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        table = self._tables.get(key)
        if table is None:
            table = self._parse(path)
            if len(self._tables) >= _KEEP_TABLES:
                self._tables.pop(next(iter(self._tables)))
            self._tables[key] = table
        return table

    def _parse(self, path: Path) -> _Table:
        frame, time_column = self._mapped(path)
        stamps = parse_timestamps(
            frame["timestamp"],
            date_format=self.date_format,
            timezone=self.timezone,
            origin=str(path),
            column=time_column,
        )
        groups: dict[str, np.ndarray] | None = None
        spellings: tuple[str, ...] = ()
        if "symbol" in frame.columns:
            names = frame["symbol"]
            missing = names.isna().to_numpy()
            if missing.any():
                row = int(frame.index[int(np.argmax(missing))]) + 1
                raise SourceError(f"{path}: row {row} has no ticker; every row needs one")
            text = names.astype(str).str.strip()
            groups = {
                str(k): np.asarray(v, dtype=np.int64)
                for k, v in pd.Series(np.arange(len(text)))
                .groupby(text.str.upper().to_numpy())
                .indices.items()
            }
            spellings = tuple(sorted(text.unique()))
        values = {
            name: _numbers(frame[name], name, path)
            for name in frame.columns
            if name not in ("timestamp", "symbol")
        }
        return _Table(
            values,
            frame.index.to_numpy(),
            stamps,
            frame["timestamp"].to_numpy(),
            time_column,
            groups,
            spellings,
        )

    def _mapped(self, path: Path) -> tuple[pd.DataFrame, str]:
        header = _read_file(path, self.kind, header_only=True)
        rename: dict[str, str] = {}
        for col in header.columns:
            key = str(col)
            if key in self.columns:
                rename[key] = self.columns[key]
            elif self.symbol_column and key == self.symbol_column:
                rename[key] = "symbol"
            elif key.strip().lower() in _ALIASES and _ALIASES[key.strip().lower()] not in (
                self.columns.values()
            ):
                rename[key] = _ALIASES[key.strip().lower()]
        renamed = [rename.get(str(c), str(c)) for c in header.columns]
        dups = sorted({c for c in renamed if renamed.count(c) > 1 and c in set(rename.values())})
        if dups:
            raise SourceError(
                f"{path}: several columns map to {dups}; set DataConfig.columns explicitly"
            )
        missing = [c for c in ("timestamp", "open", "high", "low", "close") if c not in renamed]
        if missing:
            raise SourceError(
                f"{path}: no column for {missing} (columns are "
                f"{list(map(str, header.columns))}); map them with DataConfig.columns, e.g. "
                "columns: {Px_Last: close}"
            )
        # tickers stay text: codes such as 000001 keep their leading zeros
        text = tuple(str(c) for c in header.columns if rename.get(str(c)) == "symbol")
        raw = _read_file(path, self.kind, text_columns=text)
        frame = raw.rename(columns=rename)
        if "volume" not in frame.columns:
            frame["volume"] = np.nan
        keep = [c for c in frame.columns if c in set(_ALIASES.values())]
        time_column = next(str(c) for c in raw.columns if rename.get(str(c)) == "timestamp")
        return frame[keep], time_column


def _read_file(
    path: Path, kind: str, *, header_only: bool = False, text_columns: tuple[str, ...] = ()
) -> pd.DataFrame:
    try:
        if kind == "parquet":
            if header_only:
                import pyarrow.parquet as pq

                names = pq.ParquetFile(path).schema_arrow.names
                return pd.DataFrame(columns=names)
            frame = pd.read_parquet(path)
        else:
            dtype = dict.fromkeys(text_columns, str)
            frame = pd.read_csv(path, nrows=0 if header_only else None, dtype=dtype or None)
    except pd.errors.EmptyDataError:
        raise SourceError(f"{path}: the file is empty; expected a header row and bars") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise SourceError(
            f"{path}: cannot read it as {kind} ({type(exc).__name__}: {str(exc)[:120]}); check "
            "that it is a valid file"
        ) from None
    if not header_only and frame.empty:
        raise SourceError(f"{path}: the file has no rows; expected bars")
    return frame.reset_index(drop=True)


def _numbers(column: pd.Series, name: str, path: Path) -> np.ndarray:
    """A price or volume column as float64; a non-numeric entry is an error naming its row."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(np.float64)
    converted = pd.to_numeric(column, errors="coerce")
    bad = (converted.isna() & column.notna()).to_numpy()
    if bad.any():
        pos = int(np.argmax(bad))
        raise SourceError(
            f"{path}: column {name!r} has non-numeric value {str(column.iloc[pos])[:40]!r} "
            f"(row {int(column.index[pos]) + 1}); expected numbers"
        )
    return converted.to_numpy(np.float64)


@lru_cache(maxsize=1024)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    """Content hash, memoised per (path, size, modification time)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".csv.gz", ".csv", ".txt", ".parquet", ".pq"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


__all__ = ["FileSource"]
