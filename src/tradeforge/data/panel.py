"""The bar panel: aligned OHLCV arrays of shape (time, symbol), indexed by UTC timestamps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tradeforge.core.errors import DataError, UnknownSymbolError
from tradeforge.core.types import FloatArray

OHLCV: tuple[str, ...] = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class BarPanel:
    """OHLCV bars for several symbols on one shared, strictly increasing UTC time index.

    Each field is a float64 array of shape ``(len(index), len(symbols))``; a symbol with no bar at
    a timestamp holds NaN there (never a value filled from a later bar).
    """

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    frequency: str = "1d"
    extra: dict[str, FloatArray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.index.tz is None or str(self.index.tz) != "UTC":
            raise DataError(f"BarPanel index tz is {self.index.tz!r}; expected timezone-aware UTC")
        if not self.index.is_monotonic_increasing or self.index.has_duplicates:
            raise DataError("BarPanel index must be strictly increasing without duplicates")
        shape = (len(self.index), len(self.symbols))
        for name in OHLCV:
            arr = getattr(self, name)
            if arr.shape != shape:
                raise DataError(f"BarPanel field {name!r} has shape {arr.shape}; expected {shape}")
        for name, arr in self.extra.items():
            if arr.shape != shape:
                raise DataError(
                    f"BarPanel extra field {name!r} has shape {arr.shape}; expected {shape}"
                )

    @property
    def n_bars(self) -> int:
        return len(self.index)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    def field(self, name: str) -> FloatArray:
        """One field by name (an OHLCV column or an extra such as ``vwap``)."""
        if name in OHLCV:
            arr: FloatArray = getattr(self, name)
            return arr
        if name in self.extra:
            return self.extra[name]
        allowed = ", ".join(OHLCV + tuple(self.extra))
        raise DataError(f"BarPanel has no field {name!r}; available fields: {allowed}")

    def column(self, symbol: str) -> int:
        """Position of ``symbol`` on the symbol axis."""
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise UnknownSymbolError(
                f"symbol {symbol!r} is not in this panel; available: {', '.join(self.symbols)}"
            ) from None

    def select(self, symbols: Sequence[str]) -> BarPanel:
        """A panel with only ``symbols``, in the given order."""
        cols = [self.column(s) for s in symbols]
        return self._take(slice(None), cols)

    def slice_time(self, start: object = None, end: object = None) -> BarPanel:
        """Bars with ``start <= t <= end`` (either bound may be None)."""
        mask = np.ones(len(self.index), dtype=bool)
        if start is not None:
            mask &= self.index >= _utc(start)
        if end is not None:
            mask &= self.index <= _utc(end)
        return self._take(mask, list(range(self.n_symbols)))

    def iloc(self, rows: slice) -> BarPanel:
        """Bars by integer position."""
        return self._take(rows, list(range(self.n_symbols)))

    def _take(self, rows: slice | np.ndarray, cols: list[int]) -> BarPanel:
        def cut(a: FloatArray) -> FloatArray:
            return np.ascontiguousarray(a[rows][:, cols])

        return BarPanel(
            index=self.index[rows],
            symbols=tuple(self.symbols[c] for c in cols),
            open=cut(self.open),
            high=cut(self.high),
            low=cut(self.low),
            close=cut(self.close),
            volume=cut(self.volume),
            frequency=self.frequency,
            extra={k: cut(v) for k, v in self.extra.items()},
        )

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (timestamp, symbol) with OHLCV columns; all-NaN rows dropped."""
        t, n = self.n_bars, self.n_symbols
        data: dict[str, object] = {
            "timestamp": np.repeat(self.index.values, n),
            "symbol": np.tile(np.array(self.symbols, dtype=object), t),
        }
        for name in OHLCV:
            data[name] = getattr(self, name).reshape(-1)
        for name, arr in self.extra.items():
            data[name] = arr.reshape(-1)
        frame = pd.DataFrame(data)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return frame.dropna(subset=list(OHLCV), how="all").reset_index(drop=True)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, frequency: str = "1d") -> BarPanel:
        """Build from long format with columns ``timestamp, symbol, open, high, low, close, volume``."""
        missing = [c for c in ("timestamp", "symbol", *OHLCV) if c not in frame.columns]
        if missing:
            raise DataError(
                f"frame is missing columns {missing}; expected timestamp, symbol, open, high, low, "
                "close, volume"
            )
        ts = pd.to_datetime(frame["timestamp"], utc=True)
        symbols = tuple(sorted(frame["symbol"].astype(str).unique()))
        index = pd.DatetimeIndex(ts).unique().sort_values()
        rows = index.get_indexer(pd.DatetimeIndex(ts))
        cols = pd.Index(symbols).get_indexer(frame["symbol"].astype(str))
        extras = [c for c in frame.columns if c not in ("timestamp", "symbol", *OHLCV)]
        arrays: dict[str, FloatArray] = {}
        for name in (*OHLCV, *extras):
            if not pd.api.types.is_numeric_dtype(frame[name]):
                continue
            arr = np.full((len(index), len(symbols)), np.nan)
            arr[rows, cols] = frame[name].to_numpy(dtype=np.float64)
            arrays[name] = arr
        return cls(
            index=index,
            symbols=symbols,
            open=arrays["open"],
            high=arrays["high"],
            low=arrays["low"],
            close=arrays["close"],
            volume=arrays["volume"],
            frequency=frequency,
            extra={k: v for k, v in arrays.items() if k not in OHLCV},
        )


def _utc(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
