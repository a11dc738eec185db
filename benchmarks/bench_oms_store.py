"""The order manager's submit latency on SQLite, one commit per write ("before") against a
bar's writes grouped into one transaction with ``OrderStore.batch()`` ("after"), for 1 and 20
symbols.

Data (real, rearranged): ``bench_backtest.build_panel`` (prices rebuilt from the per-bar
relatives of the bundled daily series) and ``bench_backtest.make_weights`` (seeded Dirichlet
target weights: nearly every symbol trades every bar). Broker: ``SimulatedBroker`` in process
(no venue round trip), every trading cost on. Store: SQLite in WAL mode with
``synchronous=FULL`` on the local disk: every commit is an fsync.

Per bar, timed from outside: ``submit``, from the first to the last order of the bar being
recorded, sent and acknowledged; ``events``, applying the bar's fills after the market moves
(``process_events``).

* before: ``OrderManager.submit`` per order (two commits per order: the intent, then the
  acknowledgement) and ``process_events`` (one commit per fill), as ``oms.py`` is today;
* after: the proposed ``OrderManager.submit_many`` (prototyped here as :func:`submit_many`,
  from the manager's own steps): the bar's intents in ONE transaction, committed before any
  order is sent (write-ahead holds), then the sends, their acknowledgements recorded in a
  second transaction; and ``process_events`` inside one ``store.batch()``. Two commits per bar
  for the submit instead of two per order.

Both runs must end with the same orders and portfolio (checked). ``--postgres`` also runs both
modes on PostgreSQL (``tradeforge.testing.postgres``: TRADEFORGE_TEST_POSTGRES_URL or a
throwaway local cluster). Run:
``python benchmarks/bench_oms_store.py [--bars 1:300,20:100] [--postgres]``; writes
``benchmarks/results/oms_store.json``. Wall-clock times on a shared machine: compare the two
modes measured in the same run, bar by bar in turn (so both see the same load).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from bench_backtest import build_panel, make_weights
from tradeforge.domain import Instrument, Order, OrderSubmitted, StrategyId, SubmitOrder, Symbol
from tradeforge.execution import OrderManager, SimulatedBroker
from tradeforge.execution.sizing import plan_orders, to_commands
from tradeforge.execution.store import open_store
from tradeforge.sim import SimConfig
from tradeforge.testing.sim import EVERY_COST

RESULTS = Path(__file__).parent / "results" / "oms_store.json"
START = 50
CONFIG = SimConfig(
    costs=EVERY_COST.model_copy(
        update={"borrow_bps_annual": 0.0, "cash_rate_annual": 0.0, "margin_spread_annual": 0.0}
    ),
    fractional=False,
)
STRATEGY = StrategyId("bench")
BIG = Decimal(10**12)
MODES = ("before", "after")


def submit_many(oms: OrderManager, commands: Sequence[SubmitOrder]) -> list[Order]:
    """The proposed ``OrderManager.submit_many`` (module docstring), from the manager's steps:
    1. every new intent recorded in ONE transaction (committed before anything is sent);
    2. each order sent, the replies recorded in ONE transaction."""
    fresh: list[Order] = []
    known: list[Order] = []
    with oms.store.batch():
        for command in commands:
            existing = oms.get_order(command.client_order_id)
            if existing is not None:
                known.append(existing)
                continue
            event = OrderSubmitted(client_order_id=command.client_order_id, ts=oms.clock.now(),
                                   command=command)  # fmt: skip
            order = Order.create(event)
            oms.store.record(order, event)
            fresh.append(order)
    for order in fresh:  # memory only after the commit
        oms._open[order.client_order_id] = order  # the prototype of oms.py's own code
    with oms.store.batch():
        sent = [oms._send(order) for order in fresh]
    return known + sent


class Runner:
    """One mode's bar loop (its own store, broker and manager), advanced one bar at a time."""

    def __init__(self, mode: str, n_symbols: int, n_bars: int, target: str) -> None:
        self.mode = mode
        self.end = START + n_bars
        panel = build_panel(n_symbols, START + n_bars + 2)
        self.weights = make_weights(len(panel.index), n_symbols)
        self.broker = SimulatedBroker.from_panel(panel, CONFIG, start=START)
        self.store = open_store(target)
        self.oms = OrderManager(self.store, self.broker, initial_cash=Decimal(1_000_000))
        self.insts = {s: Instrument(symbol=s) for s in self.broker.symbols}
        self.submit_s: list[float] = []
        self.events_s: list[float] = []
        self.orders = 0

    @property
    def done(self) -> bool:
        return self.broker.bar >= self.end

    def step(self) -> None:
        broker, oms = self.broker, self.oms
        marks = broker.marks()
        w = {Symbol(s): float(self.weights[broker.bar, k]) for k, s in enumerate(broker.symbols)}
        pf = oms.portfolio
        plan = plan_orders(w, pf.quantities(), marks, pf.equity(marks), self.insts, BIG)
        commands = to_commands(plan, STRATEGY, broker.now)
        t0 = time.perf_counter()
        if self.mode == "before":
            for command in commands:
                oms.submit(command)
        else:
            submit_many(oms, commands)
        t1 = time.perf_counter()
        broker.advance()
        t2 = time.perf_counter()
        if self.mode == "before":
            oms.process_events()
        else:
            with self.store.batch():
                oms.process_events()
        t3 = time.perf_counter()
        if commands:
            self.submit_s.append(t1 - t0)
            self.events_s.append(t3 - t2)
            self.orders += len(commands)

    def result(self) -> dict[str, Any]:
        submit_s, events_s, orders = self.submit_s, self.events_s, self.orders
        out = {
            "bars": len(submit_s),
            "orders": orders,
            "submit_p50_ms": 1e3 * float(np.percentile(submit_s, 50)),
            "submit_p99_ms": 1e3 * float(np.percentile(submit_s, 99)),
            "submit_per_order_mean_ms": 1e3 * sum(submit_s) / max(orders, 1),
            "events_p50_ms": 1e3 * float(np.percentile(events_s, 50)),
            "events_p99_ms": 1e3 * float(np.percentile(events_s, 99)),
            "_portfolio": self.oms.portfolio,
            "_orders": [(o.client_order_id, o.status, o.filled_quantity)
                        for o in self.store.load_orders()],
        }  # fmt: skip
        self.store.close()
        return out


def run_pair(n_symbols: int, n_bars: int, targets: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Both modes, bar by bar in turn (which goes first alternates), under the same load;
    ``targets``: the two stores (SQLite paths or PostgreSQL URLs)."""
    runners = [Runner(mode, n_symbols, n_bars, t) for mode, t in zip(MODES, targets, strict=True)]
    k = 0
    while not all(r.done for r in runners):
        for runner in runners if k % 2 == 0 else runners[::-1]:
            if not runner.done:
                runner.step()
        k += 1
    return {r.mode: r.result() for r in runners}


def parse_bars(text: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for part in text.split(","):
        n, bars = part.split(":")
        out[int(n)] = int(bars)
    return out


def compare(pair: dict[str, Any], n_symbols: int, label: str) -> dict[str, Any]:
    same = all(pair["before"][k] == pair["after"][k] for k in ("_portfolio", "_orders", "orders"))
    if not same:
        raise SystemExit(f"{label}, {n_symbols} symbols: before and after end differently")
    for mode in MODES:
        del pair[mode]["_portfolio"], pair[mode]["_orders"]
    b, a = pair["before"], pair["after"]
    pair["speedup_submit_p50"] = b["submit_p50_ms"] / a["submit_p50_ms"]
    pair["speedup_submit_p99"] = b["submit_p99_ms"] / a["submit_p99_ms"]
    pair["speedup_events_p50"] = b["events_p50_ms"] / a["events_p50_ms"]
    pair["same_orders_and_portfolio"] = same
    os.write(2, (f"{label:>10} {n_symbols:>3} symbols: submit p50 {b['submit_p50_ms']:.2f} -> "
                 f"{a['submit_p50_ms']:.2f} ms, p99 {b['submit_p99_ms']:.2f} -> "
                 f"{a['submit_p99_ms']:.2f} ms; events p50 {b['events_p50_ms']:.2f} -> "
                 f"{a['events_p50_ms']:.2f} ms\n").encode())  # fmt: skip
    return pair


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", default="1:300,20:100", help="symbols:bars, comma separated")
    parser.add_argument("--postgres", action="store_true",
                        help="also on PostgreSQL (TRADEFORGE_TEST_POSTGRES_URL, else a "
                             "throwaway local cluster; fresh databases)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    sqlite: dict[str, Any] = {}
    postgres: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        for n_symbols, n_bars in parse_bars(args.bars).items():
            paths = [str(Path(tmp) / f"{mode}-{n_symbols}.db") for mode in MODES]
            pair = run_pair(n_symbols, n_bars, paths)
            sqlite[f"{n_symbols}_symbols"] = compare(pair, n_symbols, "sqlite")
    if args.postgres:
        from tradeforge.testing.postgres import fresh_database, postgres_url

        server = postgres_url()
        for n_symbols, n_bars in parse_bars(args.bars).items():
            with fresh_database(server) as one, fresh_database(server) as two:
                pair = run_pair(n_symbols, n_bars, [one, two])
            postgres[f"{n_symbols}_symbols"] = compare(pair, n_symbols, "postgresql")
    out: dict[str, Any] = {
        "benchmark": "bench_oms_store.py",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "store": "SQLite WAL, synchronous=FULL, local disk",
        "cases": sqlite,
    }
    if postgres:
        out["postgresql"] = {
            "store": "PostgreSQL 15 on 127.0.0.1 (TCP), synchronous_commit=on; the throwaway "
            "test cluster runs with fsync=off, so these times leave out the disk flush",
            "cases": postgres,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
