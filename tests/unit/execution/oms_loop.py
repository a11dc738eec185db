"""The order-manager bar loop the OMS tests share (test_oms.py, test_oms_batch.py): a simulated
broker on the bundled stocks from bar ``START``, target weights cycling through ``WEIGHTS``, and
a hook that crashes at a given point, standing for the process being killed."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradeforge.data.panel import BarPanel
from tradeforge.domain import ClientOrderId, Instrument, StrategyId, Symbol
from tradeforge.execution import (
    HookPoint,
    OrderManager,
    OrderStore,
    SimulatedBroker,
    plan_orders,
    to_commands,
)
from tradeforge.sim import SimConfig
from tradeforge.testing.sim import EVERY_COST

START = 300
COSTS = EVERY_COST.model_copy(
    update={"borrow_bps_annual": 0.0, "cash_rate_annual": 0.0, "margin_spread_annual": 0.0}
)
CONFIG = SimConfig(costs=COSTS, fractional=False)
STRATEGY = StrategyId("momo")
WEIGHTS = [
    {"AAPL": 0.3, "IBM": 0.2, "MSFT": 0.4},
    {"AAPL": 0.1, "IBM": 0.5, "MSFT": 0.2},
    {"AAPL": 0.45, "IBM": 0.0, "MSFT": 0.45},
    {"AAPL": 0.2, "IBM": 0.3, "MSFT": 0.3},
]
BIG = Decimal(10**12)


class Crash(Exception):
    """Stands for the process being killed."""


def crash_at(point: HookPoint, occurrence: int) -> Callable[[HookPoint, ClientOrderId], None]:
    seen = {"n": 0}

    def hook(p: HookPoint, cid: ClientOrderId) -> None:
        if p == point:
            seen["n"] += 1
            if seen["n"] == occurrence:
                raise Crash(f"{p} #{occurrence} ({cid})")

    return hook


def new_broker(panel: BarPanel) -> SimulatedBroker:
    return SimulatedBroker.from_panel(panel, CONFIG, start=START)


def instruments(broker: SimulatedBroker) -> dict[Symbol, Instrument]:
    return {s: Instrument(symbol=s) for s in broker.symbols}


def bar_commands(oms: OrderManager, broker: SimulatedBroker) -> list[Any]:
    """The orders of the bar: this bar's target weights against the manager's portfolio."""
    marks = broker.marks()
    weights = {Symbol(k): v for k, v in WEIGHTS[(broker.bar - START) % len(WEIGHTS)].items()}
    pf = oms.portfolio
    plan = plan_orders(weights, pf.quantities(), marks, pf.equity(marks), instruments(broker), BIG)
    return list(to_commands(plan, STRATEGY, broker.now))


def run(path: Path, broker: SimulatedBroker, n_bars: int, hook: object = None, *,
        batched: bool) -> OrderManager:  # fmt: skip
    """The bar loop: decide at the latest closed bar, submit (one by one, or a bar at once with
    ``submit_many``), let the market move, apply the fills."""
    oms = OrderManager(OrderStore.open_sqlite(path), broker, hook=hook)  # type: ignore[arg-type]
    report = oms.start()
    assert report.ok, report.summary()
    while broker.bar < START + n_bars:
        commands = bar_commands(oms, broker)
        if batched:
            oms.submit_many(commands)
        else:
            for command in commands:
                oms.submit(command)
        broker.advance()
        oms.process_events()
    return oms
