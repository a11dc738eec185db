"""Bars per year from the data frequency and the calendar, and SimConfig's resolution of it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tradeforge.core.errors import ConfigError
from tradeforge.sim import SimConfig, calendar_for, periods_per_year
from tradeforge.sim.annualization import parse_frequency


@pytest.mark.parametrize(
    ("frequency", "calendar", "expected"),
    [
        ("1d", "equity", 252),
        ("1w", "equity", 52),
        ("1h", "equity", 252 * 7),  # 09:30-16:00: six full hours and a half-hour bar
        ("30m", "equity", 252 * 13),
        ("15m", "equity", 252 * 26),
        ("5m", "equity", 252 * 78),
        ("1m", "equity", 252 * 390),
        ("4h", "equity", 252 * 2),
        ("1d", "crypto", 365),
        ("1h", "crypto", 365 * 24),
        ("1m", "crypto", 365 * 24 * 60),
        ("1w", "crypto", 52),
        ("1d", "fx", 260),
        ("1h", "fx", 260 * 24),
        ("15min", "fx", 260 * 96),
        ("1mo", "equity", 12),
        ("2d", "equity", 126),
    ],
)
def test_periods_per_year_by_frequency_and_calendar(
    frequency: str, calendar: str, expected: int
) -> None:
    assert periods_per_year(frequency, calendar) == expected


def test_bad_frequency_or_calendar_is_named() -> None:
    with pytest.raises(ConfigError, match="frequency = 'daily'"):
        periods_per_year("daily")
    with pytest.raises(ConfigError, match="frequency = '0h'"):
        periods_per_year("0h")
    with pytest.raises(ConfigError, match="calendar = 'bonds'"):
        periods_per_year("1d", "bonds")
    assert parse_frequency(" 15min ") == (15, "m")


def test_calendar_for_asset_classes() -> None:
    assert calendar_for(None) == "equity"
    assert calendar_for("index") == "equity"
    assert calendar_for("crypto") == "crypto"
    assert calendar_for("fx") == "fx"
    with pytest.raises(ConfigError, match="asset_class = 'bond'"):
        calendar_for("bond")


def test_sim_config_derives_periods_unless_set() -> None:
    sim = SimConfig()
    assert sim.periods_per_year is None
    assert sim.periods_for("1d") == 252
    assert sim.periods_for("1h") == 1764
    crypto = SimConfig(calendar="crypto")
    assert crypto.periods_for("1h") == 8760
    fixed = SimConfig(periods_per_year=250)
    assert fixed.periods_for("1h") == 250
    # resolved fills in the derived value once; an explicit value always wins
    assert sim.resolved_for("1h").periods_per_year == 1764
    assert sim.resolved(300).periods_per_year == 300
    assert fixed.resolved(300) is fixed
    assert fixed.resolved_for("1m").periods_per_year == 250
    with pytest.raises(ConfigError, match="periods_per_year = 0"):
        sim.resolved(0)
    with pytest.raises(ValidationError, match="periods_per_year"):
        SimConfig(periods_per_year=0)
    with pytest.raises(ValidationError, match="calendar"):
        SimConfig(calendar="bonds")  # type: ignore[arg-type]
