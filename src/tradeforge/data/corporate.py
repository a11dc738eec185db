"""Corporate actions and point-in-time fundamentals.

Actions frames have ``ex_date`` (UTC), ``kind`` (``split``: new shares per old share;
``dividend``: cash per share) and ``value``. Fundamentals frames have ``published`` (UTC, when
the figure became public), ``period_end``, ``item`` and ``value``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeforge.core.errors import DataError
from tradeforge.data.frames import PRICE_FIELDS


def adjust_for_actions(bars: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Back-adjust raw bars for splits and cash dividends (total-return style).

    Bars before an ex-date are scaled so the series has no jump there: by ``1 / ratio`` for a
    split and by ``1 - dividend / previous close`` for a dividend. Volume moves inversely for
    splits only. Adjusted history is what a backtest uses; live decisions see the same factors
    once the ex-date has passed.
    """
    missing = [c for c in ("ex_date", "kind", "value") if c not in actions.columns]
    if missing:
        raise DataError(f"actions frame lacks columns {missing}; expected ex_date, kind, value")
    out = bars.copy()
    stamps = pd.DatetimeIndex(out["timestamp"])
    close = out["close"].to_numpy(np.float64)
    price_factor = np.ones(len(out))
    volume_factor = np.ones(len(out))
    for ex_date, kind, value in actions[["ex_date", "kind", "value"]].itertuples(index=False):
        before = stamps < pd.Timestamp(ex_date)
        if not before.any() or before.all():
            continue
        if kind == "split":
            if value <= 0:
                raise DataError(f"split ratio {value!r} at {ex_date} must be > 0")
            price_factor[before] /= value
            volume_factor[before] *= value
        elif kind == "dividend":
            prev_close = close[np.flatnonzero(before)[-1]]
            price_factor[before] *= 1.0 - value / prev_close
        else:
            raise DataError(f"unknown action kind {kind!r}; expected 'split' or 'dividend'")
    for name in PRICE_FIELDS:
        out[name] = out[name].to_numpy(np.float64) * price_factor
    out["volume"] = out["volume"].to_numpy(np.float64) * volume_factor
    return out


def fundamentals_asof(fundamentals: pd.DataFrame, when: object) -> pd.Series:
    """The latest value of every item published at or before ``when`` (never a later filing)."""
    ts = pd.Timestamp(when)  # type: ignore[arg-type]
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    known = fundamentals[pd.DatetimeIndex(fundamentals["published"]) <= ts]
    if known.empty:
        return pd.Series(dtype=np.float64, name=ts)
    latest = known.sort_values(["published", "period_end"]).groupby("item").last()
    return latest["value"].astype(np.float64).rename(ts)


__all__ = ["adjust_for_actions", "fundamentals_asof"]
