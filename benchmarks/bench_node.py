"""Benchmark the trading node: decision latency and replay speed, for 1 and 30 symbols.

Data (real, rearranged): ``bench_backtest.build_panel``: prices rebuilt from the per-bar
relatives of the bundled daily series (SP500, NASDAQ, WTI, AAPL, IBM, MSFT, GOOG, GOOGL), one
series per symbol, so every bar is a real bar shape and return. Features: the default
``FeatureSpec`` (9 features), fitted on the first 1,000 bars; observation window 30 (the
``EnvConfig`` default): 8,132 inputs for 30 symbols. Policy: an SB3 PPO ``MlpPolicy`` (64x64,
untrained, seed 0; the forward pass is what a trained one costs) behind ``EnvActionPolicy``
(softmax weights for 30 symbols, a continuous position for 1). Every trading cost is on.

Decision latency, in process (``SimulatedBroker``: no venue round trip), per decided bar,
measured from outside the node: from the moment the feed hands the node the bar to the first
and to the last ``Broker.submit`` call of that bar. Between them lie the feature update, the
observation, the policy, sizing, the decision journal commit and the order manager's
write-ahead intents (``submit_many``: the bar's intents in one transaction, then the sends, the
acknowledgements in a second); every commit is an fsync (SQLite WAL, ``synchronous=FULL``).
``compute`` times the same decision path without any store (feature update, observation,
policy, ``size_orders``), to show what is compute and what is durability.

Replay speed: bars per second of a whole node run (decide, submit, advance, fills, mark), on
the in-process simulator and on the local venue through alpaca-py (HTTP + websocket in the
same process), beside the peer measured in the same run: ``run_backtest`` of the very weights
the node decided (the research path the replay must equal).

Run: ``python benchmarks/bench_node.py``; writes ``benchmarks/results/node.json``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from bench_backtest import build_panel
from tradeforge.backtest.engine import run_backtest
from tradeforge.data.config import DataConfig
from tradeforge.data.panel import BarPanel
from tradeforge.envs.config import EnvConfig
from tradeforge.execution.brokers.simulated import SimulatedBroker
from tradeforge.execution.node import NodeConfig, TradingNode
from tradeforge.execution.node_feed import MarketBar, PanelFeed, SimBarClock
from tradeforge.execution.node_policy import account_vector
from tradeforge.execution.node_sizing import size_orders
from tradeforge.experiment.paper import PaperConfig, paper_trade
from tradeforge.experiment.paper_program import EnvActionPolicy, TradingProgram
from tradeforge.features.pipeline import FeaturePipeline
from tradeforge.sim import SimConfig
from tradeforge.testing.sim import EVERY_COST

RESULTS = Path(__file__).parent / "results" / "node.json"
N_BARS = 1_400
FIT_BARS = 1_000
SIM_DECISIONS = 250
LOCAL_DECISIONS = {1: 60, 30: 20}
COSTS = EVERY_COST.model_copy(
    update={"borrow_bps_annual": 0.0, "cash_rate_annual": 0.0, "margin_spread_annual": 0.0}
)
SIM = SimConfig(costs=COSTS)
TARGET_P99_S = 0.005


class _SB3:
    """A PPO model as the ``env_action`` policy ``EnvActionPolicy`` wraps (LoadedPolicy's path)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def env_action(self, observation: Any) -> Any:
        return self.model.predict(observation, deterministic=True)[0]


def make_program(panel: BarPanel) -> TradingProgram:
    from stable_baselines3 import PPO

    from tradeforge.envs.env import TradingEnv

    n = panel.n_symbols
    pipeline = FeaturePipeline().fit(panel, None, panel.index[FIT_BARS - 1])
    env = EnvConfig(action="weights" if n > 1 else "continuous", window=30, sim=SIM)
    trading = TradingEnv(panel, pipeline.transform(panel), env, start=FIT_BARS - 200,
                         end=FIT_BARS)  # fmt: skip
    model = PPO("MlpPolicy", trading, seed=0, device="cpu")
    data = DataConfig(source="bundled", symbols=list(panel.symbols))
    return TradingProgram(EnvActionPolicy(_SB3(model), env, n), pipeline, env, data,
                          name=f"bench{n}", fingerprint=f"bench-{n}")  # fmt: skip


class _TimedFeed(PanelFeed):
    def __init__(self, panel: BarPanel) -> None:
        super().__init__(panel)
        self.seen: dict[pd.Timestamp, float] = {}

    def bar(self, timestamp: Any) -> MarketBar | None:
        out = super().bar(timestamp)
        if out is not None:
            self.seen[out.timestamp] = time.perf_counter()
        return out


class _TimedBroker(SimulatedBroker):
    submits: list[tuple[float, str]]

    def submit(self, command: Any) -> Any:
        self.submits.append((time.perf_counter(), command.client_order_id))
        return super().submit(command)


def _percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values) * 1e3
    return {"p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99)),
            "max_ms": float(arr.max()), "n": len(values)}  # fmt: skip


def latency_run(panel: BarPanel, program: TradingProgram, state: Path) -> dict[str, Any]:
    first = FIT_BARS
    broker = _TimedBroker(SimulatedBroker.from_panel(panel, SIM, start=first).market,
                          panel.symbols, [ts.to_pydatetime() for ts in panel.index], SIM,
                          start=first)  # fmt: skip
    broker.submits = []
    feed = _TimedFeed(panel)
    node = TradingNode(
        NodeConfig(strategy_id="bench"), policy=program.policy,
        observer=program.observation_builder(), features=program.pipeline, broker=broker,
        clock=SimBarClock(broker), feed=feed, sim=SIM, state_dir=state,
    )  # fmt: skip
    last = first + SIM_DECISIONS - 1
    t0 = time.perf_counter()
    result = node.run(panel.index[first].to_pydatetime(), panel.index[last].to_pydatetime())
    wall = time.perf_counter() - t0
    node.close()
    by_cid = dict((cid, t) for t, cid in broker.submits)
    first_lat, last_lat, orders = [], [], 0
    for decision in result.decisions[1:]:  # the first bar comes from the warm start
        seen = feed.seen[pd.Timestamp(decision.bar_time)]
        times = [by_cid[c.client_order_id] for c in decision.commands]
        if times:
            first_lat.append(min(times) - seen)
            last_lat.append(max(times) - seen)
            orders += len(times)
    weights = np.full((panel.n_bars, panel.n_symbols), np.nan)
    rows = {ts: i for i, ts in enumerate(panel.index)}
    for decision in result.decisions:
        weights[rows[pd.Timestamp(decision.bar_time)]] = decision.weights
    bt_s, _ = _best(lambda: run_backtest(panel, weights, SIM, first, last + 2), 5)
    n_bars = last + 2 - first
    return {
        "bar_to_first_order": _percentiles(first_lat),
        "bar_to_last_order": _percentiles(last_lat),
        "orders_per_bar": orders / max(len(last_lat), 1),
        "replay_bars_per_s": n_bars / wall,
        "backtest_bars_per_s": n_bars / bt_s,
        "replay_vs_backtest": (n_bars / wall) / (n_bars / bt_s),
    }


def compute_only(panel: BarPanel, program: TradingProgram) -> dict[str, float]:
    """The decision path with no store and no broker: features.update, observation, policy,
    sizing, bar by bar over the same bars."""
    from tradeforge.domain import Instrument, Portfolio, StrategyId, Symbol
    from tradeforge.execution.node_features import FeatureWindow
    from tradeforge.execution.sizing import SizingConfig

    first = FIT_BARS
    observer = program.observation_builder()
    window = FeatureWindow(program.pipeline, observer.window, "update")
    window.start(panel.iloc(slice(0, first)))
    symbols = tuple(Symbol(s) for s in panel.symbols)
    instruments = {s: Instrument(symbol=s, fractionable=True) for s in symbols}
    portfolio = Portfolio(cash=Decimal(repr(SIM.initial_cash)))
    policy = program.policy
    policy.reset()
    out = []
    for row in range(first, first + SIM_DECISIONS):
        bar = MarketBar.from_panel(panel, row)
        t0 = time.perf_counter()
        window.push(bar)
        marks = {s: Decimal(repr(float(bar.close[j]))) for j, s in enumerate(symbols)}
        account = account_vector(portfolio, marks, symbols)
        weights = np.asarray(policy.act(observer(window.values(), account)), dtype=np.float64)
        size_orders(weights, portfolio=portfolio, marks=marks, symbols=symbols, sim=SIM,
                    instruments=instruments, sizing=SizingConfig(),
                    buying_power=portfolio.cash, strategy_id=StrategyId("bench"),
                    bar_time=bar.timestamp.to_pydatetime())  # fmt: skip
        out.append(time.perf_counter() - t0)
    return _percentiles(out)


def local_run(panel: BarPanel, program: TradingProgram) -> dict[str, Any]:
    """Bars per second of ``paper_trade`` on the local venue (in-process, alpaca-py)."""
    from tradeforge.execution.venue import VenueConfig, VenueEngine, VenueServer

    n = LOCAL_DECISIONS[panel.n_symbols]
    start = panel.index[FIT_BARS]
    config = VenueConfig(data=program.data, sim=SIM, replay_start=start.date())
    with VenueServer(VenueEngine(config, panel=panel)) as server, \
            tempfile.TemporaryDirectory() as state:  # fmt: skip
        t0 = time.perf_counter()
        result = paper_trade(PaperConfig(), program, venue="local", venue_url=server.url,
                             start=start, end=panel.index[FIT_BARS + n - 1], state_dir=state)  # fmt: skip
        wall = time.perf_counter() - t0
    bars = len(result.equity)
    return {"bars": bars, "orders": result.orders, "wall_s": wall, "bars_per_s": bars / wall,
            "includes": "start-up (stream connect, history over HTTP, warm start)"}  # fmt: skip


def _best(fn: Any, repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    logging.disable(logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    console = Console()
    results: dict[str, Any] = {}
    for n in (1, 30):
        panel = build_panel(n, N_BARS)
        program = make_program(panel)
        with tempfile.TemporaryDirectory() as state:
            sim = latency_run(panel, program, Path(state))
        sim["compute_only"] = compute_only(panel, program)
        sim["local_venue"] = local_run(panel, program)
        results[f"{n}_symbols"] = sim
        console.print(f"{n} symbols done")
    table = Table(title="trading node (in process; SimulatedBroker unless noted)")
    for col in (
        "symbols",
        "bar->1st order p50/p99 ms",
        "bar->last order p50/p99 ms",
        "compute p50/p99 ms",
        "replay bars/s",
        "backtest bars/s",
        "local venue bars/s",
    ):
        table.add_column(col, justify="right")  # fmt: skip
    for n in (1, 30):
        r = results[f"{n}_symbols"]
        f, la, c = r["bar_to_first_order"], r["bar_to_last_order"], r["compute_only"]
        table.add_row(str(n), f"{f['p50_ms']:.2f} / {f['p99_ms']:.2f}",
                      f"{la['p50_ms']:.2f} / {la['p99_ms']:.2f}",
                      f"{c['p50_ms']:.2f} / {c['p99_ms']:.2f}", f"{r['replay_bars_per_s']:.1f}",
                      f"{r['backtest_bars_per_s']:.0f}",
                      f"{r['local_venue']['bars_per_s']:.1f}")  # fmt: skip
    console.print(table)
    payload = {
        "benchmark": "trading node: decision latency and replay speed",
        "when": date.today().isoformat(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(), "note": "2 cores shared with other jobs"},
        "setup": {"bars": N_BARS, "features": "FeatureSpec.default() (9)", "window": 30,
                  "policy": "SB3 PPO MlpPolicy 64x64 (untrained, seed 0)",
                  "durability": "SQLite WAL synchronous=FULL (journal + OMS)",
                  "decisions_timed": SIM_DECISIONS},
        "target_p99_ms": TARGET_P99_S * 1e3,
        "results": results,
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
