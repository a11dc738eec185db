"""The drift report as one self-contained HTML page (inline CSS, no scripts, no external assets)."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradeforge.monitor.drift_report import ChannelDrift, DriftReport

UNDEFINED = "-"
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.drift td{background:#f8d7da} tr.warn td{background:#fff3cd} tr.empty td{color:#888}
.verdict{padding:0.6em 1em;border-radius:4px;display:inline-block}
.rollback{background:#f8d7da} .stable{background:#d4edda}
"""


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return UNDEFINED
    return format(value, spec)


def _channel_table(title: str, rows: tuple[ChannelDrift, ...]) -> str:
    if not rows:
        return ""
    head = (
        "<tr><th>channel</th><th>status</th><th>n</th><th>NaN</th><th>PSI</th><th>KS D</th>"
        "<th>KS p</th><th>n eff.</th><th>mean shift (ref. sd)</th><th>sd ratio</th></tr>"
    )
    body = []
    for c in rows:
        cells = [
            escape(c.name),
            c.status,
            str(c.n),
            _fmt(c.nan_fraction, ".1%"),
            _fmt(c.psi, ".3f"),
            _fmt(c.ks_statistic, ".3f"),
            _fmt(c.ks_pvalue, ".2g"),
            _fmt(c.n_effective, ".0f"),
            _fmt(c.mean_shift, "+.2f"),
            _fmt(c.std_ratio, ".2f"),
        ]
        body.append(f'<tr class="{c.status}">' + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    return f"<h2>{escape(title)}</h2><table>{head}{''.join(body)}</table>"


def render_html(report: DriftReport) -> str:
    """The HTML text of ``report``."""
    cfg = report.config
    if report.rollback:
        items = "".join(f"<li>{escape(r)}</li>" for r in report.rollback_reasons)
        verdict = f'<div class="verdict rollback"><b>Rollback triggered</b><ul>{items}</ul></div>'
    else:
        verdict = '<div class="verdict stable"><b>No rollback trigger fired</b></div>'
    span = f"{escape(report.start or '?')} .. {escape(report.end or '?')}"
    others = tuple(c for c in (report.values, report.returns) if c is not None)
    det_rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{x}</td>"
            for x in (
                escape(d.name),
                str(d.n_alarms),
                escape(", ".join(d.alarm_times[:5]) + (" ..." if len(d.alarm_times) > 5 else "")),
                _fmt(d.statistic, ".3f"),
                _fmt(d.threshold, ".3f"),
                "yes" if d.rollback else "no",
            )
        )
        + "</tr>"
        for d in report.detectors
    )
    detectors = (
        "<h2>Online detectors (replayed bar by bar)</h2><table><tr><th>detector</th>"
        "<th>alarms</th><th>first alarms</th><th>final statistic</th><th>threshold</th>"
        f"<th>rollback trigger</th></tr>{det_rows}</table>"
    )
    notes = (
        f"<p>Status <i>drift</i>: PSI &ge; {cfg.psi_threshold} and KS p &lt; {cfg.ks_alpha} / "
        f"channels (Bonferroni); <i>warn</i>: PSI &ge; {cfg.psi_warn} or that KS p alone. "
        "KS p-values use the effective size (live size discounted for the reference lag-1 "
        f"autocorrelation, combined with the reference size). Features roll back when at least "
        f"{cfg.min_drifted_features} drift. Reference profile built "
        f"{escape(report.profile_created_at)}.</p>"
    )
    meta = "".join(
        f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in report.metadata.items()
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>tradeforge drift report</title>"
        f"<style>{_CSS}</style></head><body><h1>Drift report</h1>"
        f"<p>{report.n_bars} bars, {span}</p>{verdict}"
        + (f"<table>{meta}</table>" if meta else "")
        + _channel_table("Features", report.features)
        + _channel_table("Actions", report.actions)
        + _channel_table("Values and returns", others)
        + detectors
        + notes
        + "</body></html>"
    )


__all__ = ["render_html"]
