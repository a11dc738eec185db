"""Plotly figure specs (plain JSON-ready dicts) for the dashboard; the browser draws them with
the ``plotly.min.js`` served from the installed ``plotly`` package."""

from __future__ import annotations

from typing import Any

from tradeforge.serve.snapshot import Snapshot

EQUITY_COLOR = "#1f4e79"


def equity_figure(snapshot: Snapshot) -> dict[str, Any]:
    """The equity curve as ``{"data": [...], "layout": {...}, "config": {...}}``."""
    curve = snapshot.equity_curve
    trace = {
        "type": "scatter",
        "mode": "lines",
        "name": "equity",
        "x": [p.ts.isoformat() for p in curve],
        "y": [p.equity for p in curve],
        "line": {"color": EQUITY_COLOR, "width": 2},
        "hovertemplate": "%{x|%Y-%m-%d %H:%M}<br>%{y:,.2f}<extra></extra>",
    }
    layout = {
        "height": 280,
        "margin": {"l": 70, "r": 20, "t": 10, "b": 40},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, sans-serif", "size": 12, "color": "#1b1f24"},
        "xaxis": {"type": "date", "gridcolor": "#e5e7eb"},
        "yaxis": {"tickformat": ",.0f", "gridcolor": "#e5e7eb", "title": {"text": "equity"}},
        "showlegend": False,
    }
    config = {
        "displaylogo": False,
        "responsive": True,
        "showLink": False,
        "showSendToCloud": False,
        "modeBarButtonsToRemove": ["select2d", "lasso2d", "toImage"],
    }
    return {"data": [trace], "layout": layout, "config": config}


__all__ = ["equity_figure"]
