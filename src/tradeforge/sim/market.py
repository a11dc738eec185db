"""Market data as the simulator sees it: aligned (T, N) float64 arrays.

``MarketArrays`` is built once per panel and shared read-only by every step. Besides the raw
OHLCV fields it holds:

* ``vwap``: a real VWAP field where the panel has one (``panel.extra["vwap"]``), else the proxy
  (O+H+L+C)/4 of the same bar;
* ``mark``: the close carried forward from the PAST only (the last known close at or before t;
  NaN before an asset's first close). Positions are valued at ``mark``;
* ``volatility``: per-bar standard deviation of simple close-to-close returns over the last
  ``vol_window`` returns ending at t (uses closes up to and including t, never after);
* ``adv``: the trailing average bar volume (ADV for daily bars) over the last ``adv_window``
  bars ending at t (volumes up to and including t, never after). The participation cap and the
  square-root impact of an order decided at t read ``adv[t]``, never the fill bar's volume.

It also records the panel's ``frequency`` (for bars per year when ``SimConfig.periods_per_year``
is None) and the two windows it was built with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tradeforge.core.errors import SimulationError
from tradeforge.core.types import FloatArray
from tradeforge.sim.config import FillPrice, SimConfig


class PanelLike(Protocol):
    """What ``MarketArrays.from_panel`` reads (``tradeforge.data.BarPanel`` satisfies it)."""

    @property
    def open(self) -> FloatArray: ...
    @property
    def high(self) -> FloatArray: ...
    @property
    def low(self) -> FloatArray: ...
    @property
    def close(self) -> FloatArray: ...
    @property
    def volume(self) -> FloatArray: ...
    @property
    def extra(self) -> dict[str, FloatArray]: ...


def _frequency_of(panel: PanelLike) -> str:
    """The panel's ``frequency`` (``BarPanel.frequency``), "1d" when it has none."""
    freq = getattr(panel, "frequency", "1d")
    return freq if isinstance(freq, str) else "1d"


def forward_fill(values: FloatArray) -> FloatArray:
    """Carry the last finite value down the time axis (axis 0); leading NaNs stay NaN."""
    arr = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(arr)
    rows = np.where(valid, np.arange(arr.shape[0])[:, None], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    filled = np.take_along_axis(arr, rows, axis=0)
    seen = np.logical_or.accumulate(valid, axis=0)
    out: FloatArray = np.where(seen, filled, np.nan)
    return out


def rolling_volatility(close: FloatArray, window: int) -> FloatArray:
    """Std (ddof=1) of simple returns over the last ``window`` returns ending at each bar.

    Returns are taken between consecutive finite closes of each asset (holes are skipped, no
    value is invented). At least 2 returns are required; before that the result is NaN.
    """
    if window < 2:
        raise SimulationError(f"vol_window = {window}; expected an integer >= 2")
    mark = forward_fill(close)
    prev = np.empty_like(mark)
    prev[0] = np.nan
    prev[1:] = mark[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(np.isfinite(close) & (prev > 0), close / prev - 1.0, np.nan)
    ok = np.isfinite(ret)
    r0 = np.where(ok, ret, 0.0)
    # Rolling sums over the last `window` bars through cumulative sums (bars without a return
    # count as missing, not as zero returns).
    c1 = np.cumsum(r0, axis=0)
    c2 = np.cumsum(r0 * r0, axis=0)
    cn = np.cumsum(ok.astype(np.float64), axis=0)

    def lagged(c: FloatArray) -> FloatArray:
        out = np.zeros_like(c)
        out[window:] = c[:-window]
        return out

    n = cn - lagged(cn)
    s1 = c1 - lagged(c1)
    s2 = c2 - lagged(c2)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (s2 - s1 * s1 / n) / (n - 1.0)
    var = np.where(n >= 2, np.maximum(var, 0.0), np.nan)
    vol: FloatArray = np.sqrt(var)
    return vol


def rolling_mean_volume(volume: FloatArray, window: int) -> FloatArray:
    """Mean of the known volumes (finite, >= 0) among the last ``window`` bars ending at each bar.

    NaN where none of those bars has a known volume. Uses bars up to and including t only.
    """
    if window < 1:
        raise SimulationError(f"adv_window = {window}; expected an integer >= 1")
    vol = np.asarray(volume, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(vol) & (vol >= 0.0)
    c1 = np.cumsum(np.where(ok, vol, 0.0), axis=0)
    cn = np.cumsum(ok.astype(np.float64), axis=0)
    s1 = c1.copy()
    n = cn.copy()
    s1[window:] -= c1[:-window]
    n[window:] -= cn[:-window]
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(n > 0.5, s1 / n, np.nan)
    return out


@dataclass(frozen=True, eq=False)
class MarketArrays:
    """Read-only (T, N) float64 market arrays for the simulator (see the module docstring)."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    vwap: FloatArray
    volatility: FloatArray
    mark: FloatArray
    adv: FloatArray
    frequency: str = "1d"
    vol_window: int = 20
    adv_window: int = 20

    def __post_init__(self) -> None:
        shape = self.close.shape
        if len(shape) != 2:
            raise SimulationError(f"MarketArrays close has shape {shape}; expected (T, N)")
        for name in ("open", "high", "low", "volume", "vwap", "volatility", "mark", "adv"):
            arr = getattr(self, name)
            if arr.shape != shape:
                raise SimulationError(
                    f"MarketArrays field {name!r} has shape {arr.shape}; expected {shape}"
                )
        if shape[0] < 2:
            raise SimulationError(
                f"MarketArrays has {shape[0]} bars; at least 2 are needed to decide and fill"
            )

    @property
    def n_bars(self) -> int:
        return int(self.close.shape[0])

    @property
    def n_assets(self) -> int:
        return int(self.close.shape[1])

    def fill_prices(self, fill_price: FillPrice) -> FloatArray:
        """The (T, N) array orders fill at, for ``SimConfig.fill_price``."""
        if fill_price == "open":
            return self.open
        if fill_price == "close":
            return self.close
        if fill_price == "vwap":
            return self.vwap
        raise SimulationError(
            f"fill_price = {fill_price!r}; expected one of 'open', 'close', 'vwap'"
        )

    @classmethod
    def from_arrays(
        cls,
        open: FloatArray,
        high: FloatArray,
        low: FloatArray,
        close: FloatArray,
        volume: FloatArray,
        vol_window: int = 20,
        vwap: FloatArray | None = None,
        *,
        adv_window: int = 20,
        frequency: str = "1d",
    ) -> MarketArrays:
        """Build from raw (T, N) arrays (copied to contiguous float64, then made read-only)."""

        def prep(a: FloatArray | None, name: str) -> FloatArray:
            arr = np.array(a, dtype=np.float64, copy=True, order="C")
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.ndim != 2:
                raise SimulationError(f"market field {name!r} has {arr.ndim} dims; expected 2")
            return arr

        o, h, lo, c, v = (
            prep(open, "open"),
            prep(high, "high"),
            prep(low, "low"),
            prep(close, "close"),
            prep(volume, "volume"),
        )
        proxy = (o + h + lo + c) / 4.0
        if vwap is None:
            vw = proxy
        else:
            given = prep(vwap, "vwap")
            if given.shape != c.shape:
                raise SimulationError(
                    f"market field 'vwap' has shape {given.shape}; expected {c.shape}"
                )
            vw = np.where(np.isfinite(given), given, proxy)
        market = cls(
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=v,
            vwap=vw,
            volatility=rolling_volatility(c, vol_window),
            mark=forward_fill(c),
            adv=rolling_mean_volume(v, adv_window),
            frequency=frequency,
            vol_window=vol_window,
            adv_window=adv_window,
        )
        for name in _ARRAYS:
            getattr(market, name).setflags(write=False)
        return market

    @classmethod
    def from_panel(
        cls, panel: PanelLike, vol_window: int = 20, adv_window: int = 20
    ) -> MarketArrays:
        """Build from a ``BarPanel`` (or anything with its OHLCV fields and ``extra``)."""
        return cls.from_arrays(
            panel.open,
            panel.high,
            panel.low,
            panel.close,
            panel.volume,
            vol_window=vol_window,
            vwap=panel.extra.get("vwap"),
            adv_window=adv_window,
            frequency=_frequency_of(panel),
        )

    @classmethod
    def for_config(cls, panel: PanelLike, config: SimConfig) -> MarketArrays:
        """``from_panel`` with the windows of ``config`` (``vol_window``, ``adv_window``)."""
        return cls.from_panel(panel, config.vol_window, config.adv_window)


_ARRAYS = ("open", "high", "low", "close", "volume", "vwap", "volatility", "mark", "adv")

__all__ = [
    "MarketArrays",
    "PanelLike",
    "forward_fill",
    "rolling_mean_volume",
    "rolling_volatility",
]
