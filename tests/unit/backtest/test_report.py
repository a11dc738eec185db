"""The HTML report, its PNG plots and metrics.json, built from a real walk-forward on equities."""

from __future__ import annotations

import base64
import io
import json
import math
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from report_expectations import FULL_PLOTS, FULL_SECTIONS, FULL_TABLES

from tradeforge.backtest import (
    BacktestResult,
    Fold,
    ReportData,
    WalkForwardConfig,
    baseline_weights,
    compute_metrics,
    cost_sensitivity,
    fold_test_window,
    make_folds,
    regime_table,
    run_backtest,
    run_walk_forward,
    sharpe_inference,
    significance_table,
    write_report,
)
from tradeforge.backtest.report import METRICS_FILE, REPORT_FILE
from tradeforge.backtest.report.html import format_value
from tradeforge.core.errors import BacktestError
from tradeforge.sim import CostConfig, SimConfig


def build_report_data(panel: Any) -> ReportData:
    """A walk-forward of a momentum rule against two baselines, with every optional table."""
    cfg = SimConfig(costs=CostConfig(commission_bps=2.0, half_spread_bps=2.0))
    folds = make_folds(panel.index, WalkForwardConfig(train=1000, test=500, embargo=5))

    def fit(fold: Fold, previous: Any) -> int:
        return 63 if fold.number % 2 else 126

    def test(fold: Fold, lookback: int) -> BacktestResult:
        w = baseline_weights("momentum", panel, fold.test.start, lookback=lookback, top_k=2)
        return run_backtest(panel, w, cfg, *fold_test_window(fold, panel.n_bars))

    wf = run_walk_forward(folds, fit, test)
    start = folds[0].test.start
    baselines = {
        name: run_backtest(panel, baseline_weights(name, panel, start), cfg, start)
        for name in ("buy_and_hold", "equal_weight")
    }
    w_full = baseline_weights("momentum", panel, start, top_k=2)
    seeds = pd.DataFrame(
        {"seed": [0, 1, 2], "sharpe": [0.4, 0.7, 0.1], "total_return": [0.5, 0.9, 0.1]}
    )
    return ReportData(
        strategy_returns=wf.returns,
        title="Momentum walk-forward",
        strategy_name="momentum",
        baseline_equities={k: v.equity for k, v in baselines.items()},
        weights=wf.stitched_frame("weights"),
        fold_table=wf.fold_table(panel.index),
        regime_table=regime_table(wf.returns, panel),
        significance_table=significance_table(
            wf.returns, {k: v.returns for k, v in baselines.items()}, n_boot=200
        ),
        cost_sensitivity=cost_sensitivity(panel, w_full, cfg, start),
        sharpe_inference=sharpe_inference(wf.returns, n_trials=3, trial_sharpes=seeds["sharpe"]),
        seed_table=seeds,
        config={"walkforward": {"train": 1000, "test": 500}, "costs": cfg.costs.model_dump()},
        notes=["Results vary across seeds: Sharpe std 0.30 over 3 seeds", "escape <b>me</b>"],
    )


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.sections: list[str] = []
        self.tables: list[str] = []
        self.imgs: list[dict[str, str]] = []
        self.scripts = 0
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if "data-section" in a:
            self.sections.append(a["data-section"])
        if tag == "table":
            self.tables.append(a.get("data-table", ""))
        if tag == "img":
            self.imgs.append(a)
        if tag == "script":
            self.scripts += 1
        if tag in ("link", "a") and "href" in a:
            self.links.append(a["href"])


@pytest.fixture(scope="module")
def report_data(equities_panel: Any) -> ReportData:
    return build_report_data(equities_panel)


@pytest.fixture(scope="module")
def written(report_data: ReportData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("run") / "nested" / "run"
    out = write_report(run_dir, report_data)
    assert out == run_dir / REPORT_FILE
    return run_dir


def _nan_to_none(d: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def test_metrics_json_equals_compute_metrics(written: Path, report_data: ReportData) -> None:
    payload = json.loads((written / METRICS_FILE).read_text())
    expected = _nan_to_none(compute_metrics(report_data.strategy_returns))
    assert set(payload["metrics"]) == set(expected)
    for key, value in expected.items():
        if value is None:
            assert payload["metrics"][key] is None, key
        else:
            assert payload["metrics"][key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    rets = report_data.strategy_returns
    aligned = report_data.aligned_baselines()
    for name, eq in report_data.baseline_equities.items():
        cut = aligned[name]
        # baselines are compared over the strategy's span: from the bar before its first return
        assert cut.index[0] == eq.index[eq.index < rets.index[0]][-1]
        assert cut.index[-1] == rets.index[-1]
        assert len(cut) < len(eq)  # the baselines here run past the last fold
        base = compute_metrics(cut.pct_change().dropna())
        assert payload["baselines"][name]["sharpe"] == pytest.approx(base["sharpe"])
        assert base["n_periods"] == len(rets)
    assert payload["start"] == report_data.strategy_returns.index[0].isoformat()
    assert payload["n_bars"] == len(report_data.strategy_returns)
    assert len(payload["folds"]) == len(report_data.fold_table)  # type: ignore[arg-type]
    assert payload["sharpe_inference"]["n_trials"] == 3
    assert payload["cost_sensitivity"][0]["cost_multiplier"] == 0.0
    assert payload["sections"] == [s for s in FULL_SECTIONS if s not in ("kpis", "notes")]
    assert sorted(payload["plots"]) == sorted(f"{p}.png" for p in FULL_PLOTS)
    assert payload["notes"][0].startswith("Results vary across seeds")


def test_html_has_every_section_table_and_embedded_plot(written: Path) -> None:
    text = (written / REPORT_FILE).read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(text)
    for key in FULL_SECTIONS:
        assert key in parser.ids, f"section id {key!r} missing"
        assert key in parser.sections
    assert set(FULL_TABLES) <= set(parser.tables)
    plots = {img["data-plot"]: img for img in parser.imgs}
    assert set(plots) == set(FULL_PLOTS)
    for name, img in plots.items():
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        png = base64.b64decode(img["src"][len(prefix) :])
        assert png == (written / f"{name}.png").read_bytes()
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG"
            assert im.width > 300
            assert im.height > 150
        assert img["alt"]
    # self-contained: no scripts, no external resources, in-page links only
    assert parser.scripts == 0
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert all(href.startswith("#") for href in parser.links)
    assert "escape &lt;b&gt;me&lt;/b&gt;" in text
    assert "<b>me</b>" not in text


def test_tables_render_formatted_values(written: Path, report_data: ReportData) -> None:
    text = (written / REPORT_FILE).read_text(encoding="utf-8")
    m = compute_metrics(report_data.strategy_returns)
    assert f"{m['total_return'] * 100:.2f}%" in text  # KPI tile and metrics table
    assert f"{m['sharpe']:.3f}" in text
    assert ">x5<" in text  # cost multipliers
    assert "Deflated Sharpe" in text
    assert "PSR" in text
    assert "Sharpe across 3 seeds: mean 0.40" in text
    first_fold = report_data.fold_table.iloc[0]  # type: ignore[union-attr]
    assert f"{first_fold['test_start']:%Y-%m-%d}" in text


def test_minimal_report_has_only_the_core_sections(tmp_path: Path, sp500_panel: Any) -> None:
    close = pd.Series(sp500_panel.close[:, 0], index=sp500_panel.index)
    rets = close.pct_change().dropna().iloc[-300:]
    write_report(tmp_path, ReportData(strategy_returns=rets))
    payload = json.loads((tmp_path / METRICS_FILE).read_text())
    assert payload["sections"] == [
        "equity",
        "metrics",
        "drawdown",
        "rolling_sharpe",
        "returns_hist",
    ]
    assert payload["folds"] is None
    assert payload["baselines"] == {}
    assert sorted(payload["plots"]) == [
        "drawdown.png",
        "equity.png",
        "returns_hist.png",
        "rolling_sharpe.png",
    ]
    assert not (tmp_path / "weights.png").exists()
    parser = _Collector()
    parser.feed((tmp_path / REPORT_FILE).read_text())
    assert "folds" not in parser.ids
    assert "notes" not in parser.ids
    assert payload["metrics"]["sharpe"] == pytest.approx(compute_metrics(rets)["sharpe"])


def test_report_data_validation(tmp_path: Path) -> None:
    with pytest.raises(BacktestError, match="non-empty"):
        ReportData(strategy_returns=pd.Series(dtype=float))
    with pytest.raises(BacktestError, match="DatetimeIndex"):
        ReportData(strategy_returns=pd.Series([0.01, 0.02]))
    idx = pd.date_range("2020-01-01", periods=3, tz="UTC")
    with pytest.raises(BacktestError, match="rolling_window"):
        ReportData(strategy_returns=pd.Series([0.01, 0.0, 0.02], index=idx), rolling_window=1)
    with pytest.raises(BacktestError, match="no non-NaN"):
        ReportData(strategy_returns=pd.Series([np.nan] * 3, index=idx))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BacktestError, match="cannot be created"):
        write_report(blocker / "sub", ReportData(strategy_returns=pd.Series([0.01] * 3, index=idx)))


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("total_return", 0.1234, "12.34%"),
        ("max_drawdown", -0.2, "-20.00%"),
        ("sharpe", 1.23456, "1.235"),
        ("information_ratio", 0.5, "0.500"),
        ("p_value", 0.01234, "0.012"),
        ("bars", 1234.0, "1,234"),
        ("max_drawdown_duration", 17.0, "17"),
        ("cost_multiplier", 2.0, "x2"),
        ("sharpe", float("nan"), "-"),
        ("sharpe", None, "-"),
        ("calmar", float("inf"), "-"),
        ("total_return", -math.inf, "-"),
        ("sharpe", np.float32("nan"), "-"),
        ("sharpe", np.float32(0.5), "0.500"),
        ("n_obs", np.int64(250), "250"),
        ("sharpe", pd.NA, "-"),
        ("test_start", pd.NaT, "-"),
        ("regime", "<high>", "&lt;high&gt;"),
        ("test_start", pd.Timestamp("2020-03-04", tz="UTC"), "2020-03-04"),
        ("total_costs", 81163.4, "81,163"),
        ("seed", 3, "3"),
    ],
)
def test_format_value(name: str, value: Any, text: str) -> None:
    assert format_value(name, value) == text


def _table_cells(text: str) -> dict[str, tuple[list[str], bool]]:
    """Each table's cell texts and whether the undefined-value footnote follows it."""
    out = {}
    pattern = r'<table data-table="([^"]+)">(.*?)</table></div>(<p class="footnote"[^>]*>)?'
    for name, body, note in re.findall(pattern, text, flags=re.S):
        out[name] = (re.findall(r"<td[^>]*>(.*?)</td>", body), bool(note))
    return out


def test_undefined_values_print_as_a_dash_with_a_footnote(
    report_data: ReportData, tmp_path: Path
) -> None:
    """No ``nan`` in any table: undefined cells are ``-`` and the table carries the footnote."""
    rets = report_data.strategy_returns
    metrics = compute_metrics(rets)
    metrics.update(sortino=math.nan, calmar=math.inf, deflated_sharpe=0.42)
    folds = report_data.fold_table.copy()  # type: ignore[union-attr]
    folds.loc[folds.index[0], "sharpe"] = math.nan
    regimes = report_data.regime_table.copy()  # type: ignore[union-attr]
    regimes.iloc[0, -1] = math.nan
    sig = report_data.significance_table.copy()  # type: ignore[union-attr]
    sig.loc[0, "p_value"] = math.nan
    costs = report_data.cost_sensitivity.copy()  # type: ignore[union-attr]
    costs.iloc[-1, -1] = math.inf
    seeds = pd.DataFrame({"seed": [0, 1, 2], "sharpe": [0.4, math.nan, 0.1]})
    flat = pd.Series(1.0, index=report_data.equity().index)  # all cash: Sharpe undefined
    inference = dict(report_data.sharpe_inference or {}, skew=math.nan)
    data = replace(
        report_data,
        metrics=metrics,
        fold_table=folds,
        regime_table=regimes,
        significance_table=sig,
        cost_sensitivity=costs,
        seed_table=seeds,
        sharpe_inference=inference,
        baseline_equities={**report_data.baseline_equities, "cash": flat},
        config={"risk": {"max_drawdown": math.nan}},
    )
    text = (write_report(tmp_path, data)).read_text(encoding="utf-8")
    visible = re.sub(r'src="data:image/png;base64,[^"]*"', "", text)
    assert not re.search(r"(?i)\b(nan|inf|infinity|<NA>|NaT)\b", visible)
    tables = _table_cells(visible)
    for name in ("metrics", "folds", "significance", "sharpe_inference", "regimes"):
        cells, footnote = tables[name]
        assert "-" in cells, name
        assert footnote, name
    assert "-" in tables["cost_sensitivity"][0]
    assert tables["cost_sensitivity"][1]
    assert "-" in tables["seeds"][0]
    # the KPI tiles: Sortino is undefined
    assert re.search(r'data-kpi="sortino"><div class="label">Sortino</div>'
                     r'<div class="value ">-</div>', text)  # fmt: skip
    assert 'data-footnote="undefined"' in text.split('<nav class="toc">')[0]
    # a defined value that is negative is not mistaken for undefined; the footnote explains "-"
    assert "- : undefined" in text
    assert "Sharpe across 2 seeds" in text  # the caption skips the undefined Sharpe
    assert "&quot;max_drawdown&quot;: null" in text  # config echo: JSON null, not NaN


def test_tables_without_undefined_values_carry_no_footnote(
    tmp_path: Path, sp500_panel: Any
) -> None:
    close = pd.Series(sp500_panel.close[:, 0], index=sp500_panel.index)
    rets = close.pct_change().dropna().iloc[-300:]
    text = write_report(tmp_path, ReportData(strategy_returns=rets)).read_text(encoding="utf-8")
    assert "-" not in [c for cells, _ in _table_cells(text).values() for c in cells]
    assert 'data-footnote="undefined"' not in text


def test_deflated_sharpe_shows_the_configurations_tried(
    report_data: ReportData, tmp_path: Path
) -> None:
    trials = np.array([0.2, 0.5, 0.9, -0.1, 0.4, 0.3, 0.8, 0.1, 0.6, 0.0, 0.7, 0.45])
    info = sharpe_inference(report_data.strategy_returns, trial_sharpes=trials)
    metrics = dict(compute_metrics(report_data.strategy_returns), deflated_sharpe=info["dsr"])
    data = replace(report_data, sharpe_inference=info, metrics=metrics)
    text = write_report(tmp_path, data).read_text(encoding="utf-8")
    tile = re.search(r'data-kpi="dsr">.*?<div class="sub">([^<]*)</div>', text)
    assert tile is not None
    assert tile.group(1) == "12 configurations tried"
    assert f"{info['dsr']:.3f}" in text
    assert "<td>deflated_sharpe (12 configurations tried)</td>" in text  # the metrics table
    assert ">configurations tried</th>" in text  # the inference table's column
    assert "12" in _table_cells(text)["sharpe_inference"][0]
    assert "12 configurations tried (tuning trials x members x seeds)" in text
    assert "measured from 12 of them" in text
    payload = json.loads((tmp_path / METRICS_FILE).read_text())
    assert payload["sharpe_inference"]["n_trials"] == 12
    # only a count known: the caption says the spread was assumed
    counted = sharpe_inference(report_data.strategy_returns, n_trials=1)
    text = write_report(tmp_path / "one", replace(report_data, sharpe_inference=counted)).read_text(
        encoding="utf-8"
    )
    assert "1 configuration tried" in text
    assert "assumed equal to the sampling error of one Sharpe estimate" in text
