"""Benchmark the bar store: ingest throughput and reading a 500-symbol x 5-year daily panel.

The store is built from the bundled *real* daily series (SP500, NASDAQ, AAPL, IBM, MSFT, GOOG,
GOOGL, WTI, VIX). Symbol ``i`` takes a 1,258-bar window of base series ``i mod 9``, starting
``37 * (i // 9)`` bars into that series (a different stretch of history for each copy, wrapping
inside what the series holds), scaled by ``1 + 0.002 * i`` (prices; volume unchanged) and
re-stamped onto the 1,258 XNYS sessions of 2014-2018. So every partition is a real price
path under a distinct name (``B000_SP500`` ...), on one shared trading calendar.

Timed side by side in one process:

* ours: ``ParquetStore.read_panel`` (pyarrow per file, straight into preallocated float64
  arrays) -> ``BarPanel`` with (T, N) arrays;
* naive peer: ``pandas.read_parquet`` per file + ``concat`` + ``pivot`` per field -> numpy;
* DuckDB peer: one ``read_parquet`` over the glob + ``pivot`` per field -> numpy.

Ingest throughput is measured twice: the full ``ingest`` path (validation rules incl. the XNYS
calendar check, atomic Parquet write, DuckDB catalog upsert) and raw ``write_bars``.

Run: ``python benchmarks/bench_data.py`` (writes benchmarks/results/data.json).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from _timing import best_of
from tradeforge.data import DataConfig, ParquetStore, ingest
from tradeforge.data.bundled import bundled_frame
from tradeforge.data.config import ValidationConfig
from tradeforge.data.frames import canonical_bars

N_SYMBOLS = 500
N_BARS = 1258  # every XNYS session of 2014-2018
BASES = ("SP500", "NASDAQ", "AAPL", "IBM", "MSFT", "GOOG", "GOOGL", "WTI", "VIX")
FIELDS = ("open", "high", "low", "close", "volume")
RESULTS = Path(__file__).resolve().parent / "results" / "data.json"


def build_frames() -> dict[str, pd.DataFrame]:
    import exchange_calendars as xcals

    sessions = xcals.get_calendar("XNYS").sessions_in_range("2014-01-01", "2018-12-31")
    stamps = pd.DatetimeIndex(sessions[-N_BARS:]).tz_localize("UTC")
    bases = {b: canonical_bars(bundled_frame(b).drop(columns=["symbol"]), b) for b in BASES}
    frames: dict[str, pd.DataFrame] = {}
    for i in range(N_SYMBOLS):
        name = BASES[i % len(BASES)]
        base = bases[name]
        room = len(base) - N_BARS
        offset = (37 * (i // len(BASES))) % (room + 1)
        window = base.iloc[offset : offset + N_BARS].reset_index(drop=True).copy()
        scale = 1.0 + 0.002 * i
        for field in ("open", "high", "low", "close"):
            window[field] = window[field] * scale
        window["timestamp"] = stamps
        frames[f"B{i:03d}_{name}"] = window
    return frames


class FramesSource:
    """Serves the prepared frames through the normal ingest path."""

    name = "bench"

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames = frames

    def fetch_bars(self, symbol: str, frequency: str, start: Any, end: Any) -> pd.DataFrame:
        return self.frames[symbol]


def naive_panel(root: Path, symbols: list[str]) -> dict[str, np.ndarray]:
    parts = []
    for symbol in symbols:
        frame = pd.read_parquet(root / "bars" / "bench" / "1d" / f"{symbol}.parquet")
        frame["symbol"] = symbol
        parts.append(frame)
    long = pd.concat(parts, ignore_index=True)
    return {
        f: long.pivot(index="timestamp", columns="symbol", values=f)[symbols].to_numpy()
        for f in FIELDS
    }


def duckdb_panel(root: Path, symbols: list[str]) -> dict[str, np.ndarray]:
    import duckdb

    pattern = str(root / "bars" / "bench" / "1d" / "*.parquet")
    long = duckdb.sql(
        f"SELECT * , regexp_extract(filename, '([^/]+)\\.parquet$', 1) AS symbol "
        f"FROM read_parquet('{pattern}', filename = true)"
    ).df()
    return {
        f: long.pivot(index="timestamp", columns="symbol", values=f)[symbols].to_numpy()
        for f in FIELDS
    }


def main() -> None:
    console = Console()
    frames = build_frames()
    symbols = sorted(frames)
    rows = sum(len(f) for f in frames.values())
    work = Path(tempfile.mkdtemp(prefix="tf-bench-data-"))
    try:
        # full ingest: validation + atomic write + catalog
        store = ParquetStore(work / "ingest")
        cfg = DataConfig(
            source="polygon",  # any vendor name: the frames come from FramesSource
            symbols=symbols,
            dataset="bench",
            start=date(2014, 1, 1),
            end=date(2018, 12, 31),
            validation=ValidationConfig(),
        )
        t0 = time.perf_counter()
        ingest(cfg, store, source=FramesSource(frames))
        ingest_s = time.perf_counter() - t0

        # raw store writes (no validation), into a second store
        raw_store = ParquetStore(work / "raw")
        t0 = time.perf_counter()
        with raw_store.batch():
            for symbol in symbols:
                raw_store.write_bars("bench", "1d", symbol, frames[symbol], "bench")
        write_s = time.perf_counter() - t0

        # reads
        ours_s, panel = best_of(lambda: store.read_panel("bench", "1d", symbols), 5)
        naive_s, naive = best_of(lambda: naive_panel(store.root, symbols), 3)
        duck_s, duck = best_of(lambda: duckdb_panel(store.root, symbols), 3)
        for field in FIELDS:
            np.testing.assert_array_equal(panel.field(field), naive[field])
            np.testing.assert_array_equal(panel.field(field), duck[field])
        assert panel.close.shape == (N_BARS, N_SYMBOLS)
        disk_mb = sum(p.stat().st_size for p in store.root.rglob("*.parquet")) / 1e6
    finally:
        shutil.rmtree(work, ignore_errors=True)

    table = Table(title=f"data store: {N_SYMBOLS} symbols x {N_BARS} daily bars ({rows:,} rows)")
    for col in ("task", "seconds", "rows/s", "vs ours"):
        table.add_column(col, justify="right" if col != "task" else "left")
    table.add_row(
        "ingest (validate + write + catalog)", f"{ingest_s:.2f}", f"{rows / ingest_s:,.0f}", ""
    )
    table.add_row("write_bars only", f"{write_s:.2f}", f"{rows / write_s:,.0f}", "")
    table.add_row(
        "read panel: tradeforge read_panel", f"{ours_s:.3f}", f"{rows / ours_s:,.0f}", "1.0x"
    )
    table.add_row(
        "read panel: pandas read_parquet per file + concat/pivot",
        f"{naive_s:.3f}",
        f"{rows / naive_s:,.0f}",
        f"{naive_s / ours_s:.1f}x slower",
    )
    table.add_row(
        "read panel: duckdb read_parquet(glob) + pivot",
        f"{duck_s:.3f}",
        f"{rows / duck_s:,.0f}",
        f"{duck_s / ours_s:.1f}x slower",
    )
    console.print(table)
    target = 0.5
    console.print(f"panel read target < {target}s: {'met' if ours_s < target else 'MISSED'}")

    result = {
        "benchmark": "data",
        "when": datetime.now(UTC).isoformat(),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "note": "shared machine with other jobs running; timings are noisy",
        },
        "dataset": {
            "symbols": N_SYMBOLS,
            "bars_per_symbol": N_BARS,
            "rows": rows,
            "parquet_mb": round(disk_mb, 2),
            "construction": "bundled real daily series, shifted windows, scaled, re-stamped "
            "onto the 1,258 XNYS sessions of 2014-2018 (see module docstring)",
        },
        "ingest": {
            "seconds": round(ingest_s, 3),
            "rows_per_s": round(rows / ingest_s),
            "write_only_seconds": round(write_s, 3),
            "write_only_rows_per_s": round(rows / write_s),
        },
        "read_panel": {
            "tradeforge_s": round(ours_s, 4),
            "pandas_naive_s": round(naive_s, 4),
            "duckdb_glob_s": round(duck_s, 4),
            "ratio_pandas_over_ours": round(naive_s / ours_s, 2),
            "ratio_duckdb_over_ours": round(duck_s / ours_s, 2),
            "target_s": target,
            "target_met": ours_s < target,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
