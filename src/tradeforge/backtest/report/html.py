"""Self-contained HTML rendering: inline CSS, base64 PNG images, no scripts, no external assets."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

CSS = """
:root { --ink:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#f3f4f6; --card:#ffffff;
        --accent:#2563eb; --good:#047857; --bad:#b91c1c; --warn-bg:#fffbeb; --warn:#92400e; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header { background:linear-gradient(120deg,#1e3a8a,#2563eb 60%,#0ea5e9); color:#fff;
         padding:28px 40px 24px; }
header h1 { margin:0 0 4px; font-size:24px; font-weight:650; letter-spacing:-0.01em; }
header p { margin:0; opacity:.85; font-size:13px; }
main { max-width:1180px; margin:0 auto; padding:24px 24px 48px; }
section { background:var(--card); border:1px solid var(--line); border-radius:12px;
          padding:18px 22px; margin:0 0 18px; box-shadow:0 1px 2px rgba(0,0,0,.04); }
h2 { margin:0 0 12px; font-size:16px; font-weight:650; }
h3 { margin:16px 0 8px; font-size:14px; font-weight:600; color:#374151; }
.kpis { display:grid; grid-template-columns:repeat(auto-fit,minmax(124px,1fr)); gap:12px;
        margin:0 0 18px; }
.kpi { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:14px 16px; }
.kpi .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.kpi .value { font-size:21px; font-weight:650; margin-top:2px; font-variant-numeric:tabular-nums; }
.pos { color:var(--good); } .neg { color:var(--bad); }
.notes { background:var(--warn-bg); border-color:#fcd34d; color:var(--warn); }
.notes ul { margin:0; padding-left:18px; }
img.plot { display:block; width:100%; height:auto; border-radius:6px; }
.table-wrap { overflow-x:auto; }
table { border-collapse:collapse; width:100%; font-size:13px; font-variant-numeric:tabular-nums; }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
th { background:#f9fafb; color:#374151; font-weight:600; position:sticky; top:0; }
th:first-child, td:first-child { text-align:left; }
tbody tr:hover { background:#f9fafb; }
pre { background:#0f172a; color:#e2e8f0; padding:14px; border-radius:8px; overflow-x:auto;
      font-size:12px; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:18px; }
@media (max-width:900px) { .grid2 { grid-template-columns:1fr; } main { padding:12px; } }
footer { color:var(--muted); font-size:12px; text-align:center; padding:8px 0 24px; }
nav.toc { display:flex; flex-wrap:wrap; gap:6px 14px; margin:0 0 18px; font-size:13px; }
nav.toc a { color:var(--accent); text-decoration:none; }
nav.toc a:hover { text-decoration:underline; }
p.caption { color:var(--muted); margin:-6px 0 12px; font-size:13px; }
td.sig { font-weight:700; color:var(--accent); }
details summary { cursor:pointer; color:var(--accent); margin:10px 0 6px; }
.kpi .sub { color:var(--muted); font-size:12px; margin-top:2px; }
td.strategy, th.strategy { background:#eff6ff; font-weight:600; }
p.footnote { color:var(--muted); font-size:12px; margin:6px 0 0; }
"""

PERCENT_HINTS = (
    "return",
    "drawdown",
    "volatility",
    "share",
    "win_rate",
    "var",
    "cvar",
    "exposure",
    "alpha",
    "tracking_error",
    "cagr",
)
COUNT_HINTS = ("bars", "n_", "duration", "fold", "trades", "periods")


def _is_percent(name: str) -> bool:
    low = name.lower()
    return any(h in low for h in PERCENT_HINTS) and "ratio" not in low and "bps" not in low


UNDEFINED = "-"
UNDEFINED_NOTE = (
    "- : undefined, not computable from these returns (e.g. a ratio over zero volatility or no "
    "drawdown, as for an all-cash baseline, or too few bars for the estimate)."
)


def is_undefined(value: Any) -> bool:
    """Whether a cell has no defined value: None, NaN, +-inf, ``pd.NA`` or ``pd.NaT``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float | np.integer | np.floating):
        return not math.isfinite(float(value))
    return False


def format_value(name: str, value: Any) -> str:
    """A readable cell: percentages for return-like names, integers for counts, 3-4 digits else;
    undefined values (see :func:`is_undefined`) print as :data:`UNDEFINED`."""
    if is_undefined(value):
        return UNDEFINED
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return html.escape(str(value))
    low = name.lower()
    if low == "cost_multiplier":
        return f"x{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    if any(low.startswith(h) or low.endswith(h) for h in COUNT_HINTS) and float(value).is_integer():
        return f"{int(value):,}"
    if low in ("p_value", "p-value", "pvalue"):
        return f"{value:.3f}"
    if _is_percent(low):
        return f"{value * 100:.2f}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3f}"


def footnote_html(undefined: bool) -> str:
    """The footnote explaining :data:`UNDEFINED` cells, when a table or tile row has one."""
    if not undefined:
        return ""
    return f'<p class="footnote" data-footnote="undefined">{html.escape(UNDEFINED_NOTE)}</p>'


def _sign_class(name: str, value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or is_undefined(value):
        return ""
    if any(k in name for k in ("return", "sharpe", "sortino", "calmar", "alpha", "diff")):
        return "pos" if value > 0 else "neg" if value < 0 else ""
    return ""


HEADER_LABELS: dict[str, str] = {
    "p_value": "p-value",
    "ci_low": "CI low",
    "ci_high": "CI high",
    "psr": "PSR",
    "dsr": "DSR",
    "n_obs": "bars",
    "sharpe_diff": "Sharpe diff",
    "cost_multiplier": "costs",
    "delay_bars": "fill delay (bars)",
    "annual_return": "ann. return",
    "expected_max_sharpe": "E[max Sharpe] of trials",
    "n_trials": "configurations tried",
    "n_trial_sharpes": "trial Sharpes known",
    "trial_sharpe_std": "Sharpe std of trials",
}


def header_label(column: str) -> str:
    """A readable column header: known labels, else underscores as spaces."""
    return HEADER_LABELS.get(column, column.replace("_", " "))


def table_html(frame: pd.DataFrame, name: str, alpha: float = 0.05) -> str:
    """A DataFrame as an HTML table (the index is dropped unless it is named); p-values below
    ``alpha`` are highlighted."""
    if frame.index.name is not None:
        frame = frame.reset_index()
    head = "".join(
        f'<th title="{html.escape(str(c))}">{html.escape(header_label(str(c)))}</th>'
        for c in frame.columns
    )
    columns = [frame[c].tolist() for c in frame.columns]  # Python scalars (int stays int)
    body = []
    undefined = False
    for row in zip(*columns, strict=True):
        cells = []
        for col, val in zip(frame.columns, row, strict=True):
            cls = _sign_class(str(col), val)
            if str(col) == "p_value" and isinstance(val, int | float) and val < alpha:
                cls = "sig"
            undefined = undefined or is_undefined(val)
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{format_value(str(col), val)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="table-wrap"><table data-table="{html.escape(name)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
        + footnote_html(undefined)
    )


def metrics_frame(
    strategy: Mapping[str, float], baselines: Mapping[str, Mapping[str, float]], strategy_name: str
) -> pd.DataFrame:
    """Metrics side by side: one row per metric, one column per strategy/baseline."""
    columns = {strategy_name: dict(strategy)}
    columns.update({k: dict(v) for k, v in baselines.items()})
    frame = pd.DataFrame(columns)
    frame.index.name = "metric"
    return frame.loc[list(strategy)]


METRIC_LABELS: dict[str, str] = {
    "total_return": "Total return",
    "annual_return": "CAGR",
    "annual_volatility": "Volatility (ann.)",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "calmar": "Calmar",
    "max_drawdown": "Max drawdown",
    "max_drawdown_duration": "Longest drawdown (bars)",
    "win_rate": "Win rate (bars)",
    "var": "VaR 5% (bar)",
    "cvar": "CVaR 5% (bar)",
}
SUMMARY_METRICS: tuple[str, ...] = (
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration",
    "win_rate",
)


def metrics_table_html(
    frame: pd.DataFrame,
    name: str = "metrics",
    label_rows: bool = False,
    row_labels: Mapping[str, str] | None = None,
) -> str:
    """Metrics table (rows = metrics, columns = strategy first, then baselines), each row
    formatted by its metric name; the strategy column is highlighted. ``row_labels`` replaces
    the shown name of some rows (e.g. the deflated Sharpe with its count of configurations)."""
    head = "<th>metric</th>" + "".join(
        f"<th{' class=strategy' if i == 0 else ''}>{html.escape(str(c))}</th>"
        for i, c in enumerate(frame.columns)
    )
    rows = []
    undefined = False
    for metric, vals in frame.iterrows():
        cells = []
        for i, v in enumerate(vals):
            classes = " ".join(c for c in (_sign_class(str(metric), v), "strategy" * (i == 0)) if c)
            attr = f' class="{classes}"' if classes else ""
            undefined = undefined or is_undefined(v)
            cells.append(f"<td{attr}>{format_value(str(metric), v)}</td>")
        label = METRIC_LABELS.get(str(metric), str(metric)) if label_rows else str(metric)
        label = (row_labels or {}).get(str(metric), label)
        rows.append(f"<tr><td>{html.escape(label)}</td>{''.join(cells)}</tr>")
    return (
        f'<div class="table-wrap"><table data-table="{html.escape(name)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        + footnote_html(undefined)
    )


def image_html(name: str, png: bytes, alt: str) -> str:
    """An <img> with the PNG embedded as a base64 data URI."""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<img class="plot" data-plot="{html.escape(name)}" alt="{html.escape(alt)}" '
        f'src="data:image/png;base64,{data}">'
    )


def section(title: str, body: str, key: str, extra_class: str = "", caption: str = "") -> str:
    """A titled card with ``id`` and ``data-section`` set to ``key`` and an optional caption."""
    cls = f' class="{extra_class}"' if extra_class else ""
    key_attr = html.escape(key)
    cap = f'<p class="caption">{html.escape(caption)}</p>' if caption else ""
    return (
        f'<section{cls} id="{key_attr}" data-section="{key_attr}">'
        f"<h2>{html.escape(title)}</h2>{cap}{body}</section>"
    )


def details_html(summary: str, body: str) -> str:
    """A collapsed block (native <details>, no script)."""
    return f"<details><summary>{html.escape(summary)}</summary>{body}</details>"


def toc_html(entries: Sequence[tuple[str, str]]) -> str:
    """Links to the sections: ``(key, title)`` pairs."""
    links = "".join(f'<a href="#{html.escape(k)}">{html.escape(t)}</a>' for k, t in entries)
    return f'<nav class="toc">{links}</nav>'


def kpis_html(
    metrics: Mapping[str, float],
    extra: Sequence[tuple[str, str, float, str]] = (),
) -> str:
    """The headline tiles at the top of the report; ``extra`` adds ``(label, key, value, sub)``
    tiles (e.g. PSR/DSR, best baseline)."""
    tiles: list[tuple[str, str, float, str]] = [
        ("Total return", "total_return", metrics.get("total_return", math.nan), ""),
        ("CAGR", "annual_return", metrics.get("annual_return", math.nan), ""),
        ("Sharpe", "sharpe", metrics.get("sharpe", math.nan), "annualised"),
        ("Sortino", "sortino", metrics.get("sortino", math.nan), ""),
        ("Max drawdown", "max_drawdown", metrics.get("max_drawdown", math.nan), ""),
        ("Volatility", "annual_volatility", metrics.get("annual_volatility", math.nan), "annual"),
    ]
    tiles.extend(extra)
    out = []
    for label, key, val, sub in tiles:
        cls = (
            _sign_class(key, val)
            if key != "max_drawdown"
            else ("neg" if not is_undefined(val) and val < 0 else "")
        )
        sub_html = f'<div class="sub">{html.escape(sub)}</div>' if sub else ""
        out.append(
            f'<div class="kpi" data-kpi="{html.escape(key)}"><div class="label">{label}</div>'
            f'<div class="value {cls}">{format_value(key, val)}</div>{sub_html}</div>'
        )
    note = footnote_html(any(is_undefined(val) for _, _, val, _ in tiles))
    return f'<div class="kpis" id="kpis" data-section="kpis">{"".join(out)}</div>{note}'


def notes_html(notes: Sequence[str]) -> str:
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return section("Warnings and notes", f"<ul>{items}</ul>", "notes", "notes")


def config_html(config: Mapping[str, Any]) -> str:
    text = json.dumps(config, indent=2, sort_keys=True, default=str)
    return section("Configuration", f"<pre>{html.escape(text)}</pre>", "config")


def page(title: str, subtitle: str, parts: Sequence[str]) -> str:
    """The whole document."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
        f"<main>{''.join(parts)}</main>"
        "<footer>generated by tradeforge · self-contained report (no scripts, no external assets)"
        "</footer></body></html>"
    )


__all__ = [
    "UNDEFINED",
    "UNDEFINED_NOTE",
    "details_html",
    "footnote_html",
    "format_value",
    "header_label",
    "image_html",
    "is_undefined",
    "kpis_html",
    "metrics_frame",
    "metrics_table_html",
    "page",
    "section",
    "table_html",
    "toc_html",
]
