"""Bars per year from the data frequency and the trading calendar of the market.

``periods_per_year(frequency, calendar)`` is the number of bars a year of data holds:

* ``equity``: 252 trading days of one 6.5-hour session (09:30-16:00); an intraday bar count per
  session is rounded up, since a session that does not divide evenly still ends with a (short)
  bar: ``1h`` -> 7 bars a session, 1,764 a year; ``30m`` -> 13, 3,276; ``1m`` -> 390, 98,280;
  ``1d`` -> 252; ``1w`` -> 52.
* ``crypto``: 365 days of 24 hours (``1h`` -> 8,760; ``1d`` -> 365; ``1w`` -> 52).
* ``fx``: 260 days of 24 hours (Sunday 17:00 to Friday 17:00 New York, 120 hours a week:
  ``1h`` -> 6,240; ``1d`` -> 260; ``1w`` -> 52).

Frequencies are ``<n><unit>`` with unit ``m``/``min`` (minutes), ``h``, ``d``, ``w`` or ``mo``
(months, 12 a year): ``"1m"``, ``"15m"``, ``"4h"``, ``"1d"``, ``"1w"``. Every figure that
annualises (metrics, the deflated Sharpe ratio, per-bar borrow, margin and interest rates)
should use the same number: :meth:`tradeforge.sim.SimConfig.periods_for` returns an explicit
``SimConfig.periods_per_year`` when one is set and this derivation otherwise.
"""

from __future__ import annotations

import math
import re
from typing import Literal, get_args

from tradeforge.core.errors import ConfigError

Calendar = Literal["equity", "crypto", "fx"]
CALENDARS: tuple[str, ...] = get_args(Calendar)

#: Trading days per year and trading hours per day of each calendar.
TRADING_DAYS: dict[str, int] = {"equity": 252, "crypto": 365, "fx": 260}
SESSION_HOURS: dict[str, float] = {"equity": 6.5, "crypto": 24.0, "fx": 24.0}
WEEKS_PER_YEAR = 52
MONTHS_PER_YEAR = 12

_FREQUENCY = re.compile(r"^\s*(\d+)\s*(min|mo|m|h|d|w)\s*$")
_EPS = 1e-9  # 6.5 h / 30 min = 13.000000000000002 must stay 13 bars


def parse_frequency(frequency: str) -> tuple[int, str]:
    """``"15m"`` -> ``(15, "m")``; units ``m`` (also ``min``), ``h``, ``d``, ``w``, ``mo``."""
    match = _FREQUENCY.match(frequency) if isinstance(frequency, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ConfigError(
            f"frequency = {frequency!r}; expected '<n><unit>' with n >= 1 and unit one of "
            "m (minutes), h, d, w, mo, e.g. '1m', '1h', '1d', '1w'"
        )
    unit = "m" if match.group(2) == "min" else match.group(2)
    return int(match.group(1)), unit


def periods_per_year(frequency: str, calendar: Calendar | str = "equity") -> int:
    """Bars per year of data at ``frequency`` on ``calendar`` (see the module docstring)."""
    if calendar not in TRADING_DAYS:
        raise ConfigError(f"calendar = {calendar!r}; expected one of {', '.join(CALENDARS)}")
    n, unit = parse_frequency(frequency)
    days = TRADING_DAYS[calendar]
    if unit in ("m", "h"):
        bar_minutes = n * (60 if unit == "h" else 1)
        session_minutes = SESSION_HOURS[calendar] * 60.0
        per_session = max(1, math.ceil(session_minutes / bar_minutes - _EPS))
        return days * per_session
    if unit == "d":
        return max(1, round(days / n))
    if unit == "w":
        return max(1, round(WEEKS_PER_YEAR / n))
    return max(1, round(MONTHS_PER_YEAR / n))


def calendar_for(asset_class: str | None) -> Calendar:
    """The calendar of an asset class (``DataConfig.asset_class``): ``crypto`` and ``fx`` keep
    their own, ``equity``, ``index`` and unknown (None) use the equity calendar."""
    if asset_class == "crypto":
        return "crypto"
    if asset_class == "fx":
        return "fx"
    if asset_class in (None, "equity", "index"):
        return "equity"
    raise ConfigError(
        f"asset_class = {asset_class!r}; expected one of 'equity', 'index', 'crypto', 'fx' or None"
    )


__all__ = [
    "CALENDARS",
    "SESSION_HOURS",
    "TRADING_DAYS",
    "Calendar",
    "calendar_for",
    "parse_frequency",
    "periods_per_year",
]
