"""Rendering for ``TradingEnv``: a text summary (``ansi``) and a price/position/equity plot
(``rgb_array``, drawn with matplotlib's Agg backend; matplotlib is imported only here, lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tradeforge.envs.env import TradingEnv


def render_ansi(env: TradingEnv) -> str:
    """One short block of text about the current state of the episode."""
    hist = env.history()
    panel = env.panel
    bar = env.bar
    equity = hist["equity"]
    initial = equity[0] if equity.size else float("nan")
    peak = float(np.max(equity)) if equity.size else float("nan")
    weights = hist["weights"][-1] if hist["weights"].size else np.zeros(panel.n_symbols)
    held = ", ".join(f"{s}={w:+.3f}" for s, w in zip(panel.symbols, weights, strict=True))
    close = ", ".join(f"{s}={c:.2f}" for s, c in zip(panel.symbols, panel.close[bar], strict=True))
    return (
        f"bar {bar} ({panel.index[bar]}) step {len(equity) - 1}\n"
        f"  close: {close}\n"
        f"  weights: {held}\n"
        f"  equity: {equity[-1]:,.2f} (return {equity[-1] / initial - 1.0:+.2%}, "
        f"drawdown {1.0 - equity[-1] / peak:.2%})\n"
    )


def render_rgb_array(env: TradingEnv, width: int = 640, height: int = 480) -> np.ndarray:
    """An (H, W, 3) uint8 image: normalized prices, held weights and equity over the episode."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    hist = env.history()
    bars = hist["bar"]
    panel = env.panel
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax_price, ax_pos, ax_eq = fig.subplots(3, 1, sharex=True)
    x = np.arange(len(bars))
    close = panel.close[bars]
    base = close[0]
    for j, symbol in enumerate(panel.symbols):
        ax_price.plot(x, close[:, j] / base[j], label=symbol, linewidth=1)
        ax_pos.step(x, hist["weights"][:, j], where="post", linewidth=1)
    ax_price.set_ylabel("price (rel.)")
    if panel.n_symbols <= 8:
        ax_price.legend(loc="upper left", fontsize=6)
    ax_pos.set_ylabel("weight")
    ax_eq.plot(x, hist["equity"], color="black", linewidth=1)
    ax_eq.set_ylabel("equity")
    ax_eq.set_xlabel("step")
    fig.tight_layout()
    canvas.draw()  # type: ignore[no-untyped-call]
    rgba = np.asarray(canvas.buffer_rgba())  # type: ignore[no-untyped-call]
    image: np.ndarray = rgba[:, :, :3].copy()
    return image


__all__ = ["render_ansi", "render_rgb_array"]
