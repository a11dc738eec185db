"""What a run reports besides the returns: fold and member tables, verdict, notes, the HTML."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradeforge.backtest.metrics import compute_metrics, equity_curve
from tradeforge.backtest.walkforward import Fold
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import BarPanel
from tradeforge.experiment.config import ExperimentConfig
from tradeforge.experiment.report_importance import importance_tables

if TYPE_CHECKING:
    from tradeforge.experiment.validation import Validation


@dataclass
class FoldOutcome:
    """What one fold left behind: test weights, backtest, validation scores, artifact path."""

    fold: Fold
    weights: FloatArray
    returns: pd.Series
    costs: float
    trained: dict[str, Any]
    artifact: Path
    members: dict[str, float] = field(default_factory=dict)


def fold_table(panel: BarPanel, outcomes: list[FoldOutcome], ppy: int) -> pd.DataFrame:
    rows = []
    for o in outcomes:
        times = o.fold.times(panel.index)
        m = compute_metrics(o.returns, periods_per_year=ppy)
        validation = o.trained.get("validation", {})
        if "selected" in o.trained:  # an ensemble: the selected member's validation statistics
            validation = validation.get(o.trained["selected"], {})
            validation = {"sharpe": validation.get("sharpe_full", math.nan)}
        rows.append(
            {
                "fold": o.fold.number,
                "train": f"{times['train_start']:%Y-%m-%d} .. {times['train_end']:%Y-%m-%d}",
                "test": f"{times['test_start']:%Y-%m-%d} .. {times['test_end']:%Y-%m-%d}",
                "val_sharpe": validation.get("sharpe", math.nan),
                "test_return": m["total_return"],
                "test_sharpe": m["sharpe"],
                "test_max_drawdown": m["max_drawdown"],
                "costs_paid": o.costs,
                **(
                    {"limit_breaches": o.trained["risk_violations"]["any"]}
                    if "risk_violations" in o.trained
                    else {}
                ),
            }
        )
    return pd.DataFrame(rows)


def member_table(outcomes: list[FoldOutcome]) -> pd.DataFrame | None:
    """One row per fold and ensemble member (or seed): validation score and weight."""
    rows = []
    for o in outcomes:
        if "selected" in o.trained:
            spread = o.trained.get("seed_spread", {})
            for name, stats in o.trained.get("validation", {}).items():
                rows.append(
                    {
                        "fold": o.fold.number,
                        "member": name,
                        "val_sharpe": stats.get("sharpe_full", math.nan),
                        "val_window_score": stats.get("score", math.nan),
                        "val_return": stats.get("total_return", math.nan),
                        "weight": o.members.get(name, math.nan),
                        "seeds_sharpe_mean": spread.get(name, {}).get("mean", math.nan),
                        "seeds_sharpe_std": spread.get(name, {}).get("std", math.nan),
                    }
                )
        else:
            for seed in o.trained.get("seeds", []):
                val = seed.get("validation", {})
                rows.append(
                    {
                        "fold": o.fold.number,
                        "member": f"seed {seed.get('seed')}",
                        "val_sharpe": val.get("sharpe", math.nan),
                        "timesteps": seed.get("timesteps"),
                        "stopped_early": seed.get("stopped_early"),
                        "chosen": seed.get("seed") == o.trained.get("best_seed"),
                    }
                )
    return pd.DataFrame(rows) if rows else None


def equity_from(returns: pd.Series, start: pd.Timestamp) -> pd.Series:
    """Growth of 1 from the first decision bar (value 1) through every return."""
    head = pd.Series([1.0], index=pd.DatetimeIndex([start]))
    curve: pd.Series = pd.concat([head, equity_curve(returns)])
    return curve


def testable(returns: dict[str, pd.Series]) -> dict[str, pd.Series]:
    """Baselines whose returns vary (a Sharpe difference against cash is undefined)."""
    return {k: v for k, v in returns.items() if float(np.nanstd(v.to_numpy())) > 0.0}


def verdict(sig: pd.DataFrame, benchmark: str) -> str | None:
    """One sentence on the strategy against the benchmark baseline, from the bootstrap test."""
    rows = sig[sig["baseline"] == benchmark] if "baseline" in sig else sig.iloc[0:0]
    if rows.empty:
        return None
    row = rows.iloc[0]
    diff, p = float(row["sharpe_diff"]), float(row["p_value"])
    side = "above" if diff > 0 else "below"
    if p < 0.05:
        call = f"significant at 5% (p = {p:.3f})"
    else:
        call = f"not significant (p = {p:.2f}): no evidence the strategy differs from {benchmark}"
    return (
        f"Verdict: out-of-sample Sharpe {abs(diff):.2f} {side} {benchmark} "
        f"(95% CI {float(row['ci_low']):+.2f} .. {float(row['ci_high']):+.2f}), {call}."
    )


def notes(
    config: ExperimentConfig, outcomes: list[FoldOutcome], dsr: float, n_trials: int = 1
) -> list[str]:
    """How the numbers were made, and the caveats a reader should see first."""
    out = [
        f"{len(outcomes)} walk-forward folds; every fold refits features and retrains on its own "
        "training window, selects checkpoints on its validation window and trades its test window once.",
        "Decisions at each bar's close fill at the next bar's "
        f"{config.env.sim.fill_price}; costs as configured in env.sim.costs.",
    ]
    spreads = [o.trained.get("spread", {}).get("sharpe") for o in outcomes]
    for o in outcomes:
        spreads.extend(o.trained.get("seed_spread", {}).values())
    spreads = [s for s in spreads if s]
    if spreads and any(s.get("std", 0.0) > 0 for s in spreads):
        worst = max(s["std"] for s in spreads)
        out.append(
            f"Results depend on the seed: the validation Sharpe's std across seeds reaches "
            f"{worst:.2f}; the seeds table lists every member and seed."
        )
    breaches = [o.trained["risk_violations"] for o in outcomes if "risk_violations" in o.trained]
    if breaches:
        hit = sum(b["any"] for b in breaches)
        steps = sum(b["steps"] for b in breaches)
        out.append(
            f"Risk limits {config.risk}: the policy's raw targets broke them on {hit} of {steps} "
            "test decisions; every traded target was projected onto the limits."
        )
    if config.walkforward.warm_start:
        out.append("Each fold after the first starts from the previous fold's trained weights.")
    if config.warm_start is not None:
        out.append(f"Agents were warm-started by behaviour cloning: {config.warm_start}.")
    if not math.isnan(dsr):
        out.append(
            f"Deflated Sharpe ratio {dsr:.2f} over {n_trials} configurations tried (tuning trials "
            "x members x seeds): the probability that the true Sharpe is above what the best of "
            "them would show by luck alone."
        )
    return out


def risk_summary(outcomes: list[FoldOutcome]) -> dict[str, Any] | None:
    """What the risk engine did in the test windows (``env.risk`` with order checks, stops or
    breakers): each fold's counts (``RiskTally.to_json``) and their totals; None without it."""
    folds = [o.trained["risk"] for o in outcomes if o.trained.get("risk") is not None]
    if not folds:
        return None
    total: dict[str, Any] = {"orders": 0, "approved": 0}
    for key in ("denied", "stops", "trips", "state_bars"):
        total[key] = {}
    for tally in folds:
        total["orders"] += tally["orders"]
        total["approved"] += tally["approved"]
        for key in ("denied", "stops", "trips", "state_bars"):
            for name, count in tally[key].items():
                total[key][name] = total[key].get(name, 0) + count
    bars = sum(total["state_bars"].values())
    total["state_share"] = {k: (v / bars if bars else 0.0) for k, v in total["state_bars"].items()}
    return {"folds": folds, "total": total}


def risk_table(outcomes: list[FoldOutcome]) -> pd.DataFrame | None:
    """The report's risk table: one column per fold and the total; rows: orders checked and
    approved, denials by reason, stops hit by reason, breaker trips and decision bars in each
    state (with their share)."""
    summary = risk_summary(outcomes)
    if summary is None:
        return None
    columns: dict[str, dict[str, str]] = {}
    named = [o.fold.number for o in outcomes if o.trained.get("risk") is not None]
    for label, tally in [*zip([f"fold {n}" for n in named], summary["folds"], strict=True),
                         ("total", summary["total"])]:  # fmt: skip
        col = {"orders checked": str(tally["orders"]), "approved": str(tally["approved"])}
        col.update({f"denied: {k}": str(v) for k, v in tally["denied"].items()})
        col.update({f"stop: {k}": str(v) for k, v in tally["stops"].items()})
        col.update({f"breaker: {k}": str(v) for k, v in tally["trips"].items()})
        col.update({f"bars {k}": f"{v} ({tally['state_share'][k]:.0%})"
                    for k, v in tally["state_bars"].items()})  # fmt: skip
        columns[label] = col
    frame = pd.DataFrame(columns).fillna("0")
    frame.index.name = "risk engine"
    return frame.reset_index()


def write_run_report(
    config: ExperimentConfig,
    panel: BarPanel,
    folds: list[Fold],
    outcomes: list[FoldOutcome],
    checked: Validation,
    run_dir: Path,
) -> Path | None:
    """The run's HTML report, plots and ``metrics.json`` (None when ``report.html`` is off)."""
    from tradeforge.backtest.report import ReportData, write_report

    if not config.report.html:
        return None
    ppy = checked.periods_per_year
    start = panel.index[folds[0].test.start]  # the first decision: every curve starts at 1 here
    dsr = checked.metrics.get("deflated_sharpe", math.nan)
    data = ReportData(
        strategy_returns=checked.returns,
        strategy_equity=equity_from(checked.returns, start),
        title=f"tradeforge: {config.name}",
        strategy_name=config.strategy_name(),
        baseline_equities={k: equity_from(v, start) for k, v in checked.baselines.items()},
        benchmark_returns=checked.benchmark,
        weights=checked.weights,
        fold_table=fold_table(panel, outcomes, ppy),
        regime_table=checked.regimes,
        significance_table=checked.significance,
        cost_sensitivity=checked.costs,
        metrics=checked.metrics,
        seed_table=member_table(outcomes),
        sharpe_inference=checked.inference,
        config=config.model_dump(mode="json"),
        notes=[
            v
            for v in [
                verdict(checked.significance, config.report.benchmark),
                behaviour(checked.weights),
            ]
            if v
        ]
        + notes(config, outcomes, dsr, checked.n_trials),
        periods_per_year=ppy,
        extra_tables=importance_tables(run_dir),  # empty unless report.importance wrote the file
    )
    risk = risk_table(outcomes)
    if risk is not None:  # denials by reason, stops hit, breaker trips, time in each state
        data.extra_tables["Risk engine (test windows)"] = risk
    return write_report(run_dir, data)


def behaviour(weights: pd.DataFrame, tol: float = 0.02) -> str | None:
    """A warning when the policy never really traded: always in cash, or one static allocation
    (the collapse to buy-and-hold that DRL trading agents are known for)."""
    w = weights.to_numpy(dtype=np.float64)
    if w.size == 0:
        return None
    gross = np.abs(w).sum(axis=1)
    if float(gross.max()) < tol:
        return "The policy stayed in cash through every test window: it did not trade."
    spread = float((w.max(axis=0) - w.min(axis=0)).max())
    if spread < tol:
        mean = ", ".join(
            f"{c} {v:.0%}" for c, v in zip(weights.columns, w.mean(axis=0), strict=True)
        )
        return (
            f"The policy held one static allocation ({mean}) through every test window: it behaves "
            "like a fixed-weight portfolio, not a trading strategy."
        )
    return None


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf as None and numpy scalars as Python numbers (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return json_safe(value.item())
    return value


__all__ = [
    "FoldOutcome",
    "behaviour",
    "equity_from",
    "fold_table",
    "json_safe",
    "member_table",
    "notes",
    "testable",
    "verdict",
    "write_run_report",
]
