"""Report figures as PNG bytes, drawn with matplotlib's object API on the Agg canvas.

matplotlib is imported inside the functions (never at import time) and pyplot is not used, so
drawing a report neither changes the process's backend nor leaks figures.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.backtest.metrics import drawdown_series, rolling_sharpe

PALETTE: tuple[str, ...] = (
    "#2563eb",
    "#f97316",
    "#10b981",
    "#a855f7",
    "#ef4444",
    "#eab308",
    "#0ea5e9",
    "#64748b",
)
STRATEGY_COLOR = "#111827"


def _figure(width: float = 10.0, height: float = 4.0) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#9ca3af")
    ax.tick_params(colors="#374151", labelsize=9)
    return fig, ax


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white")
    return buf.getvalue()


def _naive(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        return index.tz_convert("UTC").tz_localize(None)
    return index


def equity_plot(strategy: pd.Series, baselines: Mapping[str, pd.Series], name: str) -> bytes:
    """Strategy equity against each baseline, all rebased to 1 at their first value (log scale)."""
    fig, ax = _figure()
    for i, (label, eq) in enumerate(baselines.items()):
        eq = eq.dropna()
        if len(eq) and eq.iloc[0] > 0:
            ax.plot(
                _naive(eq.index),
                eq / eq.iloc[0],
                color=PALETTE[i % len(PALETTE)],
                linewidth=1.1,
                alpha=0.85,
                label=label,
            )
    eq = strategy.dropna()
    ax.plot(_naive(eq.index), eq / eq.iloc[0], color=STRATEGY_COLOR, linewidth=1.8, label=name)
    if (eq > 0).all():
        ax.set_yscale("log")
    ax.set_ylabel("growth of 1 (log)", color="#374151")
    ax.legend(frameon=False, fontsize=9, ncol=min(4, len(baselines) + 1), loc="upper left")
    return _png(fig)


def drawdown_plot(
    returns: pd.Series, baselines: Mapping[str, pd.Series], name: str = "strategy"
) -> bytes:
    """Strategy drawdown (filled) with baseline drawdowns as thin lines."""
    fig, ax = _figure(6.4, 3.8)
    for i, (label, eq) in enumerate(baselines.items()):
        dd = drawdown_series(eq.pct_change().dropna())
        ax.plot(
            _naive(dd.index),
            dd * 100,
            color=PALETTE[i % len(PALETTE)],
            linewidth=0.9,
            alpha=0.7,
            label=label,
        )
    dd = drawdown_series(returns.dropna())
    x = _naive(dd.index)
    ax.fill_between(x, dd * 100, 0, color="#ef4444", alpha=0.25, linewidth=0)
    ax.plot(x, dd * 100, color="#b91c1c", linewidth=1.2, label=name)
    ax.set_ylabel("drawdown (%)", color="#374151")
    ax.legend(frameon=False, fontsize=8, ncol=3, loc="lower left")
    return _png(fig)


def rolling_sharpe_plot(returns: pd.Series, window: int, periods_per_year: int) -> bytes:
    """Trailing-window annualised Sharpe of the strategy with a zero line."""
    fig, ax = _figure(6.4, 3.8)
    rs = rolling_sharpe(returns.dropna(), window, periods_per_year)
    x = _naive(rs.index)
    ax.axhline(0.0, color="#6b7280", linewidth=0.9)
    ax.plot(x, rs, color="#2563eb", linewidth=1.3)
    ax.fill_between(x, rs, 0, where=rs > 0, color="#10b981", alpha=0.18, linewidth=0)
    ax.fill_between(x, rs, 0, where=rs < 0, color="#ef4444", alpha=0.18, linewidth=0)
    ax.set_ylabel(f"Sharpe ({window} bars)", color="#374151")
    return _png(fig)


def weights_plot(weights: pd.DataFrame, max_columns: int = 600) -> bytes:
    """Heatmap of weights (symbols x time), averaged into at most ``max_columns`` time buckets."""
    w = weights.astype(np.float64).fillna(0.0)
    n_sym = w.shape[1]
    fig, ax = _figure(10.0, max(2.2, min(0.35 * n_sym + 1.4, 7.0)))
    ax.grid(False)
    values = w.to_numpy()
    buckets = max(1, int(np.ceil(len(values) / max_columns)))
    usable = len(values) // buckets * buckets
    if usable:
        values = values[:usable].reshape(-1, buckets, n_sym).mean(axis=1)
    limit = max(float(np.nanmax(np.abs(values))) if values.size else 1.0, 1e-9)
    cmap = "RdBu_r" if (values < 0).any() else "Blues"
    vmin = -limit if cmap == "RdBu_r" else 0.0
    times = _naive(w.index)
    extent = (0, len(values), n_sym - 0.5, -0.5)
    image = ax.imshow(
        values.T,
        aspect="auto",
        cmap=cmap,
        vmin=vmin,
        vmax=limit,
        interpolation="nearest",
        extent=extent,
    )
    ax.set_yticks(range(n_sym), [str(c) for c in w.columns], fontsize=8)
    ticks = np.linspace(0, len(values) - 1, num=min(6, max(len(values), 1))).astype(int)
    if isinstance(times, pd.DatetimeIndex) and len(times):
        labels = [times[min(t * buckets, len(times) - 1)].strftime("%Y-%m") for t in ticks]
        ax.set_xticks(ticks, labels)
    fig.colorbar(image, ax=ax, label="weight", shrink=0.9)
    return _png(fig)


def cost_plot(table: pd.DataFrame) -> bytes:
    """Sharpe and total return against the cost multiplier."""
    fig, ax = _figure(10.0, 3.2)
    delays = table["delay_bars"] if "delay_bars" in table else [0] * len(table)
    labels = [
        f"x{k:g}" + (f" +{int(d)}b" if d else "")
        for k, d in zip(table["cost_multiplier"], delays, strict=True)
    ]
    x = np.arange(len(labels))
    ax.bar(x - 0.2, table["sharpe"], width=0.4, color="#2563eb", label="Sharpe")
    ax2 = ax.twinx()
    ax2.bar(
        x + 0.2, table["total_return"] * 100, width=0.4, color="#f97316", label="total return (%)"
    )
    ax2.spines["top"].set_visible(False)
    ax.set_xticks(x, labels)
    ax.set_ylabel("Sharpe", color="#2563eb")
    ax2.set_ylabel("total return (%)", color="#f97316")
    ax.axhline(0.0, color="#6b7280", linewidth=0.8)
    return _png(fig)


def returns_histogram(returns: pd.Series, var: float, cvar: float) -> bytes:
    """Distribution of per-bar returns with the historical VaR and CVaR marked."""
    fig, ax = _figure(10.0, 3.0)
    r = returns.dropna().to_numpy(np.float64) * 100
    ax.hist(r, bins=80, color="#93c5fd", edgecolor="#60a5fa", linewidth=0.4)
    ax.axvline(var * 100, color="#f97316", linewidth=1.4, label=f"VaR {var:.2%}")
    ax.axvline(cvar * 100, color="#ef4444", linewidth=1.4, label=f"CVaR {cvar:.2%}")
    ax.set_xlabel("return per bar (%)", color="#374151")
    ax.legend(frameon=False, fontsize=9)
    return _png(fig)


PlotFn = Callable[..., bytes]

__all__ = [
    "cost_plot",
    "drawdown_plot",
    "equity_plot",
    "returns_histogram",
    "rolling_sharpe_plot",
    "weights_plot",
]
