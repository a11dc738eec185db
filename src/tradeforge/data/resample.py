"""Resampling bars to a coarser frequency (1m -> 5m, 1h -> 1d, 1d -> 1w).

Timestamp convention
--------------------
Source bars are stamped at the *start* of the interval they cover, as vendors do (a 1-minute bar
stamped 09:30 covers [09:30, 09:31)). A bar is only usable once its interval has ended.

Resampled bars are stamped, by default (``label="end"``), at the *end* of their window: the first
instant at which every bar inside it is known. An as-of join on these stamps (take the latest bar
stamped at or before t) therefore never leaks information from after t. ``label="start"`` stamps
the window start instead, matching vendor-style stamps; then a bar stamped s must not be used
before s + window.

Windows are half-open ``[start, start + window)`` measured in ``session_tz`` from
``session_start`` (e.g. FX days that start at 17:00 New York), so a bin never spans two
sessions. Weeks start on Monday. Aggregation: first open, max high, min low, last close, summed
volume, volume-weighted ``vwap``; other extra columns take the last value.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from tradeforge.core.errors import DataError

_PERIODS: dict[str, pd.Timedelta] = {
    "1m": pd.Timedelta(minutes=1),
    "5m": pd.Timedelta(minutes=5),
    "15m": pd.Timedelta(minutes=15),
    "30m": pd.Timedelta(minutes=30),
    "1h": pd.Timedelta(hours=1),
    "4h": pd.Timedelta(hours=4),
    "1d": pd.Timedelta(days=1),
    "1w": pd.Timedelta(weeks=1),
}


def period(frequency: str) -> pd.Timedelta:
    """The length of one bar at ``frequency``."""
    try:
        return _PERIODS[frequency]
    except KeyError:
        raise DataError(
            f"frequency {frequency!r} is not supported; expected one of {', '.join(_PERIODS)}"
        ) from None


def resample_bars(
    frame: pd.DataFrame,
    source_frequency: str,
    target_frequency: str,
    *,
    label: Literal["end", "start"] = "end",
    session_tz: str = "UTC",
    session_start: str = "00:00",
    complete_only: bool = False,
) -> pd.DataFrame:
    """Aggregate canonical bars (start-stamped, UTC) into ``target_frequency`` bars.

    ``complete_only`` drops the last window when the data stops before that window ends (a
    still-forming bar).
    """
    src, dst = period(source_frequency), period(target_frequency)
    if dst < src or dst % src != pd.Timedelta(0):
        raise DataError(
            f"cannot resample {source_frequency!r} bars to {target_frequency!r}; the target must "
            "be a whole multiple of the source frequency"
        )
    if label not in ("end", "start"):
        raise DataError(f"label {label!r} is not valid; expected 'end' or 'start'")
    if frame.empty:
        return frame.copy()
    stamps = pd.DatetimeIndex(frame["timestamp"])
    if stamps.tz is None:
        raise DataError("resample_bars needs tz-aware UTC timestamps; got naive ones")
    offset = pd.Timedelta(session_start + ":00" if session_start.count(":") == 1 else session_start)
    local = stamps.tz_convert(session_tz).tz_localize(None).as_unit("ns") - offset
    if target_frequency == "1w":
        day = local.normalize()
        starts = day - pd.to_timedelta(day.dayofweek, unit="D")
    elif dst >= pd.Timedelta(days=1):
        starts = local.normalize()
    else:
        starts = local.floor(dst)
    ends = starts + dst

    def to_utc(values: pd.DatetimeIndex) -> pd.DatetimeIndex:
        shifted = values + offset
        return shifted.tz_localize(
            session_tz, ambiguous="NaT", nonexistent="shift_forward"
        ).tz_convert("UTC")

    work = frame.drop(columns=["timestamp"]).copy()
    work["_bin"] = starts.asi8
    grouped = work.groupby("_bin", sort=True)
    out = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(min_count=1),
        }
    )
    if "vwap" in work.columns:
        weights = work["volume"].fillna(0.0)
        num = (work["vwap"] * weights).groupby(work["_bin"]).sum()
        den = weights.groupby(work["_bin"]).sum()
        out["vwap"] = np.where(den > 0, num / den.where(den > 0), grouped["vwap"].last())
    for name in work.columns:
        if name not in out.columns and name not in ("_bin", "symbol"):
            out[name] = grouped[name].last()
    bin_starts = pd.DatetimeIndex(pd.to_datetime(out.index.to_numpy(), unit="ns"))
    bin_start_utc = to_utc(bin_starts.as_unit("ns"))
    bin_end_utc = to_utc((bin_starts + dst).as_unit("ns"))
    stamp = bin_end_utc if label == "end" else bin_start_utc
    out = out.reset_index(drop=True)
    out.insert(0, "timestamp", stamp.as_unit("us"))
    if complete_only:
        last_end = to_utc(pd.DatetimeIndex([ends.max()]))[0]
        if stamps.max() + src < last_end:
            out = out.iloc[:-1]
    return out.dropna(subset=["timestamp"]).reset_index(drop=True)


__all__ = ["period", "resample_bars"]
