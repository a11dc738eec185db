"""The evaluation suite: experiment configs run walk-forward on every bundled market they apply to.

A suite YAML names experiment configs, the markets to run them on and the seeds; each
``(experiment, market, seed)`` goes through :func:`~tradeforge.experiment.run.run_experiment`
with dotted-key overrides (``data.symbols``, ``data.frequency``, ``seed``, ``walkforward.*``, ...)
into its own run directory, and one report compares the agents with the baselines over every
market and fold (:mod:`tradeforge.experiment.suite_report`)::

    from tradeforge.experiment.suite import load_suite, run_suite

    suite = load_suite("configs/suite.yaml", seeds=2)
    result = run_suite(suite, out_dir="runs/suite")
    result.pooled        # pooled Sharpe difference (agent - benchmark) with bootstrap CIs
    result.report        # runs/suite/report.html (+ suite.json, PNG plots)

The suite file::

    name: suite
    seeds: 2                      # or a list [0, 1]; the experiments' ``seed`` override
    min_test_years: 20            # the plan must hold this many test years (all experiments)
    best_of: [buy_and_hold, equal_weight]   # the "best of" benchmark, per market and fold
    benchmark: best_of            # the headline benchmark (or a baseline name)
    markets:
      sp500: {symbols: [SP500], overrides: {walkforward.n_folds: 6}}
      sp500_weekly: {symbols: [SP500], frequency: 1w, overrides: {env.episode_length: 100}}
      stocks: {symbols: [AAPL, IBM, MSFT, GOOG], start: "2004-09-01"}
    experiments:
      - config: quickstart.yaml   # relative to the suite file
        overrides: {agent.timesteps: 5000}
        # markets: [sp500]        # default: every market of the config's kind (one symbol or many)

Resumable: a run whose directory already holds ``summary.json`` is not trained again (its
returns are read back), so an interrupted suite continues where it stopped. A directory whose
``config.yaml`` differs from the planned config is an error, never silently reused.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import Field, field_validator, model_validator

from tradeforge.backtest.baselines import BASELINES
from tradeforge.backtest.walkforward import make_folds
from tradeforge.core.config import FrozenConfig, load_yaml_config, validate_config
from tradeforge.core.errors import BacktestError, ConfigError
from tradeforge.data.ingest import load_panel
from tradeforge.data.panel import BarPanel
from tradeforge.experiment.config import ExperimentConfig, load_experiment
from tradeforge.experiment.run import RunResult, run_experiment

logger = logging.getLogger(__name__)

RECORD_FILE = "suite_returns.parquet"  # per run: fold, agent and every baseline's returns
RUN_INFO_FILE = "suite_run.json"  # per run: how long its training took
SUMMARY_FILE = "summary.json"  # written last by run_experiment: the run is complete

# (run label, stage, done, total): stage "suite" counts runs; the others are run_experiment's
SuiteProgress = Callable[[str, str, int, int], None]


def _safe_name(value: str, what: str) -> str:
    if not value or not all(c.isalnum() or c in "-_." for c in value):
        raise ValueError(f"{what} {value!r} must be letters, digits, '-', '_' or '.'")
    return value


class MarketSpec(FrozenConfig):
    """One market of the suite: bundled symbols at a frequency, with overrides of its own
    (e.g. ``walkforward.unit: bars`` for a short hourly series)."""

    symbols: list[str] = Field(min_length=1)
    frequency: str | None = None  # None: the experiment config's frequency
    start: str | None = None
    end: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``single`` (one symbol) or ``portfolio``: which experiment configs apply."""
        return "single" if len(self.symbols) == 1 else "portfolio"


class SuiteExperiment(FrozenConfig):
    """One experiment config of the suite and where it runs."""

    config: str
    label: str | None = None  # default: the config's ``name``
    markets: list[str] | None = None  # default: every suite market of the config's kind
    overrides: dict[str, Any] = Field(default_factory=dict)
    market_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)


class SuiteConfig(FrozenConfig):
    """A whole evaluation suite (see the module docstring)."""

    name: str = "suite"
    output_dir: str = "runs"
    seeds: list[int] = Field(default_factory=lambda: [0, 1])
    min_test_years: float = Field(default=20.0, ge=0)
    baselines: list[str] = Field(
        default_factory=lambda: ["buy_and_hold", "equal_weight", "ma_crossover", "momentum"]
    )
    best_of: list[str] = Field(default_factory=lambda: ["buy_and_hold", "equal_weight"])
    benchmark: str = "best_of"
    bootstrap_samples: int = Field(default=2000, ge=100)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    markets: dict[str, MarketSpec] = Field(min_length=1)
    experiments: list[SuiteExperiment] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _safe_name(value, "name")

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ValueError(f"seeds = {value}; expected a count >= 1 or a list of seeds")
            return list(range(value))
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        if not value or len(set(value)) != len(value) or min(value) < 0:
            raise ValueError(f"seeds = {value}; expected distinct seeds >= 0, at least one")
        return value

    @field_validator("baselines", "best_of")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [b for b in value if b not in BASELINES]
        if unknown:
            raise ValueError(f"unknown baselines {unknown}; expected names in {sorted(BASELINES)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SuiteConfig:
        if not self.best_of:
            raise ValueError("best_of = []; expected at least one baseline")
        if self.benchmark != "best_of" and self.benchmark not in BASELINES:
            raise ValueError(
                f"benchmark = {self.benchmark!r}; expected 'best_of' or one of {sorted(BASELINES)}"
            )
        for name in self.markets:
            _safe_name(name, "market name")
        for i, exp in enumerate(self.experiments):
            named = list(exp.markets or []) + list(exp.market_overrides)
            unknown = [m for m in named if m not in self.markets]
            if unknown:
                raise ValueError(
                    f"experiments[{i}] names markets {unknown}; expected names in "
                    f"{sorted(self.markets)}"
                )
            if exp.label is not None:
                _safe_name(exp.label, f"experiments[{i}].label")
        return self

    def report_baselines(self) -> list[str]:
        """Baselines every run must report: the suite's list and the ``best_of`` candidates."""
        out = list(self.baselines)
        out += [b for b in self.best_of if b not in out]
        if self.benchmark in BASELINES and self.benchmark not in out:
            out.append(self.benchmark)
        return out


def load_suite(path: str | Path, seeds: int | None = None) -> SuiteConfig:
    """Read a suite YAML; experiment config paths resolve against the suite file's folder
    (checked here, so a typo fails before any training). ``seeds`` replaces the file's seeds
    with ``0 .. seeds - 1``."""
    file = Path(path)
    suite = load_yaml_config(file, SuiteConfig)
    resolved = []
    for i, exp in enumerate(suite.experiments):
        target = Path(exp.config)
        if not target.is_absolute():
            target = file.parent / target
        if not target.is_file():
            raise ConfigError(
                f"{file}: experiments[{i}].config = {exp.config!r}: no such file (looked for "
                f"{str(target)!r}); expected an experiment YAML relative to the suite file"
            )
        resolved.append(exp.model_copy(update={"config": str(target)}))
    raw = suite.model_dump(mode="json")
    raw["experiments"] = [e.model_dump(mode="json") for e in resolved]
    if seeds is not None:
        raw["seeds"] = seeds
    return validate_config(SuiteConfig, raw, source=str(file))


@dataclass(frozen=True)
class PlannedRun:
    """One ``(experiment, market, seed)`` of the suite, with the config it runs."""

    experiment: str
    market: str
    seed: int
    config: ExperimentConfig
    run_dir: Path
    folds: int
    test_bars: int
    test_years: float
    resolved: ExperimentConfig | None = None  # ``config.resolved_for(panel)``, as runs record it

    @property
    def label(self) -> str:
        return f"{self.experiment}/{self.market}/seed {self.seed}"


def _kind(config: ExperimentConfig) -> str:
    return "single" if len(config.data.symbols or []) <= 1 else "portfolio"


def _market_overrides(
    suite: SuiteConfig, exp: SuiteExperiment, base: ExperimentConfig, market: str
) -> dict[str, Any]:
    spec = suite.markets[market]
    have = list(base.report.baselines)
    baselines = have + [b for b in suite.report_baselines() if b not in have]
    out: dict[str, Any] = {
        **exp.overrides,
        "data.source": "bundled",
        "data.symbols": list(spec.symbols),
        "data.frequency": spec.frequency,
        "data.start": spec.start,
        "data.end": spec.end,
        "report.baselines": baselines,
        "name": f"{base.name}-{market}",
    }
    if base.tracking is not None:  # a suite never registers its runs' policies
        out["tracking.register"] = False
    out.update(spec.overrides)
    out.update(exp.market_overrides.get(market, {}))
    return out


def plan_suite(suite: SuiteConfig, out_dir: str | Path) -> list[PlannedRun]:
    """Every ``(experiment, market, seed)`` with its config, run directory and test span.

    Loads each market's bars once to cut the folds (no training). Raises :class:`ConfigError`
    when an experiment names a market of the other kind, or when the plan holds fewer than
    ``min_test_years`` test years.
    """
    root = Path(out_dir) / "runs"
    panels: dict[str, BarPanel] = {}
    plan: list[PlannedRun] = []
    labels: set[str] = set()
    for i, exp in enumerate(suite.experiments):
        base = load_experiment(Path(exp.config))
        label = exp.label or base.name
        if label in labels:
            raise ConfigError(
                f"experiments[{i}] label {label!r} is used twice; expected a distinct label "
                "per experiment (set experiments[].label)"
            )
        labels.add(label)
        kind = _kind(base)
        markets = exp.markets or [m for m, s in suite.markets.items() if s.kind == kind]
        if not markets:
            raise ConfigError(
                f"experiments[{i}] ({label}) is a {kind} config and no suite market is of that "
                "kind; expected a market with " + ("one symbol" if kind == "single" else "several")
            )
        for market in markets:
            if suite.markets[market].kind != kind:
                raise ConfigError(
                    f"experiments[{i}].markets: {market!r} is a {suite.markets[market].kind} "
                    f"market; {label} is a {kind} config"
                )
            for seed in suite.seeds:
                overrides = {**_market_overrides(suite, exp, base, market), "seed": seed}
                config = load_experiment(Path(exp.config), overrides)
                key = json.dumps(config.data.model_dump(mode="json"), sort_keys=True)
                if key not in panels:
                    panels[key] = load_panel(config.data)
                panel = panels[key]
                folds = make_folds(panel.index, config.walkforward)
                bars = sum(len(f.test) for f in folds)
                plan.append(
                    PlannedRun(
                        experiment=label,
                        market=market,
                        seed=seed,
                        config=config,
                        run_dir=root / label / market / f"seed_{seed}",
                        folds=len(folds),
                        test_bars=bars,
                        test_years=bars / config.periods_per_year(panel),
                        resolved=config.resolved_for(panel),
                    )
                )
    years = sum(p.test_years for p in plan if p.seed == suite.seeds[0])
    if years < suite.min_test_years:
        raise ConfigError(
            f"the suite's markets hold {years:.1f} test years over all experiments; "
            f"min_test_years = {suite.min_test_years}: add markets or folds (walkforward.n_folds)"
        )
    return plan


@dataclass(frozen=True)
class RunRecord:
    """What the suite keeps of one run: per-bar out-of-sample returns of the agent and every
    baseline with the fold of each bar (``returns``: columns ``fold``, ``agent``, baselines),
    the run's cost table and how it was obtained."""

    experiment: str
    market: str
    seed: int
    run_dir: Path
    periods_per_year: int
    returns: pd.DataFrame
    costs: pd.DataFrame | None
    configurations_tried: int
    status: str  # "trained" or "resumed"
    seconds: float | None = None

    @property
    def baselines(self) -> list[str]:
        return [c for c in self.returns.columns if c not in ("fold", "agent")]


def _record_frame(agent: pd.Series, baselines: dict[str, pd.Series]) -> pd.DataFrame:
    frame = pd.DataFrame({"agent": agent.astype(float)})
    for name, series in baselines.items():
        aligned = series.reindex(frame.index)
        if aligned.isna().any():
            raise BacktestError(
                f"baseline {name!r} has no return on {int(aligned.isna().sum())} of the agent's "
                "out-of-sample bars; expected both on the same walk-forward test bars"
            )
        frame[name] = aligned.astype(float)
    return frame


def _label_folds(
    frame: pd.DataFrame, starts: list[tuple[int, pd.Timestamp]], *, first_return: bool
) -> pd.DataFrame:
    """Tag each bar with its fold: the last fold whose start is at or before it, where a
    fold's start is its first return (``first_return``) or its first test decision (whose
    return comes one bar later)."""
    out = frame.copy()
    out.insert(0, "fold", -1)
    for number, first in sorted(starts, key=lambda s: s[1]):
        after = out.index >= first if first_return else out.index > first
        out.loc[after, "fold"] = number
    if (out["fold"] < 0).any():
        raise BacktestError("out-of-sample returns start before the first fold's test window")
    return out


def _read_costs(run_dir: Path) -> pd.DataFrame | None:
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    rows = json.loads(path.read_text(encoding="utf-8")).get("cost_sensitivity")
    return pd.DataFrame(rows) if rows else None


def _read_summary(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    return data


def _record_from_result(run: PlannedRun, result: RunResult, seconds: float) -> RunRecord:
    frame = _record_frame(result.returns, result.baselines)
    starts = [(o.fold.number, o.returns.index[0]) for o in result.folds if len(o.returns)]
    frame = _label_folds(frame, starts, first_return=True)
    frame.to_parquet(run.run_dir / RECORD_FILE)
    (run.run_dir / RUN_INFO_FILE).write_text(json.dumps({"seconds": seconds}), encoding="utf-8")
    return RunRecord(
        run.experiment, run.market, run.seed, run.run_dir,
        int(result.summary["periods_per_year"]), frame, _read_costs(run.run_dir),
        int(result.summary.get("configurations_tried", 1)), "trained", seconds,
    )  # fmt: skip


def _rebuilt_frame(run: PlannedRun) -> pd.DataFrame:
    """The record of a finished run that lacks one (stopped between its summary and the
    record): agent returns from ``oos_returns.csv``, baselines traded again (no training)."""
    from tradeforge.experiment.validation import baseline_returns

    panel = load_panel(run.config.data)
    config = run.config.resolved_for(panel)
    folds = make_folds(panel.index, config.walkforward)
    agent = pd.read_csv(run.run_dir / "oos_returns.csv", index_col=0)["returns"]
    agent.index = pd.to_datetime(agent.index, utc=True)
    frame = _record_frame(agent, baseline_returns(config, panel, folds))
    starts = [(f.number, panel.index[f.test.start]) for f in folds]
    return _label_folds(frame, starts, first_return=False)


def _check_same_config(run: PlannedRun) -> None:
    """The finished run's ``config.yaml`` is the planned config (as given, or resolved for its
    data: ``env.sim.periods_per_year`` and the calendar filled in)."""
    stored = yaml.safe_load((run.run_dir / "config.yaml").read_text(encoding="utf-8"))
    planned = json.loads(json.dumps(run.config.model_dump(mode="json")))
    if run.resolved is not None and stored != planned:
        planned = json.loads(json.dumps(run.resolved.model_dump(mode="json")))
    if stored != planned:
        changed = sorted(k for k in set(stored) | set(planned) if stored.get(k) != planned.get(k))
        raise ConfigError(
            f"{run.run_dir} holds a finished run of another config (sections differing: "
            f"{', '.join(changed)}); expected the planned {run.label}: pass another --out or "
            "delete that directory"
        )


def _resumed_record(run: PlannedRun) -> RunRecord:
    _check_same_config(run)
    summary = _read_summary(run.run_dir)
    record_path = run.run_dir / RECORD_FILE
    if record_path.is_file():
        frame = pd.read_parquet(record_path)
    else:
        frame = _rebuilt_frame(run)
        frame.to_parquet(record_path)
    info_path = run.run_dir / RUN_INFO_FILE
    seconds = (
        json.loads(info_path.read_text(encoding="utf-8")).get("seconds")
        if info_path.is_file()
        else None
    )
    return RunRecord(
        run.experiment, run.market, run.seed, run.run_dir, int(summary["periods_per_year"]),
        frame, _read_costs(run.run_dir), int(summary.get("configurations_tried", 1)),
        "resumed", seconds,
    )  # fmt: skip


def execute_run(run: PlannedRun, progress: SuiteProgress | None = None) -> RunRecord:
    """Train and test one planned run, or read it back when its ``summary.json`` exists."""
    if (run.run_dir / SUMMARY_FILE).is_file():
        logger.info("suite: %s already done in %s; not training again", run.label, run.run_dir)
        return _resumed_record(run)
    if run.run_dir.exists():  # an interrupted run: start it afresh
        shutil.rmtree(run.run_dir)

    def tick(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(run.label, stage, done, total)

    started = time.perf_counter()
    result = run_experiment(run.config, run.run_dir, tick)
    return _record_from_result(run, result, time.perf_counter() - started)


@dataclass(frozen=True)
class SuiteResult:
    """What :func:`run_suite` produced: every run's record and the suite report's tables."""

    out_dir: Path
    runs: list[RunRecord]
    summary: dict[str, Any]
    pooled: pd.DataFrame
    markets: pd.DataFrame
    folds: pd.DataFrame
    costs: pd.DataFrame
    report: Path | None
    seconds: float
    plan: list[PlannedRun] = field(default_factory=list)


def default_suite_dir(suite: SuiteConfig) -> Path:
    """``<output_dir>/<name>``: a fixed place, so running the suite again resumes it."""
    return Path(suite.output_dir) / suite.name


def run_suite(
    suite: SuiteConfig,
    out_dir: str | Path | None = None,
    progress: SuiteProgress | None = None,
) -> SuiteResult:
    """Plan, run (or resume) every ``(experiment, market, seed)``, then write the suite report
    (``report.html``, ``suite.json``, PNG plots) into ``out_dir`` (default
    :func:`default_suite_dir`)."""
    from tradeforge.experiment.suite_report import write_suite_report

    started = time.perf_counter()
    root = Path(out_dir) if out_dir is not None else default_suite_dir(suite)
    plan = plan_suite(suite, root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "suite.yaml").write_text(
        yaml.safe_dump(suite.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
    )
    records: list[RunRecord] = []
    if progress is not None:
        progress("suite", "suite", 0, len(plan))
    for done, run in enumerate(plan, start=1):
        records.append(execute_run(run, progress))
        if progress is not None:
            progress("suite", "suite", done, len(plan))
    elapsed = time.perf_counter() - started
    report = write_suite_report(suite, plan, records, root, elapsed)
    return SuiteResult(
        out_dir=root,
        runs=records,
        summary=report.summary,
        pooled=report.pooled,
        markets=report.markets,
        folds=report.folds,
        costs=report.costs,
        report=report.html,
        seconds=elapsed,
        plan=plan,
    )


__all__ = [
    "RECORD_FILE",
    "MarketSpec",
    "PlannedRun",
    "RunRecord",
    "SuiteConfig",
    "SuiteExperiment",
    "SuiteProgress",
    "SuiteResult",
    "default_suite_dir",
    "execute_run",
    "load_suite",
    "plan_suite",
    "run_suite",
]
