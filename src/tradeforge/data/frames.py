"""Canonical bar frames: the one long-format shape every source returns and the store keeps.

A canonical frame has a ``timestamp`` column (tz-aware UTC), float64 ``open, high, low, close,
volume`` and optionally more float64 columns (``vwap``, ``trades``), sorted by time. A bar's
timestamp is the start of the interval it covers, as vendors stamp them; a bar is usable only
once the interval has ended (see ``tradeforge.data.resample`` for the labelling convention).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.core.errors import SourceError
from tradeforge.data.panel import OHLCV

PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close")


def to_utc(values: pd.Series | pd.Index, timezone: str = "UTC") -> pd.DatetimeIndex:
    """Timestamps as a tz-aware UTC index; naive values are read in ``timezone``."""
    index = pd.DatetimeIndex(values)
    if index.tz is None:
        index = index.tz_localize(timezone)
    return index.tz_convert("UTC").as_unit("us")


def canonical_bars(frame: pd.DataFrame, origin: str, timezone: str = "UTC") -> pd.DataFrame:
    """Check and convert ``frame`` to the canonical layout; ``origin`` names it in errors."""
    missing = [c for c in ("timestamp", *OHLCV) if c not in frame.columns]
    if missing:
        raise SourceError(
            f"{origin}: missing columns {missing}; expected timestamp, open, high, low, close, "
            "volume (map other names with DataConfig.columns)"
        )
    if frame.empty:
        raise SourceError(f"{origin}: no bars (empty data); check the symbol and date range")
    columns: dict[str, Any] = {"timestamp": to_utc(frame["timestamp"], timezone)}
    extras = [c for c in frame.columns if c not in ("timestamp", "symbol", *OHLCV)]
    for name in (*OHLCV, *extras):
        column = frame[name]
        if column.dtype == np.float64:  # already numbers: the common case, kept cheap
            columns[name] = column.to_numpy()
            continue
        converted = pd.to_numeric(column, errors="coerce")
        bad = converted.isna() & column.notna()
        if bool(bad.any()):
            first = column[bad].iloc[0]
            if name in OHLCV:
                raise SourceError(
                    f"{origin}: column {name!r} has non-numeric value {str(first)[:40]!r}; "
                    "expected numbers"
                )
            continue
        columns[name] = converted.to_numpy(dtype=np.float64)
    return pd.DataFrame(columns).reset_index(drop=True)


def sort_dedupe(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted by time with one row per timestamp (the last occurrence wins)."""
    out = frame.sort_values("timestamp", kind="stable")
    out = out.drop_duplicates(subset="timestamp", keep="last")
    return out.reset_index(drop=True)


def merge_bars(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two canonical frames; where both have a timestamp the new bar wins."""
    if old.empty:
        return sort_dedupe(new)
    return sort_dedupe(pd.concat([old, new], ignore_index=True))


def frame_checksum(frame: pd.DataFrame) -> str:
    """SHA-256 of the bars' content (timestamps and every numeric column, in column order).

    It depends only on values, not on Parquet metadata, so re-ingesting identical bars gives the
    identical checksum.
    """
    digest = hashlib.sha256()
    stamps = pd.DatetimeIndex(frame["timestamp"]).as_unit("us").asi8
    digest.update(np.ascontiguousarray(stamps, dtype=np.int64).tobytes())
    for name in sorted(c for c in frame.columns if c != "timestamp"):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(frame[name].to_numpy(np.float64)).tobytes())
    return digest.hexdigest()


__all__ = [
    "PRICE_FIELDS",
    "canonical_bars",
    "frame_checksum",
    "merge_bars",
    "sort_dedupe",
    "to_utc",
]
