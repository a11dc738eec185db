"""Benchmark the feature pipeline against the ``ta`` package on a 500-symbol x 5-year daily panel.

Panel: built from the bundled *real* daily series with volume (SP500, NASDAQ, AAPL, IBM, MSFT,
GOOG, GOOGL). Symbol ``i`` is a 1,258-bar stretch of base series ``i mod 7``, starting
``23 * (i // 7)`` bars into that series (wrapping inside its history), prices scaled by
``1 + 0.002 * i``, re-stamped onto the last 1,258 business days of 2014-2018. Every column is a
real price path under a distinct name.

Timed side by side in one process, on the default feature set (``FeatureSpec.default()``:
logret_1/5/20, rsi_14, macd_hist_pct_12_26_9, bb_pctb_20_2, natr_14, vol_20, volume_z_20):

* ours, batch: ``FeaturePipeline.transform`` on the whole (T, N) panel (numpy over time x
  symbol), and ``fit`` + ``transform`` together;
* peer ``ta`` (pandas-based; pandas-ta is not installable): the same indicators per symbol,
  one ``pandas.Series`` at a time, with ``ta`` classes where it has them (RSIIndicator, MACD,
  BollingerBands, AverageTrueRange) and pandas rolling for returns, volatility and volume z;
* reference ``talib`` (C) per symbol, for context;
* ours, online: ``update(bar)`` after ``warm_start`` on the 500-symbol panel (bars/s and
  symbol-bars/s) and on one symbol.

A value check compares ours and ``ta`` after a 300-bar warm-up (``ta`` seeds its EMAs at the
first value instead of TA-Lib's SMA seed, so early bars differ by design).

Run: ``python benchmarks/bench_features.py`` (writes benchmarks/results/features.json).
"""

from __future__ import annotations

import json
import os
import platform
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import talib
from rich.console import Console
from rich.table import Table
from ta.momentum import RSIIndicator
from ta.trend import MACD
from ta.volatility import AverageTrueRange, BollingerBands

from _timing import best_of
from tradeforge.data.bundled import bundled_frame
from tradeforge.data.panel import OHLCV, BarPanel
from tradeforge.features import FeaturePipeline, FeatureSpec, panel_bar

N_SYMBOLS = 500
N_BARS = 1258
BASES = ("SP500", "NASDAQ", "AAPL", "IBM", "MSFT", "GOOG", "GOOGL")
RESULTS = Path(__file__).resolve().parent / "results" / "features.json"
ONLINE_BARS = 250


def build_panel() -> BarPanel:
    stamps = pd.bdate_range("2014-01-01", "2018-12-31", tz="UTC")[-N_BARS:]
    bases = {b: bundled_frame(b) for b in BASES}
    arrays = {f: np.empty((N_BARS, N_SYMBOLS)) for f in OHLCV}
    symbols = []
    for i in range(N_SYMBOLS):
        name = BASES[i % len(BASES)]
        base = bases[name]
        start = (23 * (i // len(BASES))) % (len(base) - N_BARS)
        part = base.iloc[start : start + N_BARS]
        scale = 1.0 + 0.002 * i
        for f in OHLCV:
            col = part[f].to_numpy(np.float64)
            arrays[f][:, i] = col if f == "volume" else col * scale
        symbols.append(f"B{i:03d}_{name}")
    return BarPanel(stamps, tuple(symbols), **arrays)


def ta_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The default feature set for one symbol with the ``ta`` package and pandas."""
    c, h, lo, v = frame["close"], frame["high"], frame["low"], frame["volume"]
    lr = np.log(c / c.shift(1))
    macd = MACD(c, window_slow=26, window_fast=12, window_sign=9)
    atr = AverageTrueRange(h, lo, c, window=14).average_true_range()
    return pd.DataFrame(
        {
            "logret_1": lr,
            "logret_5": np.log(c / c.shift(5)),
            "logret_20": np.log(c / c.shift(20)),
            "rsi_14": RSIIndicator(c, window=14).rsi(),
            "macd_hist_pct_12_26_9": macd.macd_diff() / c,
            "bb_pctb_20_2": BollingerBands(c, window=20, window_dev=2).bollinger_pband(),
            "natr_14": 100.0 * atr / c,
            "vol_20": lr.rolling(20).std(),
            "volume_z_20": (v - v.rolling(20).mean()) / v.rolling(20).std(ddof=0),
        }
    )


def talib_features(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray
) -> list[np.ndarray]:
    lr = np.log(c[1:] / c[:-1])
    return [
        talib.RSI(c, 14),
        talib.MACD(c, 12, 26, 9)[2] / c,
        talib.BBANDS(c, 20, 2, 2)[0],
        talib.NATR(h, lo, c, 14),
        talib.STDDEV(lr, 20) * np.sqrt(20 / 19),
        talib.SMA(v, 20),
        talib.STDDEV(v, 20),
        np.log(c / talib.SMA(c, 1)),
    ]


def main() -> None:
    console = Console()
    panel = build_panel()
    spec = FeatureSpec.default()
    raw_spec = spec.model_copy(update={"scaler": "none"})
    fit_end = panel.index[800]

    t_ours, ours = best_of(lambda: FeaturePipeline(raw_spec).transform(panel), 3)
    t_fit_transform, _ = best_of(
        lambda: FeaturePipeline(spec).fit(panel, None, fit_end).transform(panel), 3
    )

    frames = [
        pd.DataFrame({f: panel.field(f)[:, j] for f in OHLCV}, index=panel.index)
        for j in range(panel.n_symbols)
    ]

    def run_ta() -> list[pd.DataFrame]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [ta_features(f) for f in frames]

    t_ta, ta_out = best_of(run_ta, 2)
    cols = [(panel.field(f)[:, j].copy() for f in OHLCV) for j in range(panel.n_symbols)]
    columns = [tuple(next(g) for _ in OHLCV) for g in cols]
    t_talib, _ = best_of(lambda: [talib_features(*x) for x in columns], 3)

    # value check after the warm-up
    check: dict[str, float] = {}
    for f, name in enumerate(ours.names):
        ref = np.stack([d[name].to_numpy() for d in ta_out], axis=1)[300:]
        mine = ours.values[300:, :, f]
        scale = np.nanmax(np.abs(ref)) or 1.0
        check[name] = float(np.nanmax(np.abs(mine - ref)) / scale)

    # online
    pipe = FeaturePipeline(spec).fit(panel, None, fit_end)
    split = N_BARS - ONLINE_BARS
    pipe.warm_start(panel.iloc(slice(0, split)))
    bars = [panel_bar(panel, i) for i in range(split, N_BARS)]
    t0 = time.perf_counter()
    online = np.stack([pipe.update(b) for b in bars])
    t_online = time.perf_counter() - t0
    batch_scaled = pipe.transform(panel).values[split:]
    online_err = float(np.nanmax(np.abs(online - batch_scaled)))

    one = panel.select([panel.symbols[0]])
    pipe1 = FeaturePipeline(spec).fit(one, None, fit_end)
    pipe1.warm_start(one.iloc(slice(0, split)))
    bars1 = [panel_bar(one, i) for i in range(split, N_BARS)]
    t0 = time.perf_counter()
    for b in bars1:
        pipe1.update(b)
    t_online1 = time.perf_counter() - t0

    speedup = t_ta / t_ours
    table = Table(title=f"Features: default set, {N_SYMBOLS} symbols x {N_BARS} daily bars")
    for col in ("what", "seconds", "vs ours (x slower)"):
        table.add_column(col)
    table.add_row("ours: transform (batch, raw)", f"{t_ours:.3f}", "1.0")
    table.add_row(
        "ours: fit + transform (zscore)",
        f"{t_fit_transform:.3f}",
        f"{t_fit_transform / t_ours:.1f}",
    )
    table.add_row("ta (pandas) per symbol", f"{t_ta:.3f}", f"{speedup:.1f}")
    table.add_row("talib (C) per symbol, reference", f"{t_talib:.3f}", f"{t_talib / t_ours:.2f}")
    console.print(table)
    online_table = Table(title="Online update(bar)")
    for col in ("panel", "bars/s", "symbol-bars/s", "max |online - batch|"):
        online_table.add_column(col)
    online_table.add_row(
        f"{N_SYMBOLS} symbols",
        f"{ONLINE_BARS / t_online:.0f}",
        f"{ONLINE_BARS * N_SYMBOLS / t_online:,.0f}",
        f"{online_err:.1e}",
    )
    online_table.add_row(
        "1 symbol", f"{ONLINE_BARS / t_online1:.0f}", f"{ONLINE_BARS / t_online1:,.0f}", ""
    )
    console.print(online_table)
    console.print(f"max relative |ours - ta| after 300 bars: {max(check.values()):.2e}")

    result = {
        "benchmark": "features",
        "timestamp": datetime.now(UTC).isoformat(),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "panel": {
            "symbols": N_SYMBOLS,
            "bars": N_BARS,
            "construction": "shifted, scaled windows of bundled SP500, NASDAQ, AAPL, IBM, MSFT, GOOG, GOOGL",
        },
        "features": list(ours.names),
        "seconds": {
            "ours_transform": t_ours,
            "ours_fit_transform": t_fit_transform,
            "ta_per_symbol": t_ta,
            "talib_per_symbol": t_talib,
        },
        "ratios": {
            "ta_over_ours": speedup,
            "talib_over_ours": t_talib / t_ours,
            "target_ta_over_ours": 10.0,
        },
        "online": {
            "bars": ONLINE_BARS,
            "bars_per_s_500_symbols": ONLINE_BARS / t_online,
            "symbol_bars_per_s_500_symbols": ONLINE_BARS * N_SYMBOLS / t_online,
            "bars_per_s_1_symbol": ONLINE_BARS / t_online1,
            "max_abs_online_minus_batch": online_err,
        },
        "value_check_max_rel_diff_vs_ta_after_300_bars": check,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2), encoding="utf-8")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
