"""The bar store: one Parquet file per (dataset, frequency, symbol) and a DuckDB catalog.

Layout under the root (``$TRADEFORGE_HOME`` or ``~/.tradeforge``)::

    bars/<dataset>/<frequency>/<symbol>.parquet   canonical bars (see tradeforge.data.frames)
    aux/<kind>/<dataset>/<symbol>.parquet         corporate actions, fundamentals
    catalog.duckdb                                one row per bar partition

A catalog row records where its bars came from: ``source``, and for local dumps ``origin`` (the
resolved path that was read) and ``fingerprint`` (SHA-256 of the file), so that another dump or
a changed file is never mistaken for the stored one.

Every file is written to a temporary name in its final directory, flushed to disk and moved into
place with ``os.replace``: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tradeforge.core.errors import StoreError, UnknownSymbolError
from tradeforge.core.types import FloatArray
from tradeforge.data.frames import frame_checksum, merge_bars
from tradeforge.data.panel import OHLCV, BarPanel

_CATALOG_DDL = """
CREATE TABLE IF NOT EXISTS catalog (
    dataset VARCHAR, frequency VARCHAR, symbol VARCHAR,
    first_ts TIMESTAMPTZ, last_ts TIMESTAMPTZ, rows BIGINT,
    source VARCHAR, ingested_at TIMESTAMPTZ, checksum VARCHAR,
    origin VARCHAR DEFAULT '', fingerprint VARCHAR DEFAULT '',
    PRIMARY KEY (dataset, frequency, symbol)
)
"""
# catalogs written before origin/fingerprint existed gain the columns when opened for writing
_CATALOG_MIGRATIONS: tuple[str, ...] = (
    "ALTER TABLE catalog ADD COLUMN IF NOT EXISTS origin VARCHAR DEFAULT ''",
    "ALTER TABLE catalog ADD COLUMN IF NOT EXISTS fingerprint VARCHAR DEFAULT ''",
)


@dataclass(frozen=True)
class CatalogEntry:
    """One stored bar partition."""

    dataset: str
    frequency: str
    symbol: str
    first_ts: pd.Timestamp
    last_ts: pd.Timestamp
    rows: int
    source: str
    ingested_at: pd.Timestamp
    checksum: str
    origin: str = ""  # local dumps: the resolved path read
    fingerprint: str = ""  # local dumps: SHA-256 of the file read

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("first_ts", "last_ts", "ingested_at"):
            out[key] = out[key].isoformat()
        return out


@runtime_checkable
class Store(Protocol):
    """What the rest of tradeforge needs from a bar store (a server backend can implement it)."""

    def write_bars(
        self,
        dataset: str,
        frequency: str,
        symbol: str,
        frame: pd.DataFrame,
        source: str,
        merge: bool = True,
        origin: str = "",
        fingerprint: str = "",
    ) -> CatalogEntry: ...

    def read_bars(
        self, dataset: str, frequency: str, symbol: str, start: object = None, end: object = None
    ) -> pd.DataFrame: ...

    def read_panel(
        self,
        dataset: str,
        frequency: str,
        symbols: Sequence[str],
        start: object = None,
        end: object = None,
    ) -> BarPanel: ...

    def entry(self, dataset: str, frequency: str, symbol: str) -> CatalogEntry | None: ...

    def catalog(self) -> list[CatalogEntry]: ...


class ParquetStore:
    """Local store: Parquet partitions plus a DuckDB catalog (see module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()
        self._open_catalog: Any = None  # set inside batch()
        self._pending_rows: list[list[Any]] | None = None  # catalog rows waiting in batch()

    def __repr__(self) -> str:
        return f"ParquetStore({str(self.root)!r})"

    # paths ---------------------------------------------------------------------------------
    def bar_path(self, dataset: str, frequency: str, symbol: str) -> Path:
        return self.root / "bars" / _safe(dataset) / _safe(frequency) / f"{_safe(symbol)}.parquet"

    def aux_path(self, kind: str, dataset: str, symbol: str) -> Path:
        return self.root / "aux" / _safe(kind) / _safe(dataset) / f"{_safe(symbol)}.parquet"

    # catalog -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[ParquetStore]:
        """Many writes with one catalog connection and one catalog transaction.

        Opening DuckDB and committing each row cost ~0.1 s per partition. Each partition is
        still written atomically; the catalog rows are committed when the block ends, also when
        it ends with an error, so the catalog always describes the partitions on disk (after a
        hard crash mid-batch, partitions missing from the catalog are simply fetched again).
        """
        if self._open_catalog is not None:
            yield self
            return
        with self._catalog() as con:
            self._open_catalog = con
            self._pending_rows = []
            try:
                yield self
            finally:
                self._open_catalog = None
                rows, self._pending_rows = self._pending_rows, None
                if rows:
                    _upsert(con, rows)

    @contextlib.contextmanager
    def _catalog(self, read_only: bool = False) -> Iterator[Any]:
        import duckdb

        if self._open_catalog is not None:
            yield self._open_catalog
            return
        path = self.root / "catalog.duckdb"
        if read_only and not path.exists():
            yield None
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(path), read_only=read_only)
        except (OSError, duckdb.Error) as exc:
            raise StoreError(f"cannot open the catalog {path}: {exc}") from None
        try:
            if not read_only:
                con.execute(_CATALOG_DDL)
                for statement in _CATALOG_MIGRATIONS:
                    con.execute(statement)
            yield con
        finally:
            con.close()

    def entry(self, dataset: str, frequency: str, symbol: str) -> CatalogEntry | None:
        rows = self._query(
            "WHERE dataset = ? AND frequency = ? AND symbol = ?", [dataset, frequency, symbol]
        )
        return rows[0] if rows else None

    def catalog(self) -> list[CatalogEntry]:
        return self._query("", [])

    def _query(self, where: str, params: list[object]) -> list[CatalogEntry]:
        with self._catalog(read_only=True) as con:
            if con is None:
                return []
            columns = {r[0] for r in con.execute("DESCRIBE catalog").fetchall()}
            extra = ", ".join(
                f"coalesce({c}, '')" if c in columns else "''" for c in ("origin", "fingerprint")
            )
            sql = (
                "SELECT dataset, frequency, symbol, epoch_us(first_ts), epoch_us(last_ts), rows, "
                f"source, epoch_us(ingested_at), checksum, {extra} FROM catalog "
                f"{where} ORDER BY dataset, frequency, symbol"
            )
            try:
                fetched = con.execute(sql, params).fetchall()
            except Exception as exc:
                raise StoreError(f"cannot read the catalog under {self.root}: {exc}") from None
        return [
            CatalogEntry(
                dataset=r[0],
                frequency=r[1],
                symbol=r[2],
                first_ts=_ts(r[3]),
                last_ts=_ts(r[4]),
                rows=int(r[5]),
                source=r[6],
                ingested_at=_ts(r[7]),
                checksum=r[8],
                origin=r[9],
                fingerprint=r[10],
            )
            for r in fetched
        ]

    # bars ----------------------------------------------------------------------------------
    def write_bars(
        self,
        dataset: str,
        frequency: str,
        symbol: str,
        frame: pd.DataFrame,
        source: str,
        merge: bool = True,
        origin: str = "",
        fingerprint: str = "",
    ) -> CatalogEntry:
        """Store canonical bars for one symbol, merged with what is already stored (new bars win
        where both have a timestamp), or replacing it with ``merge=False``.

        Idempotent: writing the same bars twice leaves the same rows and the same checksum.
        ``origin`` and ``fingerprint`` record the local file the bars were read from.
        """
        path = self.bar_path(dataset, frequency, symbol)
        if merge and path.exists():
            frame = merge_bars(self._read_file(path), frame)
        else:
            frame = merge_bars(frame.iloc[:0], frame)
        if frame.empty:
            raise StoreError(f"refusing to store an empty partition for {symbol!r}")
        table = pa.Table.from_pandas(frame, preserve_index=False)
        _atomic_write_table(table, path)
        stamps = pd.DatetimeIndex(frame["timestamp"])
        entry = CatalogEntry(
            dataset=dataset,
            frequency=frequency,
            symbol=symbol,
            first_ts=stamps[0],
            last_ts=stamps[-1],
            rows=len(frame),
            source=source,
            ingested_at=pd.Timestamp(datetime.now(UTC)),
            checksum=frame_checksum(frame),
            origin=origin,
            fingerprint=fingerprint,
        )
        row = [
            dataset,
            frequency,
            symbol,
            entry.first_ts,
            entry.last_ts,
            entry.rows,
            source,
            entry.ingested_at,
            entry.checksum,
            origin,
            fingerprint,
        ]
        if self._pending_rows is not None:
            self._pending_rows.append(row)
        else:
            with self._catalog() as con:
                _upsert(con, [row])
        return entry

    def read_bars(
        self, dataset: str, frequency: str, symbol: str, start: object = None, end: object = None
    ) -> pd.DataFrame:
        path = self.bar_path(dataset, frequency, symbol)
        if not path.exists():
            raise UnknownSymbolError(
                f"no stored bars for symbol {symbol!r} (dataset {dataset!r}, frequency "
                f"{frequency!r}) under {self.root}; run: tradeforge data ingest"
            )
        frame = self._read_file(path)
        stamps = pd.DatetimeIndex(frame["timestamp"])
        mask = np.ones(len(frame), dtype=bool)
        if start is not None:
            mask &= stamps >= _utc(start)
        if end is not None:
            mask &= stamps <= _utc(end)
        return frame.loc[mask].reset_index(drop=True)

    def read_panel(
        self,
        dataset: str,
        frequency: str,
        symbols: Sequence[str],
        start: object = None,
        end: object = None,
    ) -> BarPanel:
        """A (time x symbol) panel read straight from Parquet into float64 arrays.

        When every symbol has the same timestamps (one calendar) the columns are stacked
        directly; otherwise they are placed on the sorted union of timestamps, NaN elsewhere.
        """
        if not symbols:
            raise UnknownSymbolError("read_panel needs at least one symbol")
        lo = _utc(start).value // 1000 if start is not None else None
        hi = _utc(end).value // 1000 if end is not None else None
        stamps_list: list[np.ndarray] = []
        columns_list: list[dict[str, np.ndarray]] = []
        paths = []
        for symbol in symbols:
            path = self.bar_path(dataset, frequency, symbol)
            if not path.exists():
                raise UnknownSymbolError(
                    f"no stored bars for symbol {symbol!r} (dataset {dataset!r}, frequency "
                    f"{frequency!r}) under {self.root}; run: tradeforge data ingest"
                )
            paths.append(path)
        for table in self._read_tables(paths):
            stamps = _column(table, "timestamp").view(np.int64)
            cols = {
                name: _column(table, name) for name in table.column_names if name != "timestamp"
            }
            if lo is not None or hi is not None:
                keep = np.ones(len(stamps), dtype=bool)
                if lo is not None:
                    keep &= stamps >= lo
                if hi is not None:
                    keep &= stamps <= hi
                stamps = stamps[keep]
                cols = {k: v[keep] for k, v in cols.items()}
            stamps_list.append(stamps)
            columns_list.append(cols)
        names = list(OHLCV) + sorted({k for cols in columns_list for k in cols if k not in OHLCV})
        first = stamps_list[0]
        aligned = all(len(st) == len(first) and np.array_equal(st, first) for st in stamps_list[1:])
        arrays: dict[str, FloatArray] = {}
        if aligned:
            index_us = first
            t = len(first)
            for name in names:
                arrays[name] = np.column_stack(
                    [cols.get(name, np.full(t, np.nan)) for cols in columns_list]
                ).astype(np.float64, copy=False)
        else:
            index_us = np.unique(np.concatenate(stamps_list))
            t, n = len(index_us), len(symbols)
            arrays = {k: np.full((t, n), np.nan) for k in names}
            for j, (stamps, cols) in enumerate(zip(stamps_list, columns_list, strict=True)):
                rows = np.searchsorted(index_us, stamps)
                for name, values in cols.items():
                    arrays[name][rows, j] = values
        index = pd.DatetimeIndex(pd.to_datetime(index_us, unit="us", utc=True))
        return BarPanel(
            index=index,
            symbols=tuple(symbols),
            open=arrays["open"],
            high=arrays["high"],
            low=arrays["low"],
            close=arrays["close"],
            volume=arrays["volume"],
            frequency=frequency,
            extra={k: v for k, v in arrays.items() if k not in OHLCV},
        )

    def delete(self, dataset: str, frequency: str, symbol: str) -> None:
        """Remove one partition and its catalog row."""
        self.bar_path(dataset, frequency, symbol).unlink(missing_ok=True)
        with self._catalog() as con:
            con.execute(
                "DELETE FROM catalog WHERE dataset = ? AND frequency = ? AND symbol = ?",
                [dataset, frequency, symbol],
            )

    # auxiliary tables (corporate actions, fundamentals) --------------------------------------
    def write_aux(self, kind: str, dataset: str, symbol: str, frame: pd.DataFrame) -> Path:
        path = self.aux_path(kind, dataset, symbol)
        _atomic_write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
        return path

    def read_aux(self, kind: str, dataset: str, symbol: str) -> pd.DataFrame:
        path = self.aux_path(kind, dataset, symbol)
        if not path.exists():
            raise UnknownSymbolError(f"no stored {kind} for {symbol!r} in dataset {dataset!r}")
        return pd.read_parquet(path)

    # internals -----------------------------------------------------------------------------
    def _read_table(self, path: Path) -> pa.Table:
        try:
            # ParquetFile skips the dataset machinery of pq.read_table: ~2x less overhead
            return pq.ParquetFile(path, memory_map=True).read(use_threads=False)
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(
                f"cannot read {path}: {exc}; delete it and re-run tradeforge data ingest"
            ) from None

    def _read_tables(self, paths: list[Path]) -> list[pa.Table]:
        """Read many partitions; pyarrow releases the GIL, so a few threads overlap the I/O
        and decoding (about 2x faster for hundreds of small files)."""
        if len(paths) < 8:
            return [self._read_table(p) for p in paths]
        workers = min(8, max(2, 2 * (os.cpu_count() or 1)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self._read_table, paths))

    def _read_file(self, path: Path) -> pd.DataFrame:
        frame: pd.DataFrame = self._read_table(path).to_pandas()
        frame["timestamp"] = pd.DatetimeIndex(frame["timestamp"]).tz_convert("UTC").as_unit("us")
        return frame


_CATALOG_COLUMNS: tuple[str, ...] = (
    "dataset",
    "frequency",
    "symbol",
    "first_ts",
    "last_ts",
    "rows",
    "source",
    "ingested_at",
    "checksum",
    "origin",
    "fingerprint",
)


def _upsert(con: Any, rows: list[list[Any]]) -> None:
    """Insert or replace catalog rows in one statement."""
    frame = pd.DataFrame(rows, columns=list(_CATALOG_COLUMNS))
    frame["rows"] = frame["rows"].astype("int64")
    con.register("_tf_new_rows", frame)
    try:
        names = ", ".join(_CATALOG_COLUMNS)
        con.execute(f"INSERT OR REPLACE INTO catalog ({names}) SELECT {names} FROM _tf_new_rows")
    finally:
        con.unregister("_tf_new_rows")


def _column(table: pa.Table, name: str) -> np.ndarray:
    """One column as a NumPy array (timestamps as datetime64[us], numbers as float64)."""
    column = table.column(name)
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("us", tz=column.type.tz))
        stamps: np.ndarray = column.to_numpy()
        return stamps
    values: np.ndarray = column.to_numpy().astype(np.float64, copy=False)
    return values


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` so that a failure at any point leaves the old file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            # snappy: decodes ~25% faster than zstd on bar partitions; size differs by ~10%
            pq.write_table(table, handle, compression="snappy")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError | pa.ArrowException):
            raise StoreError(f"cannot write {path}: {exc}") from None
        raise


def default_store() -> ParquetStore:
    """The store under ``$TRADEFORGE_HOME`` (default ``~/.tradeforge``)."""
    home = os.environ.get("TRADEFORGE_HOME")
    return ParquetStore(Path(home) if home else Path.home() / ".tradeforge")


def _safe(name: str) -> str:
    """A file-system-safe, reversible encoding of a symbol or dataset name."""
    if not name:
        raise StoreError("empty names cannot be stored; give a symbol, dataset and frequency")
    encoded = quote(name, safe="-_=+^@")
    return "%2E" + encoded[1:] if encoded.startswith(".") else encoded


def symbol_from_filename(filename: str) -> str:
    return unquote(filename.removesuffix(".parquet"))


def _ts(epoch_us: int) -> pd.Timestamp:
    return pd.Timestamp(epoch_us, unit="us", tz="UTC")


def _utc(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


__all__ = ["CatalogEntry", "ParquetStore", "Store", "default_store", "symbol_from_filename"]
