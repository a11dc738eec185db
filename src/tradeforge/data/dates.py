"""Timestamps of local dumps: one format per column (inferred once, or given), and stamps that
must fit the declared frequency.

Inference when ``DataConfig.date_format`` is not set:

* datetime columns (Parquet timestamps) are used as they are;
* integer columns: when every value has 8 digits and is a calendar date, the column is
  ``YYYYMMDD`` (the usual format of free stock dumps; never epoch seconds); 12 and 14 digits
  that are all valid read as ``YYYYMMDDHHMM`` and ``YYYYMMDDHHMMSS``; anything else is epoch
  seconds, milliseconds, microseconds or nanoseconds by magnitude, and every value must have
  the same magnitude;
* text columns: the format is guessed from the first row and must parse every row (one format
  per column, never per row). Where day-first and month-first both parse every row
  (``04/01/2010``), the column is ambiguous and an error asks for ``date_format``.

``date_format`` is a strptime format (``%d.%m.%Y``) or one of ``epoch_s``, ``epoch_ms``,
``epoch_us``, ``epoch_ns``. Errors name the file, the first row that does not fit (rows are
counted from 1 after the header) and the setting to change.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from tradeforge.core.errors import SourceError

EPOCH_UNITS: dict[str, str] = {"epoch_s": "s", "epoch_ms": "ms", "epoch_us": "us", "epoch_ns": "ns"}
# (lowest magnitude, unit): epoch values from 1973-03 on, one class per unit
_EPOCH_CLASSES: tuple[tuple[float, str], ...] = (
    (1e8, "s"),
    (1e11, "ms"),
    (1e14, "us"),
    (1e17, "ns"),
)
_DIGIT_FORMATS: dict[int, str] = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
_OFFSET = re.compile(r"\s*(Z|[+-]\d{2}:?\d{2})$")
_DAY = 86_400 * 10**6  # microseconds
_INTERVAL_US: dict[str, int] = {
    "1m": 60 * 10**6,
    "5m": 300 * 10**6,
    "15m": 900 * 10**6,
    "30m": 1_800 * 10**6,
    "1h": 3_600 * 10**6,
    "4h": 14_400 * 10**6,
}
_SETTING = "DataConfig.date_format"


@dataclass(frozen=True)
class ParsedStamps:
    """A parsed timestamp column: ``utc`` instants and the ``wall`` clock the file states (naive,
    in the file's own zone), row-aligned with the column; ``how`` names the format used."""

    utc: pd.DatetimeIndex
    wall: pd.DatetimeIndex
    how: str


class RowLabels:
    """Names rows in messages: ``<file>: row 12 (AAPL, date '20090821')``."""

    def __init__(self, origin: str, rows: np.ndarray, raw: np.ndarray, column: str) -> None:
        self.origin, self.rows, self.raw, self.column = origin, rows, raw, column

    def __call__(self, pos: int, symbol: str | None = None) -> str:
        who = f"{symbol}, " if symbol else ""
        return f"row {int(self.rows[pos]) + 1} ({who}{self.column} {_show(self.raw[pos])})"


def parse_timestamps(
    values: pd.Series, *, date_format: str | None, timezone: str, origin: str, column: str
) -> ParsedStamps:
    """Parse one timestamp column with one format (see the module docstring).

    ``values`` keeps the file's row numbers as its index (0 = first row after the header).
    """
    label = RowLabels(origin, values.index.to_numpy(), values.to_numpy(), column)
    missing = values.isna().to_numpy()
    if missing.any():
        raise SourceError(
            f"{origin}: {label(int(np.argmax(missing)))} has no timestamp; every row needs one"
        )
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        aware = pd.DatetimeIndex(values)
        # a zone of its own states the wall clock; UTC says nothing of it: use ``timezone``
        local = aware.tz_convert(timezone) if str(aware.tz) in ("UTC", "utc") else aware
        return ParsedStamps(aware.tz_convert("UTC").as_unit("us"), _naive(local), "datetime")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        wall = pd.DatetimeIndex(values).as_unit("us")
        return ParsedStamps(_localize(wall, timezone, origin), wall, "datetime")
    if date_format in EPOCH_UNITS:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
        if np.isnan(numbers).any():
            pos = int(np.argmax(np.isnan(numbers)))
            raise SourceError(
                f"{origin}: {label(pos)} is not a number, but {_SETTING} is {date_format!r}"
            )
        return _epoch(numbers, EPOCH_UNITS[date_format], timezone, date_format)
    numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
        values.dtype
    )
    if numeric:
        return _numeric(values.to_numpy(np.float64), date_format, timezone, label)
    text = values.astype(str).str.strip()
    if date_format:
        return _with_format(text, date_format, timezone, label, given=True)
    return _infer_text(text, timezone, label)


def _numeric(
    numbers: np.ndarray, date_format: str | None, timezone: str, label: RowLabels
) -> ParsedStamps:
    integral = np.floor(numbers) == numbers
    if date_format:
        if not integral.all():
            pos = int(np.argmax(~integral))
            raise SourceError(
                f"{label.origin}: {label(pos)} is not a whole number, so it cannot be read with "
                f"{_SETTING} {date_format!r}"
            )
        text = pd.Series(numbers.astype(np.int64).astype(str))
        return _with_format(text, date_format, timezone, label, given=True)
    if integral.all() and (numbers > 0).all():
        ints = numbers.astype(np.int64)
        digits = np.char.str_len(ints.astype(str))
        if (digits == digits[0]).all() and int(digits[0]) in _DIGIT_FORMATS:
            fmt = _DIGIT_FORMATS[int(digits[0])]
            parsed = pd.to_datetime(pd.Series(ints.astype(str)), format=fmt, errors="coerce")
            bad = parsed.isna().to_numpy()
            if not bad.any():
                wall = pd.DatetimeIndex(parsed).as_unit("us")
                return ParsedStamps(_localize(wall, timezone, label.origin), wall, fmt)
            if int(digits[0]) == 8:
                raise SourceError(
                    f"{label.origin}: column {label.column!r} holds 8-digit numbers read as "
                    f"YYYYMMDD dates, but {label(int(np.argmax(bad)))} is not a calendar date; "
                    f"fix that row, or set {_SETTING} (e.g. 'epoch_s' for epoch seconds)"
                )
    magnitude = np.abs(numbers)
    classes = np.searchsorted([c for c, _ in _EPOCH_CLASSES], magnitude, side="right") - 1
    if classes.min() < 0:
        pos = int(np.argmin(classes))
        raise SourceError(
            f"{label.origin}: cannot tell what the number in {label(pos)} means as a date (not "
            f"YYYYMMDD, too small for epoch seconds from 1973 on); set {_SETTING} (a strptime "
            "format such as '%Y%m%d', or epoch_s / epoch_ms)"
        )
    if (classes != classes[0]).any():
        pos = int(np.argmax(classes != classes[0]))
        raise SourceError(
            f"{label.origin}: column {label.column!r} mixes epoch magnitudes: {label(0)} reads "
            f"as epoch {_EPOCH_CLASSES[classes[0]][1]}, {label(pos)} as epoch "
            f"{_EPOCH_CLASSES[classes[pos]][1]}; one format per column: fix the file or set "
            f"{_SETTING}"
        )
    unit = _EPOCH_CLASSES[int(classes[0])][1]
    return _epoch(numbers, unit, timezone, f"epoch_{unit}")


def _epoch(numbers: np.ndarray, unit: str, timezone: str, how: str) -> ParsedStamps:
    if (np.floor(numbers) == numbers).all():
        values = pd.Series(numbers.astype(np.int64))
    else:
        values = pd.Series(numbers)
    utc = pd.DatetimeIndex(pd.to_datetime(values, unit=unit, utc=True))  # type: ignore[call-overload]
    utc = utc.as_unit("us")
    return ParsedStamps(utc, _naive(utc.tz_convert(timezone)), how)


def _infer_text(text: pd.Series, timezone: str, label: RowLabels) -> ParsedStamps:
    first = str(text.iloc[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        guess = guess_datetime_format(first)
    if guess is None:
        raise SourceError(
            f"{label.origin}: cannot recognise the date format of {label(0)}; set {_SETTING} "
            "(a strptime format, e.g. '%d.%m.%Y %H:%M')"
        )
    candidates = [guess]
    swapped = _swap_day_month(guess)
    if swapped is not None:
        candidates.append(swapped)
    fits = []
    for fmt in candidates:
        if not _parse(text, fmt).isna().any():
            fits.append(fmt)
    if len(fits) == 2:
        raise SourceError(
            f"{label.origin}: the dates in column {label.column!r} fit both {fits[0]!r} and "
            f"{fits[1]!r} (day and month cannot be told apart, e.g. {label(0)}); set "
            f"{_SETTING} to the one the file uses"
        )
    if not fits:
        bad = _parse(text, guess).isna().to_numpy()
        raise SourceError(
            f"{label.origin}: {label(int(np.argmax(bad)))} does not match the date format "
            f"{guess!r} inferred from {label(0)}; a column has one format: fix that row or set "
            f"{_SETTING}"
        )
    return _with_format(text, fits[0], timezone, label, given=False)


def _with_format(
    text: pd.Series, fmt: str, timezone: str, label: RowLabels, *, given: bool
) -> ParsedStamps:
    parsed = _parse(text, fmt)
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise SourceError(
            f"{label.origin}: cannot parse timestamps with date_format {fmt!r}: "
            f"{label(int(np.argmax(bad)))} does not match; set {_SETTING} to the format the "
            "file uses, e.g. '%d.%m.%Y'"
        )
    how = fmt if given else f"{fmt} (inferred)"
    if "%z" not in fmt:
        wall = pd.DatetimeIndex(parsed).as_unit("us")
        return ParsedStamps(_localize(wall, timezone, label.origin), wall, how)
    utc = pd.DatetimeIndex(parsed).tz_convert("UTC").as_unit("us")
    if fmt.endswith("%z"):
        local = pd.to_datetime(
            text.str.replace(_OFFSET, "", regex=True), format=fmt[:-2].rstrip(), errors="coerce"
        )
        if not local.isna().any():
            return ParsedStamps(utc, pd.DatetimeIndex(local).as_unit("us"), how)
    return ParsedStamps(utc, _naive(utc.tz_convert(timezone)), how)


def _parse(text: pd.Series, fmt: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(text, format=fmt, errors="coerce", utc="%z" in fmt)


def _swap_day_month(fmt: str) -> str | None:
    """The format with day and month swapped, where both readings are plausible (not
    year-first, which is always year-month-day)."""
    if "%d" not in fmt or "%m" not in fmt:
        return None
    year = fmt.find("%Y") if "%Y" in fmt else fmt.find("%y")
    if 0 <= year < min(fmt.index("%d"), fmt.index("%m")):
        return None
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def _localize(wall: pd.DatetimeIndex, timezone: str, origin: str) -> pd.DatetimeIndex:
    try:
        return wall.tz_localize(timezone).tz_convert("UTC").as_unit("us")
    except (ValueError, LookupError) as exc:
        raise SourceError(
            f"{origin}: cannot read the timestamps in timezone {timezone!r} ({exc}); set "
            "DataConfig.timezone to the zone the file's times are in"
        ) from None


def _naive(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return index.tz_localize(None).as_unit("us") if index.tz is not None else index.as_unit("us")


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return repr(str(value)[:40])


# frequency fit ------------------------------------------------------------------------------


def stored_stamps(parsed: ParsedStamps, frequency: str) -> pd.DatetimeIndex:
    """The timestamps to store: the stated date at 00:00 UTC for daily and weekly bars (the
    store's convention), the UTC instant for intraday bars."""
    if frequency in ("1d", "1w"):
        return parsed.wall.normalize().tz_localize("UTC")
    return parsed.utc


def check_order(
    stamps: pd.DatetimeIndex,
    label: RowLabels,
    symbol: str | None,
    unsorted: str,
    duplicate: str,
) -> bool:
    """Check the rows' time order as written; True when the rows are newest-first (every row
    earlier than the one above), which is read in reverse. Out-of-order and repeated stamps
    are errors when their rule's action is ``error``."""
    values = stamps.asi8
    if len(values) < 2:
        return False
    steps = np.diff(values)
    if (steps < 0).all():
        return True
    if unsorted == "error" and (steps < 0).any():
        i = int(np.argmax(steps < 0))
        raise SourceError(
            f"{label.origin}: {label(i + 1, symbol)} is earlier than the row above it "
            f"({label(i)}); bars must be in time order (or all newest-first). Fix the file, or "
            "set validation.unsorted_timestamp: repair to sort them"
        )
    if duplicate == "error":
        dup = pd.Index(values).duplicated(keep="first")
        if dup.any():
            j = int(np.argmax(dup))
            i = int(np.argmax(values == values[j]))
            raise SourceError(
                f"{label.origin}: {label(j, symbol)} repeats the timestamp of {label(i)} "
                f"({stamps[j].isoformat()}); fix the file, or set "
                "validation.duplicate_timestamp: repair to keep the last row"
            )
    return False


def check_frequency(
    parsed: ParsedStamps, frequency: str, label: RowLabels, symbol: str | None
) -> None:
    """Raise where the stamps cannot be bars of ``frequency``: a time of day in a daily or
    weekly dataset, every bar on one day, two bars in one week (``1w``), bars closer together
    than the interval, or plain dates in an intraday dataset."""
    wall = parsed.wall
    n = len(wall)
    if n == 0:
        return
    read = f"dates read as {parsed.how}"
    fix = f"check {_SETTING} and DataConfig.timezone ({read}), or set frequency"
    time_of_day = wall.asi8 - wall.normalize().asi8
    if frequency in ("1d", "1w"):
        timed = time_of_day != 0
        if timed.any():
            pos = int(np.argmax(timed))
            raise SourceError(
                f"{label.origin}: {label(pos, symbol)} is {wall[pos]}, a time of day, but "
                f"frequency is {frequency!r} (one bar per {_unit(frequency)}, stamped with its "
                f"date); {fix} to the bars' real interval (e.g. '1h')"
            )
        days = wall.normalize()
        if n > 1 and days.nunique() == 1:
            raise SourceError(
                f"{label.origin}: all {n} rows of {symbol or 'the file'} fall on "
                f"{days[0].date()} ({label(0, symbol)} .. {label(n - 1, symbol)}), but frequency "
                f"is {frequency!r}; {fix}"
            )
        if frequency == "1w":
            weeks = days.to_period("W").asi8
            per_week = pd.Series(days.asi8).groupby(weeks).nunique()
            if (per_week > 1).any():
                rows = np.flatnonzero(weeks == per_week.index[per_week.to_numpy() > 1][0])
                a = int(rows[0])
                b = int(rows[np.argmax(days.asi8[rows] != days.asi8[a])])
                raise SourceError(
                    f"{label.origin}: {label(a, symbol)} and {label(b)} fall in the same week, "
                    f"but frequency is '1w'; {fix} (e.g. '1d')"
                )
        return
    order = np.argsort(parsed.utc.asi8, kind="stable")
    stamps = parsed.utc.asi8[order]
    steps = np.diff(stamps)
    interval = _INTERVAL_US[frequency]
    close = (steps > 0) & (steps < interval)
    if close.any():
        k = int(np.argmax(close))
        a, b = int(order[k]), int(order[k + 1])
        gap = pd.Timedelta(microseconds=int(steps[k]))
        raise SourceError(
            f"{label.origin}: {label(a, symbol)} and {label(b)} are {gap} apart, closer than "
            f"the frequency {frequency!r}; {fix} to the bars' real interval"
        )
    distinct = steps[steps > 0]
    if n > 2 and (time_of_day == 0).all() and len(distinct) and distinct.min() >= _DAY:
        raise SourceError(
            f"{label.origin}: every row of {symbol or 'the file'} is a date without a time of "
            f"day ({label(0, symbol)}, ...), which are daily bars, but frequency is "
            f"{frequency!r}; set frequency: '1d' (or '1w')"
        )


def _unit(frequency: str) -> str:
    return "week" if frequency == "1w" else "day"


__all__ = [
    "EPOCH_UNITS",
    "ParsedStamps",
    "RowLabels",
    "check_frequency",
    "check_order",
    "parse_timestamps",
    "stored_stamps",
]
