"""Backtest reports: one self-contained HTML file, its PNG plots and ``metrics.json``.

``write_report(run_dir, data)`` writes into ``run_dir``:

* ``report.html``: inline CSS, every plot embedded as a base64 PNG, no scripts or external assets;
* ``equity.png``, ``drawdown.png``, ``rolling_sharpe.png``, ``returns_hist.png`` and, when the
  data is given, ``weights.png`` and ``cost_sensitivity.png``;
* ``metrics.json``: strategy and baseline metrics, the tables, the section keys and the config
  echo (NaN -> null).

Every section of the HTML carries ``id`` and ``data-section`` = its key (``kpis``, ``equity``,
``metrics``, ``drawdown``, ``rolling_sharpe``, ``weights``, ``folds``, ``significance``,
``regimes``, ``cost_sensitivity``, ``seeds``, ``returns_hist``, ``config``, ``notes``); every plot
is an ``<img data-plot=KEY>`` and every table a ``<table data-table=KEY>``.

Typical use after a walk-forward (``wf = run_walk_forward(...)`` on ``folds``)::

    start = folds[0].test.start
    windows = [fold_test_window(f, panel.n_bars) for f in folds]
    base = run_baselines(panel, sim_config, train_end=start)       # name -> BacktestResult
    data = ReportData(
        strategy_returns=wf.returns,
        baseline_equities={k: r.equity for k, r in base.items()},
        weights=wf.stitched_frame("weights"),
        fold_table=wf.fold_table(panel.index),
        regime_table=regime_table(wf.returns, panel),
        significance_table=significance_table(wf.returns, {k: r.returns for k, r in base.items()}),
        cost_sensitivity=cost_sensitivity(panel, stitched_weights, sim_config, windows=windows),
        sharpe_inference=sharpe_inference(wf.returns, trial_sharpes=validation_sharpes),
        seed_table=per_seed_metrics, config=experiment.model_dump(mode="json"), notes=[...],
    )
    write_report(run_dir, data)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.backtest.report import html as _html
from tradeforge.backtest.report import plots as _plots
from tradeforge.backtest.report.data import ReportData
from tradeforge.core.errors import BacktestError

REPORT_FILE = "report.html"
METRICS_FILE = "metrics.json"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    if frame is None:
        return None
    out: list[dict[str, Any]] = _jsonable(
        frame.reset_index(drop=frame.index.name is None).to_dict(orient="records")
    )
    return out


def _slug(text: str) -> str:
    return "extra_" + "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def _seed_caption(seeds: pd.DataFrame) -> str:
    sh = seeds["sharpe"].astype(float) if "sharpe" in seeds.columns else pd.Series(dtype=float)
    sh = sh[np.isfinite(sh)]
    if len(sh) < 2:
        return "One row per training seed or ensemble member."
    return (
        f"Sharpe across {len(sh)} seeds: mean {sh.mean():.2f}, std {sh.std(ddof=1):.2f}, "
        f"min {sh.min():.2f}, max {sh.max():.2f}. A wide spread means one run proves little."
    )


def configurations_tried(info: dict[str, float] | None) -> str:
    """``"12 configurations tried"``: the count behind the deflated Sharpe (see
    :func:`tradeforge.backtest.significance.sharpe_inference`)."""
    n = int((info or {}).get("n_trials", 1))
    return f"{n:,} configuration{'s' if n != 1 else ''} tried"


def _inference_kpis(info: dict[str, float] | None) -> list[tuple[str, str, float, str]]:
    if not info:
        return []
    return [
        ("PSR", "psr", info.get("psr", math.nan), "P(Sharpe > 0)"),
        ("Deflated Sharpe", "dsr", info.get("dsr", math.nan), configurations_tried(info)),
    ]


def _inference_caption(info: dict[str, float] | None) -> str:
    base = (
        "Stationary block bootstrap (Politis-Romano) of paired returns: confidence interval "
        "and two-sided p-value for the Sharpe difference (bold: p < 0.05). PSR = probability "
        "the true Sharpe is above 0; deflated Sharpe corrects it for the configurations tried "
        "(Bailey & López de Prado)"
    )
    if not info:
        return base + "."
    known = int(info.get("n_trial_sharpes", 0))
    spread = (
        f"the spread of their Sharpe ratios is measured from {known} of them"
        if known >= 2
        else "the spread of their Sharpe ratios is assumed equal to the sampling error of one "
        "Sharpe estimate"
    )
    return f"{base}: {configurations_tried(info)} (tuning trials x members x seeds); {spread}."


SECTION_TITLES: dict[str, str] = {
    "equity": "Equity",
    "metrics": "Strategy vs baselines",
    "drawdown": "Drawdown",
    "rolling_sharpe": "Rolling Sharpe",
    "weights": "Weights",
    "folds": "Folds",
    "significance": "Significance",
    "regimes": "Regimes",
    "cost_sensitivity": "Costs",
    "seeds": "Seeds",
    "returns_hist": "Returns",
    "config": "Config",
}


def write_report(run_dir: Path, report: ReportData) -> Path:
    """Render ``report`` into ``run_dir`` (created if needed); returns the HTML file's path.

    Writes ``report.html`` (self-contained), one PNG per plot and ``metrics.json``.
    """
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BacktestError(f"report run_dir {str(run_dir)!r} cannot be created: {exc}") from None
    metrics = report.headline_metrics()
    base_metrics = report.baseline_metrics()
    baselines = report.aligned_baselines()
    rets = report.strategy_returns.dropna()
    ppy = report.periods_per_year

    images: dict[str, bytes] = {
        "equity": _plots.equity_plot(report.equity(), baselines, report.strategy_name),
        "drawdown": _plots.drawdown_plot(rets, baselines, report.strategy_name),
        "rolling_sharpe": _plots.rolling_sharpe_plot(
            rets, min(report.rolling_window, max(len(rets) // 3, 2)), ppy
        ),
        "returns_hist": _plots.returns_histogram(
            rets, metrics.get("var", math.nan), metrics.get("cvar", math.nan)
        ),
    }
    if report.weights is not None and not report.weights.empty:
        images["weights"] = _plots.weights_plot(report.weights)
    if report.cost_sensitivity is not None and not report.cost_sensitivity.empty:
        images["cost_sensitivity"] = _plots.cost_plot(report.cost_sensitivity)
    for name, png in images.items():
        (run_dir / f"{name}.png").write_bytes(png)

    start, end = rets.index[0], rets.index[-1]
    subtitle = (
        f"{report.strategy_name} · out-of-sample {start:%Y-%m-%d} to {end:%Y-%m-%d} · "
        f"{len(rets):,} bars"
        + (
            f" · baselines: {', '.join(report.baseline_equities)}"
            if report.baseline_equities
            else ""
        )
    )
    h = _html
    sections: list[tuple[str, str]] = []  # (key, html)

    def add(key: str, title: str, body: str, caption: str = "") -> None:
        sections.append((key, h.section(title, body, key, caption=caption)))

    add(
        "equity",
        "Equity against baselines",
        h.image_html("equity", images["equity"], "equity curves"),
        "Growth of 1 for the strategy (black) and each baseline over the same period, log scale.",
    )
    mframe = h.metrics_frame(metrics, base_metrics, report.strategy_name)
    summary_rows = [m for m in h.SUMMARY_METRICS if m in mframe.index]
    row_labels = (
        {"deflated_sharpe": f"deflated_sharpe ({configurations_tried(report.sharpe_inference)})"}
        if report.sharpe_inference
        else None
    )
    body = h.metrics_table_html(mframe.loc[summary_rows], "metrics_summary", label_rows=True)
    body += h.details_html(
        "All metrics", h.metrics_table_html(mframe, "metrics", row_labels=row_labels)
    )
    add("metrics", "Strategy vs baselines", body, "Risk-free rate 0; annualised where noted.")
    grid = (
        '<div class="grid2">'
        + h.section(
            "Drawdown",
            h.image_html("drawdown", images["drawdown"], "drawdown"),
            "drawdown",
            caption="Distance below the running equity peak.",
        )
        + h.section(
            "Rolling Sharpe",
            h.image_html("rolling_sharpe", images["rolling_sharpe"], "rolling Sharpe"),
            "rolling_sharpe",
            caption="Annualised Sharpe over a trailing window.",
        )
        + "</div>"
    )
    sections.append(("drawdown", grid))
    sections.append(("rolling_sharpe", ""))  # inside the grid above; listed for the TOC
    if "weights" in images:
        add(
            "weights",
            "Portfolio weights",
            h.image_html("weights", images["weights"], "weights heatmap"),
            "Weight held in each symbol over time (bucketed averages for long runs).",
        )
    if report.fold_table is not None and not report.fold_table.empty:
        add(
            "folds",
            "Walk-forward folds",
            h.table_html(report.fold_table, "folds"),
            "Each fold is trained on its own window and tested on the next, unseen one.",
        )
    sig_parts = []
    if report.significance_table is not None and not report.significance_table.empty:
        sig_parts.append(
            "<h3>Sharpe difference, strategy minus baseline</h3>"
            + h.table_html(report.significance_table, "significance")
        )
    if report.sharpe_inference:
        info = pd.DataFrame([report.sharpe_inference])
        sig_parts.append(
            "<h3>Sharpe ratio inference (probabilistic and deflated Sharpe)</h3>"
            + h.table_html(info, "sharpe_inference")
        )
    if sig_parts:
        add(
            "significance",
            "Is it skill? Significance against baselines",
            "".join(sig_parts),
            _inference_caption(report.sharpe_inference),
        )
    if report.regime_table is not None and not report.regime_table.empty:
        add(
            "regimes",
            "Metrics by market regime",
            h.table_html(report.regime_table, "regimes"),
            "Labels use only data known before each bar: terciles of trailing realised volatility "
            "and of the VIX, and market drawdowns beyond the threshold.",
        )
    if report.cost_sensitivity is not None and not report.cost_sensitivity.empty:
        body = h.image_html("cost_sensitivity", images["cost_sensitivity"], "cost sensitivity")
        body += h.table_html(report.cost_sensitivity, "cost_sensitivity")
        add(
            "cost_sensitivity",
            "Cost sensitivity",
            body,
            "The same target weights re-run with every cost rate multiplied by x0, x1, x2, x5.",
        )
    if report.seed_table is not None and not report.seed_table.empty:
        add(
            "seeds",
            "Seed variance",
            h.table_html(report.seed_table, "seeds"),
            _seed_caption(report.seed_table),
        )
    for title, frame in report.extra_tables.items():
        if frame is not None and not frame.empty:
            add(_slug(title), title, h.table_html(frame, _slug(title)))
    add(
        "returns_hist",
        "Return distribution",
        h.image_html("returns_hist", images["returns_hist"], "return histogram"),
        "Per-bar returns with historical VaR and CVaR at 5%.",
    )
    if report.config:
        sections.append(("config", h.config_html(_jsonable(report.config))))

    toc = h.toc_html(
        [
            (k, SECTION_TITLES.get(k, k.removeprefix("extra_").replace("_", " ")))
            for k, _ in sections
        ]
    )
    parts = [h.kpis_html(metrics, _inference_kpis(report.sharpe_inference)), toc]
    if report.notes:
        parts.append(h.notes_html(report.notes))
    parts.extend(html for _, html in sections)
    out = run_dir / REPORT_FILE
    out.write_text(h.page(report.title, subtitle, parts), encoding="utf-8")

    payload = {
        "strategy": report.strategy_name,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "n_bars": len(rets),
        "metrics": metrics,
        "baselines": base_metrics,
        "folds": _records(report.fold_table),
        "regimes": _records(report.regime_table),
        "significance": _records(report.significance_table),
        "sharpe_inference": report.sharpe_inference,
        "cost_sensitivity": _records(report.cost_sensitivity),
        "seeds": _records(report.seed_table),
        "extra_tables": {k: _records(v) for k, v in report.extra_tables.items()},
        "config": report.config,
        "notes": list(report.notes),
        "plots": sorted(f"{k}.png" for k in images),
        "sections": [k for k, _ in sections],
    }
    text = json.dumps(_jsonable(payload), indent=2, sort_keys=True, allow_nan=False)
    (run_dir / METRICS_FILE).write_text(text, encoding="utf-8")
    return out


__all__ = [
    "METRICS_FILE",
    "REPORT_FILE",
    "SECTION_TITLES",
    "ReportData",
    "configurations_tried",
    "write_report",
]
