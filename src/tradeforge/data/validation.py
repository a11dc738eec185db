"""Bar validation: each rule finds problems and, per its configured action, rejects, repairs or
reports them. Repairs never look forward in time: a bad bar is dropped, or (only when
``forward_fill`` is set) replaced by the previous bar's close; nothing is ever back-filled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.core.errors import DataValidationError
from tradeforge.data.config import RuleAction, ValidationConfig
from tradeforge.data.frames import PRICE_FIELDS

_SPLIT_RATIOS: tuple[float, ...] = (2.0, 3.0, 4.0, 5.0, 10.0, 20.0)


@dataclass(frozen=True)
class Finding:
    """What one rule found in one symbol: how often, first timestamps, and what was done."""

    rule: str
    symbol: str
    field: str
    count: int
    timestamps: tuple[str, ...]
    action: str  # "repaired", "warned" or "rejected"
    detail: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["timestamps"] = list(self.timestamps)
        return out


@dataclass
class ValidationReport:
    """Findings for one symbol, with the row counts before and after repairs."""

    symbol: str
    rows_in: int
    rows_out: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.action == "rejected" for f in self.findings)

    @property
    def repairs(self) -> int:
        return sum(f.count for f in self.findings if f.action == "repaired")

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
        }


class _Context:
    def __init__(self, symbol: str, config: ValidationConfig, report: ValidationReport) -> None:
        self.symbol, self.config, self.report = symbol, config, report

    def action(self, rule: str) -> RuleAction:
        # None: the source-dependent default left unresolved (DataConfig.effective_validation
        # resolves it); outside a DataConfig the vendor default applies
        value: RuleAction | None = getattr(self.config, rule)
        return "repair" if value is None else value

    def record(
        self,
        rule: str,
        fld: str,
        stamps: pd.Series | pd.DatetimeIndex,
        problem: str,
        fix: str = "",
        repairable: bool = True,
    ) -> RuleAction:
        """Record a finding for ``stamps`` (non-empty); raise if the rule rejects.

        A problem that cannot be repaired without inventing data (a missing session) is
        recorded as ``warned`` under ``repair``.
        """
        action = self.action(rule)
        if action == "repair" and not repairable:
            action = "warn"
        shown = tuple(pd.Timestamp(t).isoformat() for t in list(stamps)[:5])
        if action == "error":
            raise DataValidationError(
                f"validation rule {rule!r} rejected {self.symbol} at {shown[0]}, field {fld!r}: "
                f"{problem} ({len(stamps)} bar(s)); fix the data or set validation.{rule} to "
                "'repair' or 'warn'"
            )
        done = {"repair": "repaired", "warn": "warned"}[action]
        detail = f"{problem}; {fix}" if action == "repair" and fix else problem
        self.report.findings.append(
            Finding(rule, self.symbol, fld, len(stamps), shown, done, detail)
        )
        return action


def validate_bars(
    frame: pd.DataFrame,
    symbol: str,
    config: ValidationConfig | None = None,
    calendar: str | None = None,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check a canonical frame; returns the (possibly repaired) frame and the report.

    ``calendar`` names an exchange calendar (e.g. ``XNYS``) for the gap rule, for daily bars of
    exchange-traded instruments only; pass None for FX, crypto and intraday bars.
    """
    cfg = config or ValidationConfig()
    report = ValidationReport(symbol=symbol, rows_in=len(frame))
    ctx = _Context(symbol, cfg, report)
    out = frame.reset_index(drop=True)
    for rule in _RULES:
        if ctx.action(rule.__name__.removeprefix("_rule_")) == "off":
            continue
        out = rule(out, ctx)
    if calendar and cfg.calendar_gap != "off" and len(out):
        out = _rule_calendar_gap(out, ctx, calendar)
    report.rows_out = len(out)
    return out.reset_index(drop=True), report


def _stamps(frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> pd.Series:
    stamps: pd.Series = frame["timestamp"][np.asarray(mask, dtype=bool)]
    return stamps


def _rule_unsorted_timestamp(frame: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    values = pd.DatetimeIndex(frame["timestamp"]).asi8
    back = np.zeros(len(values), dtype=bool)
    back[1:] = values[1:] < values[:-1]
    if back.any():
        act = ctx.record(
            "unsorted_timestamp", "timestamp", _stamps(frame, back), "out of order", "sorted"
        )
        if act == "repair":
            frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return frame


def _rule_duplicate_timestamp(frame: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    dup = frame["timestamp"].duplicated(keep="last").to_numpy()
    if dup.any():
        act = ctx.record(
            "duplicate_timestamp",
            "timestamp",
            _stamps(frame, dup),
            "duplicated",
            "kept the last row",
        )
        if act == "repair":
            frame = frame.loc[~dup].reset_index(drop=True)
    return frame


def _bad_rows(
    frame: pd.DataFrame, ctx: _Context, rule: str, bad: np.ndarray, what: str
) -> pd.DataFrame:
    """Drop rows marked ``bad`` or, with forward_fill, replace them by the previous close."""
    if not bad.any():
        return frame
    prices = frame[list(PRICE_FIELDS)].to_numpy(np.float64)
    fld = PRICE_FIELDS[int(np.argmax(bad[np.argmax(bad.any(axis=1))]))]
    rows: np.ndarray = np.asarray(bad.any(axis=1), dtype=bool)
    fill = ctx.config.forward_fill
    fix = "forward-filled from the previous close" if fill else "dropped the bar"
    if ctx.record(rule, fld, _stamps(frame, rows), what, fix) != "repair":
        return frame
    if not fill:
        return frame.loc[~rows].reset_index(drop=True)
    out = frame.copy()
    close = prices[:, 3].copy()
    close[rows] = np.nan
    prev_close = pd.Series(close).ffill().shift(1).to_numpy()
    for k, name in enumerate(PRICE_FIELDS):
        col = prices[:, k].copy()
        col[rows] = np.where(rows, prev_close, col)[rows]
        out[name] = col
    out.loc[rows, "volume"] = 0.0
    # a bad first bar has nothing before it to fill from: drop it
    return out.dropna(subset=list(PRICE_FIELDS)).reset_index(drop=True)


def _rule_nan_price(frame: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    bad = np.isnan(frame[list(PRICE_FIELDS)].to_numpy(np.float64))
    return _bad_rows(frame, ctx, "nan_price", bad, "missing price")


def _rule_non_positive_price(frame: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    with np.errstate(invalid="ignore"):
        bad = frame[list(PRICE_FIELDS)].to_numpy(np.float64) <= 0
    return _bad_rows(frame, ctx, "non_positive_price", bad, "price <= 0")


def _rule_high_below_low(frame: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    bad = (frame["high"] < frame["low"]).to_numpy()
    if bad.any():
        act = ctx.record(
            "high_below_low", "high", _stamps(frame, bad), "high < low", "swapped them"
        )
        if act == "repair":
            frame = frame.copy()
            high, low = frame["high"].to_numpy().copy(), frame["low"].to_numpy().copy()
            frame["high"] = np.where(bad, low, high)
            frame["low"] = np.where(bad, high, low)
    return frame


def _rule_open_close_outside_range(frame: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    o, h, low, c = (frame[k].to_numpy(np.float64) for k in PRICE_FIELDS)
    above = np.maximum(o, c) > h
    below = np.minimum(o, c) < low
    bad = above | below
    if bad.any():
        fld = "open" if ((o > h) | (o < low))[bad][0] else "close"
        act = ctx.record(
            "open_close_outside_range",
            fld,
            _stamps(frame, bad),
            "open/close outside [low, high]",
            "widened high/low to contain them",
        )
        if act == "repair":
            frame = frame.copy()
            frame["high"] = np.fmax(h, np.fmax(o, c))
            frame["low"] = np.fmin(low, np.fmin(o, c))
    return frame


def _rule_stale_series(frame: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    close = frame["close"].to_numpy(np.float64)
    if len(close) < ctx.config.stale_bars:
        return frame
    same = np.zeros(len(close), dtype=bool)
    same[1:] = close[1:] == close[:-1]
    run_id = np.cumsum(~same)
    run_len = np.bincount(run_id)[run_id]
    stale = same & (run_len >= ctx.config.stale_bars)
    if stale.any():
        act = ctx.record(
            "stale_series",
            "close",
            _stamps(frame, stale),
            f"close unchanged for >= {ctx.config.stale_bars} bars",
            "dropped the repeats",
        )
        if act == "repair":
            frame = frame.loc[~stale].reset_index(drop=True)
    return frame


def _log_returns(frame: pd.DataFrame) -> np.ndarray:
    close = frame["close"].to_numpy(np.float64)
    out = np.full(len(close), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:] = np.log(close[1:] / close[:-1])
    return out


def _split_hits(frame: pd.DataFrame, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Bars whose open and close, against the previous close, both move by about 1/k or k for a
    common split ratio k (a split gaps at the open and stays there)."""
    ratio = np.exp(_log_returns(frame))
    close = frame["close"].to_numpy(np.float64)
    gap = np.full(len(close), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap[1:] = frame["open"].to_numpy(np.float64)[1:] / close[:-1]
    hit = np.zeros(len(ratio), dtype=bool)
    factor = np.ones(len(ratio))
    for k in _SPLIT_RATIOS:
        for target in (1.0 / k, k):
            near = (np.abs(ratio / target - 1.0) < tol) & (np.abs(gap / target - 1.0) < 2 * tol)
            hit |= near
            factor = np.where(near, target, factor)
    return hit, factor


def _rule_split_jump(frame: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    hit, factor = _split_hits(frame, ctx.config.split_tolerance)
    if not hit.any():
        return frame
    act = ctx.record(
        "split_jump",
        "close",
        _stamps(frame, hit),
        "open and close jump by a split-like ratio",
        "earlier bars re-scaled by the ratio",
    )
    if act == "repair":
        frame = frame.copy()
        # scale every bar before a jump by the product of the later jumps' ratios
        later = np.cumprod(np.where(hit, factor, 1.0)[::-1])[::-1]
        scale = np.append(later[1:], 1.0)
        for name in PRICE_FIELDS:
            frame[name] = frame[name].to_numpy(np.float64) * scale
        frame["volume"] = frame["volume"].to_numpy(np.float64) / scale
    return frame


def _rule_outlier_return(frame: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    r = _log_returns(frame)
    finite = r[np.isfinite(r)]
    if len(finite) < 20:
        return frame
    mad = float(np.median(np.abs(finite - np.median(finite)))) * 1.4826
    limit = max(ctx.config.outlier_min_abs_return, ctx.config.outlier_sigma * mad)
    split_hit, _ = _split_hits(frame, ctx.config.split_tolerance)
    skip = split_hit if ctx.config.split_jump != "off" else np.zeros(len(r), dtype=bool)
    bad = (np.abs(np.nan_to_num(r)) > limit) & ~skip
    if bad.any():
        act = ctx.record(
            "outlier_return",
            "close",
            _stamps(frame, bad),
            f"|log return| > {limit:.3f}",
            "dropped the bar",
        )
        if act == "repair":
            frame = frame.loc[~bad].reset_index(drop=True)
    return frame


@lru_cache(maxsize=8)
def _sessions(calendar: str) -> pd.DatetimeIndex:
    import exchange_calendars as xcals

    try:
        cal = xcals.get_calendar(calendar)
    except Exception as exc:
        raise DataValidationError(
            f"validation.calendar = {calendar!r} is not a known exchange calendar ({exc}); "
            "use e.g. XNYS"
        ) from None
    return pd.DatetimeIndex(cal.sessions).tz_localize("UTC")


def _rule_calendar_gap(frame: pd.DataFrame, ctx: _Context, calendar: str) -> pd.DataFrame:
    sessions = _sessions(calendar)
    days = pd.DatetimeIndex(frame["timestamp"]).normalize()
    inside = sessions[(sessions >= days[0]) & (sessions <= days[-1])]
    if days[0] < sessions[0] or days[-1] > sessions[-1]:
        return frame  # outside the calendar's range: cannot judge
    missing = inside.difference(days)
    extra = ~days.isin(sessions)
    if len(missing):
        ctx.record(
            "calendar_gap",
            "timestamp",
            missing,
            f"{len(missing)} {calendar} session(s) have no bar (not filled)",
            repairable=False,
        )
    if extra.any():
        act = ctx.record(
            "calendar_gap",
            "timestamp",
            _stamps(frame, extra),
            f"bar(s) on days that are not {calendar} sessions",
            "dropped them",
        )
        if act == "repair":
            frame = frame.loc[~extra].reset_index(drop=True)
    return frame


_RULES: tuple[Callable[[pd.DataFrame, _Context], pd.DataFrame], ...] = (
    _rule_unsorted_timestamp,
    _rule_duplicate_timestamp,
    _rule_nan_price,
    _rule_non_positive_price,
    _rule_high_below_low,
    _rule_open_close_outside_range,
    _rule_stale_series,
    _rule_split_jump,
    _rule_outlier_return,
)

__all__ = ["Finding", "ValidationReport", "validate_bars"]
