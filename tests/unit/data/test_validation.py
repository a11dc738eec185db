"""Every validation rule: reject (error names symbol, time, field), repair (recorded), warn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradeforge.core.errors import DataValidationError
from tradeforge.data.config import ValidationConfig
from tradeforge.data.validation import validate_bars

QUIET = {
    "calendar_gap": "off",
    "stale_series": "off",
    "outlier_return": "off",
    "split_jump": "off",
}


def bars(n: int = 40, start: str = "2024-01-02", seed: int = 3) -> pd.DataFrame:
    """Synthetic, internally consistent daily bars (edge-case tests only)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * 1.005
    low = np.minimum(open_, close) * 0.995
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=n, freq="D", tz="UTC"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": np.full(n, 1e6),
        }
    )


def cfg(**rules: object) -> ValidationConfig:
    return ValidationConfig(**{**QUIET, **rules})


def only_finding(report, rule: str):
    found = [f for f in report.findings if f.rule == rule]
    assert len(found) == 1, report.findings
    return found[0]


def test_clean_bars_pass_untouched() -> None:
    frame = bars()
    out, report = validate_bars(frame, "SYN", ValidationConfig(calendar_gap="off"))
    assert report.findings == []
    assert report.ok
    assert report.rows_in == report.rows_out == 40
    pd.testing.assert_frame_equal(out, frame)


@pytest.mark.parametrize("bad", [np.nan, 0.0, -1.0])
def test_bad_price_rejected_with_symbol_time_field(bad: float) -> None:
    frame = bars()
    frame.loc[5, "low"] = bad
    rule = "nan_price" if np.isnan(bad) else "non_positive_price"
    with pytest.raises(DataValidationError) as info:
        validate_bars(frame, "SYN", cfg(**{rule: "error"}))
    message = str(info.value)
    assert f"rule {rule!r} rejected SYN at 2024-01-07T00:00:00+00:00, field 'low'" in message
    assert f"validation.{rule}" in message  # names the fix


def test_bad_price_repaired_by_dropping_and_recorded() -> None:
    frame = bars()
    frame.loc[[5, 9], "close"] = [np.nan, -3.0]
    out, report = validate_bars(frame, "SYN", cfg())
    assert len(out) == 38
    assert frame["timestamp"][5] not in set(out["timestamp"])
    nan = only_finding(report, "nan_price")
    assert (nan.action, nan.field, nan.count) == ("repaired", "close", 1)
    assert nan.timestamps == ("2024-01-07T00:00:00+00:00",)
    assert "dropped the bar" in nan.detail
    assert only_finding(report, "non_positive_price").timestamps == ("2024-01-11T00:00:00+00:00",)
    assert report.repairs == 2


def test_forward_fill_uses_only_the_previous_close_never_a_later_bar() -> None:
    frame = bars()
    frame.loc[0, "open"] = np.nan  # nothing before it: dropped, not back-filled
    frame.loc[6, "high"] = np.nan
    out, report = validate_bars(frame, "SYN", cfg(forward_fill=True))
    assert len(out) == 39
    assert out["timestamp"].iloc[0] == frame["timestamp"][1]
    filled = out[out["timestamp"] == frame["timestamp"][6]].iloc[0]
    prev_close = frame["close"][5]
    for name in ("open", "high", "low", "close"):
        assert filled[name] == prev_close
    assert filled["volume"] == 0.0
    assert "forward-filled from the previous close" in only_finding(report, "nan_price").detail


def test_high_below_low_swapped_or_rejected() -> None:
    frame = bars()
    hi, lo = frame.loc[3, "high"], frame.loc[3, "low"]
    frame.loc[3, ["high", "low"]] = [lo, hi]
    out, report = validate_bars(frame, "SYN", cfg())
    assert out.loc[3, "high"] == hi
    assert out.loc[3, "low"] == lo
    assert only_finding(report, "high_below_low").action == "repaired"
    with pytest.raises(DataValidationError, match=r"2024-01-05.*field 'high': high < low"):
        validate_bars(frame, "SYN", cfg(high_below_low="error"))


def test_open_close_outside_range_widens_high_low() -> None:
    frame = bars()
    frame.loc[4, "close"] = frame.loc[4, "high"] + 1.0
    frame.loc[8, "open"] = frame.loc[8, "low"] - 1.0
    out, report = validate_bars(frame, "SYN", cfg())
    assert out.loc[4, "high"] == frame.loc[4, "close"]
    assert out.loc[8, "low"] == frame.loc[8, "open"]
    finding = only_finding(report, "open_close_outside_range")
    assert finding.count == 2
    with pytest.raises(DataValidationError, match="field 'close': open/close outside"):
        validate_bars(frame, "SYN", cfg(open_close_outside_range="error"))


def test_duplicate_timestamps_keep_the_last_row() -> None:
    frame = bars()
    dup = frame.iloc[[7]].copy()
    dup["close"] = frame.loc[7, "close"] * 1.001
    frame = pd.concat([frame.iloc[:8], dup, frame.iloc[8:]], ignore_index=True)
    out, report = validate_bars(frame, "SYN", cfg())
    assert len(out) == 40
    assert out.loc[7, "close"] == dup["close"].iloc[0]
    assert only_finding(report, "duplicate_timestamp").timestamps == ("2024-01-09T00:00:00+00:00",)
    with pytest.raises(DataValidationError, match=r"duplicate_timestamp.*2024-01-09"):
        validate_bars(frame, "SYN", cfg(duplicate_timestamp="error"))


def test_out_of_order_timestamps_are_sorted() -> None:
    frame = bars()
    swapped = frame.iloc[[0, 1, 3, 2, *range(4, 40)]].reset_index(drop=True)
    out, report = validate_bars(swapped, "SYN", cfg())
    pd.testing.assert_frame_equal(out, frame)
    assert only_finding(report, "unsorted_timestamp").timestamps == ("2024-01-04T00:00:00+00:00",)
    with pytest.raises(DataValidationError, match=r"unsorted_timestamp.*out of order"):
        validate_bars(swapped, "SYN", cfg(unsorted_timestamp="error"))


def test_calendar_gaps_reported_not_filled_and_non_sessions_dropped() -> None:
    days = pd.bdate_range("2024-01-02", "2024-01-31", tz="UTC")  # includes MLK day 01-15
    frame = bars(len(days))
    frame["timestamp"] = days
    frame = frame[frame["timestamp"] != pd.Timestamp("2024-01-10", tz="UTC")]
    out, report = validate_bars(frame, "SYN", cfg(calendar_gap="repair"), calendar="XNYS")
    gaps = [f for f in report.findings if f.rule == "calendar_gap"]
    missing = next(f for f in gaps if "have no bar" in f.detail)
    extra = next(f for f in gaps if "not XNYS sessions" in f.detail)
    assert missing.timestamps == ("2024-01-10T00:00:00+00:00",)
    assert missing.action == "warned"
    assert "not filled" in missing.detail
    assert extra.action == "repaired"
    assert extra.timestamps == ("2024-01-15T00:00:00+00:00",)
    assert pd.Timestamp("2024-01-10", tz="UTC") not in set(out["timestamp"])  # no fill
    assert pd.Timestamp("2024-01-15", tz="UTC") not in set(out["timestamp"])
    assert len(out) == len(frame) - 1
    with pytest.raises(DataValidationError, match=r"calendar_gap.*2024-01-10"):
        validate_bars(frame, "SYN", cfg(calendar_gap="error"), calendar="XNYS")


def test_unknown_calendar_names_the_setting() -> None:
    with pytest.raises(DataValidationError, match=r"validation.calendar = 'NOPE'"):
        validate_bars(bars(), "SYN", cfg(calendar_gap="warn"), calendar="NOPE")


def test_stale_flat_series() -> None:
    frame = bars()
    frame.loc[10:21, ["open", "high", "low", "close"]] = frame.loc[10, "close"]
    out, report = validate_bars(frame, "SYN", cfg(stale_series="warn", stale_bars=10))
    finding = only_finding(report, "stale_series")
    assert (finding.action, finding.count) == ("warned", 11)
    assert finding.timestamps[0] == "2024-01-13T00:00:00+00:00"
    assert len(out) == 40  # warn changes nothing
    out, _ = validate_bars(frame, "SYN", cfg(stale_series="repair", stale_bars=10))
    assert len(out) == 29
    with pytest.raises(DataValidationError, match="'stale_series' rejected SYN"):
        validate_bars(frame, "SYN", cfg(stale_series="error"))


def test_short_flat_run_is_not_stale() -> None:
    frame = bars()
    frame.loc[10:13, "close"] = frame.loc[10, "close"]
    frame.loc[10:13, ["open", "high", "low"]] = frame.loc[10, "close"]
    _, report = validate_bars(frame, "SYN", cfg(stale_series="error", stale_bars=10))
    assert report.findings == []


def test_outlier_return_flagged_at_its_bar() -> None:
    frame = bars()
    frame.loc[20, ["open", "high", "low", "close"]] *= 1.8
    out, report = validate_bars(frame, "SYN", cfg(outlier_return="warn"))
    finding = only_finding(report, "outlier_return")
    # the spike and the fall back are both outliers
    assert finding.timestamps == ("2024-01-22T00:00:00+00:00", "2024-01-23T00:00:00+00:00")
    assert len(out) == 40
    out, _ = validate_bars(frame, "SYN", cfg(outlier_return="repair"))
    assert len(out) == 38
    with pytest.raises(DataValidationError, match=r"outlier_return.*2024-01-22.*field 'close'"):
        validate_bars(frame, "SYN", cfg(outlier_return="error"))


def test_split_jump_detected_repaired_and_not_an_outlier() -> None:
    frame = bars()
    frame.loc[25:, ["open", "high", "low", "close"]] /= 2.0  # unadjusted 2:1 split
    frame.loc[25:, "volume"] *= 2.0
    _warned_out, report = validate_bars(frame, "SYN", cfg(split_jump="warn", outlier_return="warn"))
    finding = only_finding(report, "split_jump")
    assert finding.timestamps == ("2024-01-27T00:00:00+00:00",)
    assert not [f for f in report.findings if f.rule == "outlier_return"]
    out, report = validate_bars(frame, "SYN", cfg(split_jump="repair"))
    reference = bars()
    np.testing.assert_allclose(out["close"] * 2.0, reference["close"])
    np.testing.assert_allclose(out["volume"], reference["volume"] * 2.0)
    assert only_finding(report, "split_jump").action == "repaired"
    with pytest.raises(DataValidationError, match=r"split_jump.*2024-01-27"):
        validate_bars(frame, "SYN", cfg(split_jump="error"))


def test_report_serialises() -> None:
    frame = bars()
    frame.loc[2, "close"] = np.nan
    _, report = validate_bars(frame, "SYN", cfg())
    data = report.to_dict()
    assert data["symbol"] == "SYN"
    assert data["rows_in"] == 40
    assert data["rows_out"] == 39
    assert data["findings"][0]["rule"] == "nan_price"
    assert data["findings"][0]["timestamps"] == ["2024-01-04T00:00:00+00:00"]
