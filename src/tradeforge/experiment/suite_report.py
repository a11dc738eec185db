"""The evaluation suite's statistics and its one report (HTML, ``suite.json``, PNG plots).

The unit of evidence is a **window**: one walk-forward test fold of one market, on which every
seed's agent and every baseline traded the same bars. Per window the Sharpe difference is the
seeds' mean annualised Sharpe minus the benchmark's; the **pooled** difference is the mean over
windows weighted by their length in years. Its confidence interval comes from a stationary
block bootstrap (Politis & Romano) run in every window independently: the same resampled bars
for every seed and the benchmark (their correlation is kept), blocks of the Politis-White
length of the window's excess returns, so each window keeps its own serial dependence.

The **best of** benchmark picks, in each window, the ``best_of`` baseline (default buy-and-hold
and equal weight) with the highest Sharpe on that window: chosen in hindsight, so it is a
harder bar than any single baseline. An agent flat in cash through a window counts as Sharpe 0.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradeforge.backtest.significance import optimal_block_length, stationary_bootstrap_indices
from tradeforge.core.errors import BacktestError
from tradeforge.core.types import FloatArray

if TYPE_CHECKING:
    from tradeforge.experiment.suite import PlannedRun, RunRecord, SuiteConfig

MIN_WINDOW_BARS = 20
REPORT_FILE = "report.html"
JSON_FILE = "suite.json"
BEST_OF = "best_of"


def sharpe_rows(returns: FloatArray, periods_per_year: int) -> FloatArray:
    """Annualised Sharpe ``mean / std(ddof=1) * sqrt(P)`` along the last axis; 0 where the
    returns do not vary (a position flat in cash)."""
    mean = returns.mean(axis=-1)
    std = returns.std(axis=-1, ddof=1)
    safe = np.where(std > 0, std, 1.0)
    out: FloatArray = np.where(std > 0, mean / safe * math.sqrt(periods_per_year), 0.0)
    return out


@dataclass(frozen=True)
class Window:
    """One test window: ``agent`` (seeds x bars) and ``benchmark`` (bars) on the same bars."""

    key: str
    agent: FloatArray
    benchmark: FloatArray
    periods_per_year: int

    def __post_init__(self) -> None:
        if self.agent.ndim != 2 or self.benchmark.ndim != 1:
            raise BacktestError(
                f"window {self.key}: agent has shape {self.agent.shape}, benchmark "
                f"{self.benchmark.shape}; expected (seeds, bars) and (bars,)"
            )
        if self.agent.shape[1] != self.benchmark.size or self.benchmark.size < MIN_WINDOW_BARS:
            raise BacktestError(
                f"window {self.key}: {self.agent.shape[1]} agent bars, {self.benchmark.size} "
                f"benchmark bars; expected the same bars, at least {MIN_WINDOW_BARS}"
            )
        if not (np.isfinite(self.agent).all() and np.isfinite(self.benchmark).all()):
            raise BacktestError(f"window {self.key}: returns contain NaN or inf")

    @property
    def years(self) -> float:
        return self.benchmark.size / self.periods_per_year

    def difference(self) -> float:
        """Seeds' mean Sharpe minus the benchmark's."""
        ppy = self.periods_per_year
        return float(sharpe_rows(self.agent, ppy).mean() - sharpe_rows(self.benchmark, ppy))


@dataclass(frozen=True)
class PooledDifference:
    """The pooled Sharpe difference (agent minus benchmark) over windows, with its bootstrap
    confidence interval and two-sided p-value of "no difference"."""

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n_windows: int
    years: float
    share_won: float
    window_diffs: FloatArray
    n_boot: int
    confidence: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "sharpe_diff": self.diff,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "windows": self.n_windows,
            "test_years": self.years,
            "share_won": self.share_won,
        }


def pooled_sharpe_difference(
    windows: Sequence[Window], *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> PooledDifference:
    """Year-weighted mean over ``windows`` of (seeds' mean Sharpe - benchmark Sharpe), with a
    percentile interval from a stationary block bootstrap within each window (see the module
    docstring). ``share_won``: the share of windows whose difference is above 0. Identical
    agent and benchmark give 0 with the interval [0, 0] and p = 1. Seeded."""
    if not windows:
        raise BacktestError("pooled_sharpe_difference needs at least one window, got none")
    if n_boot < 100 or not 0.0 < confidence < 1.0:
        raise BacktestError(
            f"n_boot = {n_boot}, confidence = {confidence}; expected n_boot >= 100 and "
            "0 < confidence < 1"
        )
    rng = np.random.default_rng(seed)
    weights = np.array([w.years for w in windows])
    weights = weights / weights.sum()
    diffs = np.array([w.difference() for w in windows])
    boot = np.zeros(n_boot)
    for weight, w in zip(weights, windows, strict=True):
        ppy, n = w.periods_per_year, w.benchmark.size
        block = optimal_block_length(w.agent.mean(axis=0) - w.benchmark)
        for lo in range(0, n_boot, 500):  # bounded memory
            k = min(500, n_boot - lo)
            idx = stationary_bootstrap_indices(n, block, k, rng)
            agent = sharpe_rows(w.agent[:, idx], ppy).mean(axis=0)
            boot[lo : lo + k] += weight * (agent - sharpe_rows(w.benchmark[idx], ppy))
    pooled = float(weights @ diffs)
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    p = float(np.mean(np.abs(boot - pooled) >= abs(pooled) - 1e-12))
    return PooledDifference(
        diff=pooled,
        ci_low=float(low),
        ci_high=float(high),
        p_value=p,
        n_windows=len(windows),
        years=float(sum(w.years for w in windows)),
        share_won=float(np.mean(diffs > 0)),
        window_diffs=diffs,
        n_boot=n_boot,
        confidence=confidence,
    )


# --------------------------------------------------------------------------- folds of the suite


@dataclass(frozen=True)
class FoldData:
    """One walk-forward test fold of one market: every seed's agent returns and every
    baseline's, on the same bars."""

    experiment: str
    market: str
    fold: int
    index: pd.DatetimeIndex
    agent: FloatArray  # (seeds, bars)
    baselines: dict[str, FloatArray]
    periods_per_year: int
    seeds: tuple[int, ...]

    @property
    def years(self) -> float:
        return len(self.index) / self.periods_per_year

    def best_of(self, candidates: Sequence[str]) -> str:
        """The candidate baseline with the highest Sharpe on this fold (first on ties)."""
        present = [c for c in candidates if c in self.baselines]
        if not present:
            raise BacktestError(
                f"{self.experiment}/{self.market} fold {self.fold}: none of the best_of "
                f"baselines {list(candidates)} was run; expected them in report.baselines"
            )
        scores = [float(sharpe_rows(self.baselines[c], self.periods_per_year)) for c in present]
        return present[int(np.argmax(scores))]

    def benchmark(self, name: str, candidates: Sequence[str]) -> FloatArray:
        chosen = self.best_of(candidates) if name == BEST_OF else name
        if chosen not in self.baselines:
            raise BacktestError(
                f"{self.experiment}/{self.market} fold {self.fold}: no returns of baseline "
                f"{chosen!r}; expected it in report.baselines"
            )
        return self.baselines[chosen]

    def window(self, name: str, candidates: Sequence[str]) -> Window:
        key = f"{self.experiment}/{self.market}/fold {self.fold}"
        return Window(key, self.agent, self.benchmark(name, candidates), self.periods_per_year)


def collect_folds(records: Sequence[RunRecord]) -> list[FoldData]:
    """Group the runs' returns into folds: seeds of one (experiment, market) side by side."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.experiment, r.market), []).append(r)
    out: list[FoldData] = []
    for (experiment, market), runs in groups.items():
        runs = sorted(runs, key=lambda r: r.seed)
        ppys = {r.periods_per_year for r in runs}
        if len(ppys) != 1:
            raise BacktestError(
                f"{experiment}/{market}: seeds annualise with {sorted(ppys)} periods per year; "
                "expected one value"
            )
        first = runs[0].returns
        for fold in sorted(int(f) for f in first["fold"].unique()):
            parts = [r.returns[r.returns["fold"] == fold] for r in runs]
            index = parts[0].index
            if any(not p.index.equals(index) for p in parts):
                raise BacktestError(
                    f"{experiment}/{market} fold {fold}: the seeds' test bars differ; expected "
                    "every seed on the same walk-forward folds"
                )
            agent = np.vstack([p["agent"].to_numpy(np.float64) for p in parts])
            names = [c for c in parts[0].columns if c not in ("fold", "agent")]
            baselines = {c: parts[0][c].to_numpy(np.float64) for c in names}
            out.append(
                FoldData(
                    experiment,
                    market,
                    fold,
                    pd.DatetimeIndex(index),
                    agent,
                    baselines,
                    runs[0].periods_per_year,
                    tuple(r.seed for r in runs),
                )
            )
    return out


def _varying(folds: Sequence[FoldData], name: str) -> bool:
    return any(float(np.std(f.baselines.get(name, np.zeros(1)))) > 0 for f in folds)


def benchmarks_of(folds: Sequence[FoldData], suite: SuiteConfig) -> list[str]:
    """Benchmarks to test against: every baseline run in all folds whose returns vary (cash's
    Sharpe is undefined), then ``best_of``."""
    common = set.intersection(*(set(f.baselines) for f in folds)) if folds else set()
    ordered = [b for b in suite.report_baselines() if b in common]
    ordered += sorted(common - set(ordered))
    return [b for b in ordered if _varying(folds, b)] + [BEST_OF]


def _total_return(r: FloatArray) -> float:
    return float(np.prod(1.0 + r) - 1.0)


def _sharpe_or_nan(r: FloatArray, ppy: int) -> float:
    return float(sharpe_rows(r, ppy)) if r.size > 1 and float(np.std(r)) > 0 else math.nan


def fold_table(folds: Sequence[FoldData], suite: SuiteConfig) -> pd.DataFrame:
    """One row per market and fold: the agent (seed mean) against every baseline and the best
    of ``best_of``, with the Sharpe difference against the headline benchmark."""
    rows = []
    for f in folds:
        ppy = f.periods_per_year
        seed_sharpes = sharpe_rows(f.agent, ppy)
        best = f.best_of(suite.best_of)
        row: dict[str, Any] = {
            "experiment": f.experiment,
            "market": f.market,
            "fold": f.fold,
            "test_start": f.index[0].strftime("%Y-%m-%d"),
            "test_end": f.index[-1].strftime("%Y-%m-%d"),
            "n_bars": len(f.index),
            "seeds": len(f.seeds),
            "agent_return": float(np.mean([_total_return(a) for a in f.agent])),
            "agent_sharpe": float(seed_sharpes.mean()),
            "agent_sharpe_seed_std": float(seed_sharpes.std(ddof=1)) if len(f.seeds) > 1 else 0.0,
        }
        for name, r in f.baselines.items():
            row[f"sharpe_{name}"] = _sharpe_or_nan(r, ppy)
        row["best_of"] = best
        row["sharpe_best_of"] = float(sharpe_rows(f.baselines[best], ppy))
        row[f"diff_vs_{suite.benchmark}"] = f.window(suite.benchmark, suite.best_of).difference()
        rows.append(row)
    return pd.DataFrame(rows)


def pooled_table(
    folds: Sequence[FoldData], suite: SuiteConfig, tried: dict[str, int]
) -> pd.DataFrame:
    """Per experiment (and all experiments, for the headline benchmark) and benchmark: the
    pooled Sharpe difference, its interval, p-value, share of folds won."""
    rows = []
    experiments = list(dict.fromkeys(f.experiment for f in folds))
    for exp in experiments:
        mine = [f for f in folds if f.experiment == exp]
        for bench in benchmarks_of(mine, suite):
            res = pooled_sharpe_difference(
                [f.window(bench, suite.best_of) for f in mine],
                n_boot=suite.bootstrap_samples,
                confidence=suite.confidence,
            )
            rows.append(
                {
                    "experiment": exp,
                    "benchmark": bench,
                    **res.as_dict(),
                    "markets": len({f.market for f in mine}),
                    "seeds": len(mine[0].seeds),
                    "configurations_tried": tried.get(exp, 1),
                }
            )
    if len(experiments) > 1:
        res = pooled_sharpe_difference(
            [f.window(suite.benchmark, suite.best_of) for f in folds],
            n_boot=suite.bootstrap_samples,
            confidence=suite.confidence,
        )
        rows.append(
            {
                "experiment": "all",
                "benchmark": suite.benchmark,
                **res.as_dict(),
                "markets": len({(f.experiment, f.market) for f in folds}),
                "seeds": max(len(f.seeds) for f in folds),
                "configurations_tried": sum(tried.values()),
            }
        )
    return pd.DataFrame(rows)


def market_table(folds: Sequence[FoldData], suite: SuiteConfig) -> pd.DataFrame:
    """Per experiment and market over all its folds: the agent against buy-and-hold, equal
    weight, the best rule baseline and the best of ``best_of``; pooled difference and CI."""
    rows = []
    keys = list(dict.fromkeys((f.experiment, f.market) for f in folds))
    for exp, market in keys:
        mine = [f for f in folds if f.experiment == exp and f.market == market]
        ppy = mine[0].periods_per_year
        agent = np.hstack([f.agent for f in mine])
        base = {n: np.hstack([f.baselines[n] for f in mine]) for n in mine[0].baselines}
        best = np.hstack([f.baselines[f.best_of(suite.best_of)] for f in mine])
        res = pooled_sharpe_difference(
            [f.window(suite.benchmark, suite.best_of) for f in mine],
            n_boot=suite.bootstrap_samples,
            confidence=suite.confidence,
        )
        rules = {n: _sharpe_or_nan(r, ppy) for n, r in base.items() if n not in suite.best_of}
        rules = {n: s for n, s in rules.items() if not math.isnan(s)}
        top_rule = max(rules, key=lambda n: rules[n]) if rules else None
        rows.append(
            {
                "experiment": exp,
                "market": market,
                "folds": len(mine),
                "seeds": len(mine[0].seeds),
                "test_years": sum(f.years for f in mine),
                "agent_return": float(np.mean([_total_return(a) for a in agent])),
                "agent_sharpe": float(sharpe_rows(agent, ppy).mean()),
                "return_buy_and_hold": _total_return(base["buy_and_hold"])
                if "buy_and_hold" in base
                else math.nan,
                "sharpe_buy_and_hold": _sharpe_or_nan(base.get("buy_and_hold", np.zeros(1)), ppy),
                "sharpe_equal_weight": _sharpe_or_nan(base.get("equal_weight", np.zeros(1)), ppy),
                "best_rule": top_rule or "-",
                "sharpe_best_rule": rules[top_rule] if top_rule else math.nan,
                "sharpe_best_of": float(sharpe_rows(best, ppy)),
                "sharpe_diff": res.diff,
                "ci_low": res.ci_low,
                "ci_high": res.ci_high,
                "p_value": res.p_value,
                "share_won": res.share_won,
            }
        )
    return pd.DataFrame(rows)


def _run_benchmark(record: RunRecord, suite: SuiteConfig) -> FloatArray:
    """The run's stitched headline benchmark (per fold, the best of ``best_of`` when asked)."""
    parts = []
    for _, part in record.returns.groupby("fold", sort=True):
        name = suite.benchmark
        if name == BEST_OF:
            present = [c for c in suite.best_of if c in part.columns]
            scores = [
                float(sharpe_rows(part[c].to_numpy(np.float64), record.periods_per_year))
                for c in present
            ]
            name = present[int(np.argmax(scores))]
        parts.append(part[name].to_numpy(np.float64))
    return np.concatenate(parts)


_COST_COLUMNS = (
    "sharpe",
    "annual_return",
    "avg_turnover",
    "sharpe_vs_benchmark",
    "beats_benchmark",
)


def _weighted(group: pd.DataFrame) -> pd.Series:
    """Test-year-weighted means of the cost columns (NaN entries left out)."""
    out: dict[str, float] = {"runs": float(len(group)), "test_years": float(group["years"].sum())}
    for column in _COST_COLUMNS:
        values = group[column].to_numpy(np.float64)
        weights = group["years"].to_numpy(np.float64)
        ok = np.isfinite(values)
        out[column] = float(np.average(values[ok], weights=weights[ok])) if ok.any() else math.nan
    return pd.Series(out)


def cost_table(records: Sequence[RunRecord], suite: SuiteConfig) -> pd.DataFrame:
    """Each run's cost table (costs x0, x1, x2, x5 and extra fill delays, from its report),
    averaged per experiment with each run weighted by its test years (as the pooled difference
    weighs folds); ``sharpe_vs_benchmark``: agent Sharpe at those costs minus the run's benchmark
    Sharpe at the configured costs; ``share_beating_benchmark``: the test-year share of runs
    where it is above 0."""
    frames = []
    for r in records:
        if r.costs is None or r.costs.empty:
            continue
        bench = float(sharpe_rows(_run_benchmark(r, suite), r.periods_per_year))
        frame = r.costs.copy()
        frame["sharpe_vs_benchmark"] = frame["sharpe"].astype(float) - bench
        frame["beats_benchmark"] = (frame["sharpe_vs_benchmark"] > 0).astype(float)
        frame["years"] = len(r.returns) / r.periods_per_year
        frame.insert(0, "experiment", r.experiment)
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    joined = pd.concat(frames, ignore_index=True)
    rows: list[dict[str, Any]] = []
    keys = ["experiment", "cost_multiplier", "delay_bars"]
    for key, group in joined.groupby(keys, sort=False):
        row: dict[str, Any] = dict(zip(keys, tuple(key), strict=True))
        row.update({str(k): v for k, v in _weighted(group).items()})
        rows.append(row)
    out = pd.DataFrame(rows)
    out["runs"] = out["runs"].astype(int)
    return out.rename(columns={"beats_benchmark": "share_beating_benchmark"})


# --------------------------------------------------------------------------------------- plots

_COLORS = ("#2563eb", "#f97316", "#10b981", "#a855f7", "#ef4444", "#eab308", "#0ea5e9", "#64748b")


def _figure(height: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, height), dpi=110, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white")
    return buf.getvalue()


def forest_plot(markets: pd.DataFrame, pooled: pd.DataFrame, benchmark: str) -> bytes:
    """Sharpe difference against ``benchmark`` with its interval, per market and pooled."""
    rows: list[tuple[str, float, float, float, bool]] = []
    headline = pooled[pooled["benchmark"] == benchmark]
    for exp in dict.fromkeys(markets["experiment"]):
        for _, m in markets[markets["experiment"] == exp].iterrows():
            rows.append(
                (f"{exp} / {m['market']}", m["sharpe_diff"], m["ci_low"], m["ci_high"], False)
            )
        for _, p in headline[headline["experiment"] == exp].iterrows():
            rows.append((f"{exp}: pooled", p["sharpe_diff"], p["ci_low"], p["ci_high"], True))
    for _, p in headline[headline["experiment"] == "all"].iterrows():
        rows.append(("all experiments: pooled", p["sharpe_diff"], p["ci_low"], p["ci_high"], True))
    fig, ax = _figure(max(2.5, 0.38 * len(rows) + 1.2))
    ys = np.arange(len(rows))[::-1]
    for y, (_, d, lo, hi, pooled_row) in zip(ys, rows, strict=True):
        color = "#111827" if pooled_row else "#2563eb"
        ax.plot([lo, hi], [y, y], color=color, linewidth=2.4 if pooled_row else 1.4)
        ax.plot([d], [y], marker="D" if pooled_row else "o", color=color, markersize=7)
    ax.axvline(0.0, color="#b91c1c", linewidth=1.0, linestyle="--")
    ax.set_yticks(ys, [r[0] for r in rows], fontsize=9)
    ax.set_xlabel(f"Sharpe difference, agent - {benchmark} (annualised, 95% CI)")
    return _png(fig)


def folds_plot(folds: pd.DataFrame, benchmark: str) -> bytes:
    """Each fold's Sharpe difference against the benchmark, at its test end, by market."""
    fig, ax = _figure(4.0)
    column = f"diff_vs_{benchmark}"
    markers = ("o", "s", "^", "D", "v", "P")
    experiments = list(dict.fromkeys(folds["experiment"]))
    markets = list(dict.fromkeys(folds["market"]))
    for _, row in folds.iterrows():
        ax.scatter(
            [pd.Timestamp(row["test_end"])],
            [row[column]],
            color=_COLORS[markets.index(row["market"]) % len(_COLORS)],
            marker=markers[experiments.index(row["experiment"]) % len(markers)],
            s=28,
        )
    for i, market in enumerate(markets):
        ax.scatter([], [], color=_COLORS[i % len(_COLORS)], label=market, s=28)
    ax.axhline(0.0, color="#b91c1c", linewidth=1.0, linestyle="--")
    ax.set_ylabel(f"Sharpe diff vs {benchmark}")
    ax.legend(frameon=False, fontsize=8, ncol=min(len(markets), 6), loc="best")
    return _png(fig)


def costs_plot(costs: pd.DataFrame) -> bytes:
    """Mean agent Sharpe against the cost multiplier (at the configured fill delay), per
    experiment, with the mean Sharpe difference to the benchmark."""
    fig, ax = _figure(3.6)
    for i, exp in enumerate(dict.fromkeys(costs["experiment"])):
        mine = costs[costs["experiment"] == exp]
        delay = mine["delay_bars"].iloc[0]
        mine = mine[mine["delay_bars"] == delay].sort_values("cost_multiplier")
        color = _COLORS[i % len(_COLORS)]
        x = mine["cost_multiplier"].to_numpy(float)
        ax.plot(x, mine["sharpe"], marker="o", color=color, label=f"{exp}: agent Sharpe")
        bench = (mine["sharpe"] - mine["sharpe_vs_benchmark"]).to_numpy(float)
        ax.plot(x, bench, linestyle="--", color=color, label=f"{exp}: benchmark (costs x1)")
    ax.set_xlabel("cost multiplier (every cost rate x k)")
    ax.set_ylabel("mean Sharpe (runs weighted by test years)")
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)


# -------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class SuiteReport:
    """The suite report's tables, its JSON summary and the HTML file written."""

    pooled: pd.DataFrame
    markets: pd.DataFrame
    folds: pd.DataFrame
    costs: pd.DataFrame
    summary: dict[str, Any]
    html: Path


def _benchmark_label(suite: SuiteConfig) -> str:
    if suite.benchmark == BEST_OF:
        return f"the best of {' and '.join(suite.best_of)} (per market and fold, in hindsight)"
    return suite.benchmark


def verdicts(pooled: pd.DataFrame, suite: SuiteConfig) -> list[str]:
    """One sentence per experiment on the pooled difference against the headline benchmark."""
    out = []
    level = f"{suite.confidence:.0%}"
    for _, row in pooled[pooled["benchmark"] == suite.benchmark].iterrows():
        if row["ci_low"] > 0:
            call = f"better than the benchmark at {level} (the interval is above 0)"
        elif row["ci_high"] < 0:
            call = f"worse than the benchmark at {level} (the interval is below 0)"
        else:
            call = f"not distinguishable from the benchmark at {level} (the interval includes 0)"
        out.append(
            f"{row['experiment']}: pooled Sharpe difference {row['sharpe_diff']:+.2f} "
            f"({level} CI {row['ci_low']:+.2f} .. {row['ci_high']:+.2f}, p = {row['p_value']:.3f}) "
            f"against {_benchmark_label(suite)}, over {row['test_years']:.1f} test years in "
            f"{int(row['windows'])} folds on {int(row['markets'])} markets x {int(row['seeds'])} "
            f"seeds; it won {row['share_won']:.0%} of the folds: {call}."
        )
    return out


def suite_notes(suite: SuiteConfig, plan: Sequence[PlannedRun]) -> list[str]:
    """How the numbers were made and what they do not show."""
    return [
        "Every (experiment, market, seed) is one walk-forward run of `tradeforge run`: each fold "
        "fits features and trains on its own window, picks on its validation window and trades "
        "its test window once; baselines trade the same test bars through the same simulator "
        "and costs.",
        "Pooled Sharpe difference: per fold, the seeds' mean Sharpe minus the benchmark's; "
        "averaged over folds weighted by test years. Interval: stationary block bootstrap "
        f"({suite.bootstrap_samples} resamples) inside each fold, the same bars for every seed "
        "and the benchmark.",
        "The interval treats folds of different markets as independent; S&P 500, NASDAQ and "
        "GOOGL move together and a weekly resample repeats the years of its daily series, so "
        "the true uncertainty is wider than shown. Seeds are averaged, not resampled.",
        "The best-of benchmark is chosen per fold in hindsight (the better of "
        f"{', '.join(suite.best_of)} on that fold): a harder bar than any one baseline.",
        f"{len(suite.experiments)} experiment configs x {len(suite.markets)} markets x "
        f"{len(suite.seeds)} seeds = {len(plan)} runs; each run's own deflated Sharpe counts "
        "its configurations tried (members x seeds x tuning trials), shown in the pooled table.",
        "AAPL, IBM, MSFT, GOOG and GOOGL are survivors chosen in hindsight; the baselines share "
        "that bias, so the comparison within the suite stays fair.",
    ]


def _runs_table(
    records: Sequence[RunRecord], plan: Sequence[PlannedRun], root: Path
) -> pd.DataFrame:
    years = {(p.experiment, p.market, p.seed): p for p in plan}
    rows = []
    for r in records:
        p = years[(r.experiment, r.market, r.seed)]
        agent = r.returns["agent"].to_numpy(np.float64)
        rows.append(
            {
                "experiment": r.experiment,
                "market": r.market,
                "seed": r.seed,
                "symbols": " ".join(p.config.data.symbols or []),
                "frequency": p.config.data.frequency,
                "folds": p.folds,
                "test_years": p.test_years,
                "agent_return": _total_return(agent),
                "agent_sharpe": _sharpe_or_nan(agent, r.periods_per_year),
                "status": r.status,
                "train_seconds": r.seconds if r.seconds is not None else math.nan,
                "run_dir": str(r.run_dir.relative_to(root))
                if r.run_dir.is_relative_to(root)
                else str(r.run_dir),
            }
        )
    return pd.DataFrame(rows)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    from tradeforge.experiment.report import json_safe

    out: list[dict[str, Any]] = json_safe(frame.to_dict(orient="records"))
    return out


def _headline_tiles(pooled: pd.DataFrame, suite: SuiteConfig) -> str:
    import html

    from tradeforge.backtest.report.html import format_value

    tiles = []
    for _, row in pooled[pooled["benchmark"] == suite.benchmark].iterrows():
        cls = "pos" if row["ci_low"] > 0 else ("neg" if row["ci_high"] < 0 else "")
        tiles.append(
            f'<div class="kpi" data-kpi="{html.escape(str(row["experiment"]))}">'
            f'<div class="label">{html.escape(str(row["experiment"]))}: Sharpe diff</div>'
            f'<div class="value {cls}">{row["sharpe_diff"]:+.2f}</div>'
            f'<div class="sub">CI {row["ci_low"]:+.2f} .. {row["ci_high"]:+.2f} · won '
            f"{format_value('share_won', row['share_won'])} of {int(row['windows'])} folds · "
            f"{row['test_years']:.1f} test years</div></div>"
        )
    return f'<div class="kpis" id="kpis" data-section="kpis">{"".join(tiles)}</div>'


def write_suite_report(
    suite: SuiteConfig,
    plan: Sequence[PlannedRun],
    records: Sequence[RunRecord],
    out_dir: Path,
    seconds: float,
) -> SuiteReport:
    """Compute the suite's tables and write ``report.html``, ``suite.json`` and the plots."""
    from tradeforge.backtest.report import html as h

    folds = collect_folds(records)
    tried: dict[str, int] = {}
    for r in records:
        tried[r.experiment] = max(tried.get(r.experiment, 1), r.configurations_tried)
    pooled = pooled_table(folds, suite, tried)
    markets = market_table(folds, suite)
    per_fold = fold_table(folds, suite)
    costs = cost_table(records, suite)
    runs = _runs_table(records, plan, out_dir)
    images = {
        "forest": forest_plot(markets, pooled, suite.benchmark),
        "folds": folds_plot(per_fold, suite.benchmark),
    }
    if not costs.empty:
        images["costs"] = costs_plot(costs)
    for name, png in images.items():
        (out_dir / f"suite_{name}.png").write_bytes(png)
    said = verdicts(pooled, suite)
    notes = suite_notes(suite, plan)
    train_seconds = float(sum(r.seconds or 0.0 for r in records))

    sections = [
        _headline_tiles(pooled, suite),
        h.section(
            "Verdict", "<ul>" + "".join(f"<li>{_esc(v)}</li>" for v in said) + "</ul>", "verdict"
        ),
        h.notes_html(notes),
        h.section(
            "Pooled Sharpe difference, agent minus benchmark",
            h.image_html("forest", images["forest"], "forest plot")
            + h.table_html(pooled, "pooled"),
            "pooled",
            caption=f"Every benchmark over every market and fold of each experiment; "
            f"{suite.confidence:.0%} bootstrap interval; share won = folds with a positive "
            "difference.",
        ),
        h.section(
            "Per market",
            h.table_html(markets, "markets"),
            "markets",
            caption=f"All folds of a market; Sharpe difference against {suite.benchmark}.",
        ),
        h.section(
            "Per market and fold",
            h.image_html("folds", images["folds"], "per-fold differences")
            + h.details_html("Every fold", h.table_html(per_fold, "folds")),
            "folds",
            caption="Agent Sharpe = mean over seeds; sharpe_<baseline> per baseline; best_of = "
            "the best of the best_of baselines on that fold.",
        ),
    ]
    if not costs.empty:
        sections.append(
            h.section(
                "Cost sensitivity",
                h.image_html("costs", images["costs"], "cost sensitivity")
                + h.table_html(costs, "costs"),
                "costs",
                caption="Each run's same target weights re-run with every cost rate x k and with "
                "later fills, averaged over runs weighted by test years; sharpe vs benchmark = "
                "agent at those costs minus the benchmark at the configured costs.",
            )
        )
    sections.append(
        h.section(
            "Runs",
            h.table_html(runs, "runs"),
            "runs",
            caption=f"Training time of the runs trained: {train_seconds:,.0f} s; this invocation "
            f"took {seconds:,.0f} s (resumed runs are read back, not retrained).",
        )
    )
    sections.append(h.config_html(suite.model_dump(mode="json")))
    years = float(sum(p.test_years for p in plan if p.seed == suite.seeds[0]))
    subtitle = (
        f"{len(suite.experiments)} experiments · {len({(p.experiment, p.market) for p in plan})} "
        f"experiment-markets · {len(suite.seeds)} seeds · {years:.1f} test years per seed · "
        f"benchmark: {suite.benchmark}"
    )
    html_path = out_dir / REPORT_FILE
    html_path.write_text(
        h.page(f"tradeforge suite: {suite.name}", subtitle, sections), encoding="utf-8"
    )

    summary: dict[str, Any] = {
        "suite": suite.name,
        "out_dir": str(out_dir),
        "report": str(html_path),
        "benchmark": suite.benchmark,
        "best_of": list(suite.best_of),
        "seeds": list(suite.seeds),
        "runs_total": len(records),
        "runs_trained": sum(r.status == "trained" for r in records),
        "runs_resumed": sum(r.status == "resumed" for r in records),
        "test_years": years,
        "seconds": seconds,
        "train_seconds": train_seconds,
        "verdicts": said,
        "pooled": _records(pooled),
        "markets": _records(markets),
        "folds": _records(per_fold),
        "costs": _records(costs),
        "runs": _records(runs),
        "notes": notes,
        "plots": sorted(f"suite_{k}.png" for k in images),
    }
    from tradeforge.experiment.report import json_safe

    (out_dir / JSON_FILE).write_text(
        json.dumps(json_safe(summary), indent=2, allow_nan=False), encoding="utf-8"
    )
    return SuiteReport(pooled, markets, per_fold, costs, summary, html_path)


def _esc(text: str) -> str:
    import html

    return html.escape(text)


__all__ = [
    "BEST_OF",
    "FoldData",
    "PooledDifference",
    "SuiteReport",
    "Window",
    "collect_folds",
    "cost_table",
    "fold_table",
    "market_table",
    "pooled_sharpe_difference",
    "pooled_table",
    "sharpe_rows",
    "verdicts",
    "write_suite_report",
]
