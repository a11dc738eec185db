"""``tradeforge backtest``: backtest a user's target-weights CSV on stored (or bundled) bars.

The weights file has one row per decision date and one column per symbol (see
``tradeforge.backtest.weights_file``). Bars come from ``--data-config`` (a DataConfig YAML, or an
experiment YAML with a ``data:`` section) or from ``--symbols``/``--source`` (default: the file's
own symbol columns from the bundled data). Simulator settings come from ``--sim-config`` (a
SimConfig YAML or an experiment YAML with a ``sim:`` section) plus cost overrides on the command
line. ``--out DIR`` writes the per-bar results, positions, fills, trades and metrics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from tradeforge.cli._format import footnote, num
from tradeforge.cli.output import console, emit_json
from tradeforge.core.config import FrozenConfig, load_yaml_section, validate_config
from tradeforge.core.errors import BacktestError, ConfigError
from tradeforge.data.config import DataConfig
from tradeforge.data.panel import BarPanel

_HEADLINE = (
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration",
    "win_rate",
    "n_trades",
    "avg_trade_pnl",
    "turnover_annual",
    "exposure",
    "costs_paid",
    "slippage_paid",
    "alpha",
    "beta",
    "information_ratio",
    "var",
    "cvar",
)


def _section(path: Path, model: type[FrozenConfig], key: str) -> Any:
    """``model`` from a YAML file that is either the model itself or has it under ``key``."""
    return load_yaml_section(path, model, key)


def _file_symbols(weights: Path) -> list[str]:
    if not weights.is_file():
        raise BacktestError(f"weights file {str(weights)!r} does not exist; expected a CSV file")
    try:
        header = pd.read_csv(weights, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BacktestError(f"weights file {weights}: cannot be read as CSV: {exc}") from None
    symbols = [str(c).strip() for c in header[1:]]
    if not symbols:
        raise BacktestError(
            f"weights file {weights}: no symbol columns; expected a date column and one column "
            "per symbol"
        )
    return symbols


def _data_config(
    weights: Path, data_config: Path | None, symbols: list[str] | None, source: str, freq: str
) -> DataConfig:
    if data_config is not None:
        cfg: DataConfig = _section(data_config, DataConfig, "data")
        return cfg.model_copy(update={"symbols": symbols}) if symbols else cfg
    raw = {"source": source, "symbols": symbols or _file_symbols(weights), "frequency": freq}
    return validate_config(DataConfig, raw, source="options")


def _sim_config(sim_config: Path | None, overrides: dict[str, Any]) -> Any:
    from tradeforge.sim import SimConfig

    sim: SimConfig = _section(sim_config, SimConfig, "sim") if sim_config else SimConfig()
    costs = {k: v for k, v in overrides.items() if v is not None and k != "allow_short"}
    data = sim.model_dump()
    data["costs"].update(costs)
    if overrides.get("allow_short") is not None:
        data["allow_short"] = overrides["allow_short"]
    return validate_config(SimConfig, data, source="options")


def _benchmark_returns(symbol: str, panel: BarPanel, data: DataConfig) -> pd.Series:
    if symbol in panel.symbols:
        close = panel.close[:, panel.column(symbol)]
        index = panel.index
    else:
        from tradeforge.data.ingest import load_panel

        other = load_panel(data.model_copy(update={"symbols": [symbol]}))
        close, index = other.close[:, 0], other.index
    return pd.Series(close, index=index).pct_change().dropna()


def _write_outputs(out: Path, result: Any, metrics: dict[str, float]) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    bars = pd.concat(
        [result.equity, result.cash, result.returns, result.turnover, result.costs], axis=1
    )
    files = {
        "bars.csv": bars,
        "positions.csv": result.positions,
        "weights_held.csv": result.weights,
        "fills.csv": result.fills,
        "trades.csv": result.trades,
    }
    written = []
    for name, frame in files.items():
        frame.to_csv(out / name, index=name not in ("fills.csv", "trades.csv"))
        written.append(str(out / name))
    clean = {
        k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in metrics.items()
    }
    payload = {"metrics": clean, "notes": list(result.notes), "config": result.config.model_dump(),
               "risk": None if result.risk is None else result.risk.to_json()}  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    written.append(str(out / "metrics.json"))
    return written


def backtest_cmd(
    weights: Path | None = typer.Option(
        None, "--weights", "-w", help="Target weights CSV (date x symbol)."
    ),
    policy: Path | None = typer.Option(
        None, "--policy", "-p", help="A saved policy or ensemble directory to replay instead."
    ),
    start: str | None = typer.Option(
        None, help="With --policy: first decision date (default: its test window)."
    ),
    end: str | None = typer.Option(None, help="With --policy: last decision date."),
    data_config: Path | None = typer.Option(
        None, "--data-config", "-d", help="DataConfig YAML (or experiment YAML with data:)."
    ),
    symbols: list[str] | None = typer.Option(
        None, "--symbols", "-s", help="Symbols (repeat; default: the file's columns)."
    ),
    source: str = typer.Option("bundled", help="Data source when no --data-config."),
    frequency: str = typer.Option("1d", "--frequency", "-f", help="Bar frequency."),
    sim_config: Path | None = typer.Option(
        None, "--sim-config", help="SimConfig YAML (or experiment YAML with sim:)."
    ),
    commission_bps: float | None = typer.Option(None, help="Override costs.commission_bps."),
    half_spread_bps: float | None = typer.Option(None, help="Override costs.half_spread_bps."),
    slippage_bps: float | None = typer.Option(None, help="Override costs.slippage_bps."),
    allow_short: bool | None = typer.Option(None, "--allow-short/--long-only", help="Shorts."),
    clip: bool = typer.Option(
        False, "--clip", help="Clip weights breaking the limits (reported) instead of failing."
    ),
    nan_hold: bool = typer.Option(
        False, "--nan-hold", help="Treat empty/NaN cells as 'hold that asset' instead of failing."
    ),
    benchmark: str | None = typer.Option(
        None, "--benchmark", "-b", help="Symbol for alpha/beta/IR (same source)."
    ),
    risk: Path | None = typer.Option(
        None,
        "--risk",
        help="Risk engine limits: a YAML with risk: (experiment or paper config) or a RiskConfig.",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write results to this folder."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Backtest a target-weights CSV or replay a saved policy: next-bar fills, every cost, metrics."""
    from tradeforge.backtest.engine import backtest_weights_file
    from tradeforge.backtest.weights_file import WeightsFileConfig
    from tradeforge.data.ingest import load_panel

    if (weights is None) == (policy is None):
        raise ConfigError("pass exactly one of --weights FILE or --policy DIR")
    limits = _risk_config(risk) if risk is not None else None
    if policy is not None:
        _replay(policy, start, end, benchmark, out, as_json, limits)
        return
    assert weights is not None
    data = _data_config(weights, data_config, symbols, source, frequency)
    sim = _sim_config(
        sim_config,
        {
            "commission_bps": commission_bps,
            "half_spread_bps": half_spread_bps,
            "slippage_bps": slippage_bps,
            "allow_short": allow_short,
        },
    )
    panel = load_panel(data)
    options = WeightsFileConfig(
        on_limit="clip" if clip else "error", nan="hold" if nan_hold else "error"
    )
    result = backtest_weights_file(weights, panel, sim, options, risk=limits)
    bench = _benchmark_returns(benchmark, panel, data) if benchmark else None
    metrics = result.metrics(bench)
    files = _write_outputs(out, result, metrics) if out is not None else []
    first, last = result.equity.index[0], result.equity.index[-1]
    _report(
        {"weights": str(weights)}, weights.name, panel, first, last, result, metrics, files, as_json
    )


def _risk_config(path: Path) -> Any:
    """The ``RiskConfig`` of ``path``: under ``risk:`` (an experiment YAML, or a paper config
    at the top level or under ``paper:``), or the file itself."""
    from tradeforge.core.config import read_yaml_mapping
    from tradeforge.risk import RiskConfig

    raw = read_yaml_mapping(path)
    if isinstance(raw.get("paper"), dict):
        raw = raw["paper"]
    if "risk" in raw:
        if not isinstance(raw["risk"], dict):
            raise ConfigError(f"{path}: risk = {raw['risk']!r}; expected a mapping of limits")
        limits = dict(raw["risk"])
        if "walkforward" in raw:  # an experiment YAML: risk.lagrangian is the training penalty
            limits.pop("lagrangian", None)
        return validate_config(RiskConfig, limits, source=f"{path}:risk")
    return validate_config(RiskConfig, raw, source=str(path))


def _replay(
    policy: Path, start: str | None, end: str | None, benchmark: str | None,
    out: Path | None, as_json: bool, risk: Any = None,
) -> None:  # fmt: skip
    from tradeforge.experiment.replay import replay_policy

    replay = replay_policy(policy, start, end, risk=risk)
    result, panel = replay.result, replay.panel
    bench = None
    if benchmark:
        bench = _benchmark_returns(benchmark, panel, DataConfig(symbols=list(panel.symbols)))
    metrics = result.metrics(bench)
    files = _write_outputs(out, result, metrics) if out is not None else []
    label = f"replay {policy}"
    info = {"policy": str(policy)}
    _report(info, label, panel, replay.start, replay.end, result, metrics, files, as_json)


def _risk_rows(result: Any) -> list[tuple[str, str]]:
    """The risk engine's counts as (what, value) rows (none without the engine)."""
    if result.risk is None:
        return []
    tally = result.risk.to_json()
    rows = [("orders checked", str(tally["orders"])), ("approved", str(tally["approved"]))]
    rows += [(f"denied {k}", str(v)) for k, v in tally["denied"].items()]
    rows += [(f"stop {k}", str(v)) for k, v in tally["stops"].items()]
    rows += [(f"breaker {k}", str(v)) for k, v in tally["trips"].items()]
    rows += [(f"bars {k}", f"{tally['state_bars'][k]} ({tally['state_share'][k]:.1%})")
             for k in tally["state_bars"]]  # fmt: skip
    return rows


def _report(
    source: dict[str, str], label: str, panel: BarPanel, first: Any, last: Any, result: Any,
    metrics: dict[str, float], files: list[str], as_json: bool,
) -> None:  # fmt: skip
    """The backtest summary: JSON on stdout, or a rich table of metrics and costs."""
    if as_json:
        emit_json(
            {
                **source,
                "symbols": list(panel.symbols),
                "start": first,
                "end": last,
                "final_equity": float(result.equity.iloc[-1]),
                "metrics": metrics,
                "costs": {c: float(result.costs[c].sum()) for c in result.costs.columns},
                "notes": list(result.notes),
                "files": files,
                "risk": None if result.risk is None else result.risk.to_json(),
            }
        )
        return
    table = Table(title=f"backtest {label}: {first.date()} .. {last.date()}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    cells = [num(metrics[key], ".6g") for key in _HEADLINE if key in metrics]
    for key, cell in zip([k for k in _HEADLINE if k in metrics], cells, strict=True):
        table.add_row(key, cell)
    for col in result.costs.columns:
        table.add_row(f"cost {col}", f"{float(result.costs[col].sum()):,.2f}")
    table.add_row("final equity", f"{float(result.equity.iloc[-1]):,.2f}")
    for what, value in _risk_rows(result):
        table.add_row(f"risk: {what}", value)
    console.print(table)
    undefined = footnote(cells)
    if undefined:
        console.print(undefined)
    for note in result.notes:
        console.print(f"note: {note}")
    for path in files:
        console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Attach ``tradeforge backtest`` to the root app."""
    app.command("backtest")(backtest_cmd)


__all__ = ["backtest_cmd", "register"]
