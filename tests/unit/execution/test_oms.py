"""tradeforge.execution.oms: write-ahead submit, idempotent events, reconciliation, and crash
safety at every step (a hook that raises stands for a killed process; a new OrderManager on the
same SQLite file and the same broker takes over)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import oms_loop
import pytest
from exec_helpers import make_command
from oms_loop import (
    BIG,
    CONFIG,
    START,
    STRATEGY,
    WEIGHTS,
    Crash,
    crash_at,
    instruments,
    new_broker,
)

from tradeforge.data.panel import BarPanel
from tradeforge.domain import (
    ClientOrderId,
    OrderSide,
    OrderStatus,
    OrderType,
    Symbol,
    TimeInForce,
)
from tradeforge.execution import (
    HOOK_POINTS,
    BrokerOrder,
    ExecutionError,
    HookPoint,
    OrderManager,
    OrderStore,
    SimulatedBroker,
    TradingHaltedError,
    plan_orders,
    to_commands,
)
from tradeforge.sim import MarketArrays, SimConfig, initial_state, step


def run(path: Path, broker: SimulatedBroker, n_bars: int, hook: object = None) -> OrderManager:
    """The shared bar loop, one ``submit`` per order."""
    return oms_loop.run(path, broker, n_bars, hook, batched=False)


def test_paper_orders_match_the_backtest_step_bar_by_bar(equities_panel: BarPanel,
                                                         tmp_path: Path) -> None:  # fmt: skip
    """Sizing + OMS + simulated broker reproduce sim.step's equity path (whole shares)."""
    n = 8
    broker = new_broker(equities_panel)
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), broker)
    market = MarketArrays.for_config(equities_panel, CONFIG)
    state = initial_state(CONFIG, 1, 3)
    insts = instruments(broker)
    for k in range(n):
        weights = WEIGHTS[k % len(WEIGHTS)]
        w = np.array([weights[s] for s in broker.symbols])
        state, result = step(state, w, market, START + k, CONFIG)
        marks = broker.marks()
        pf = oms.portfolio
        plan = plan_orders({Symbol(s): v for s, v in weights.items()}, pf.quantities(), marks,
                           pf.equity(marks), insts, BIG)  # fmt: skip
        for command in to_commands(plan, STRATEGY, broker.now):
            oms.submit(command)
        broker.advance()
        oms.process_events()
        shares = [float(oms.portfolio.position(s).quantity) for s in broker.symbols]
        assert shares == list(state.shares[0])
        equity = float(oms.portfolio.equity(broker.marks()))
        assert equity == pytest.approx(result.equity[0], rel=1e-12)
    assert oms.portfolio.quantities() == {s: p.quantity for s, p in broker.positions().items()}


def test_submit_persists_intent_then_ack_and_ignores_duplicate_events(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    broker = new_broker(equities_panel)
    store = OrderStore.open_sqlite(tmp_path / "o.db")
    seen: list[tuple[str, str | None]] = []

    def hook(point: HookPoint, cid: ClientOrderId) -> None:
        stored = store.get_order(cid)
        seen.append((point, stored.status.value if stored else None))

    oms = OrderManager(store, broker, hook=hook)
    order = oms.submit(make_command("c1", quantity="10"))
    assert order.status is OrderStatus.ACCEPTED
    assert order.venue_order_id == "sim-00000001"
    # each step was durable before the next one began
    assert seen == [("before_intent", None), ("after_intent", "new"), ("after_submit", "new"),
                    ("after_ack", "accepted")]  # fmt: skip
    broker.advance()
    applied = oms.process_events()
    assert [e.kind for e in applied] == ["filled"]  # the queued "accepted" was a duplicate
    assert oms.get_order(ClientOrderId("c1")).status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert oms.open_orders() == []
    assert oms.portfolio.quantities() == {"AAPL": Decimal(10)}
    assert oms.submit(make_command("c1", quantity="10")).status is OrderStatus.FILLED
    assert broker.submit_calls == 1  # a known id is never sent again
    assert [e.kind for e in store.events(ClientOrderId("c1"))] == ["submitted", "accepted",
                                                                   "filled"]  # fmt: skip


def test_lost_request_stays_new_and_reconcile_sends_it_once(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    broker = new_broker(equities_panel)
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), broker)
    broker.inject_submit_fault("lost_request")
    assert oms.submit(make_command("c1")).status is OrderStatus.NEW
    assert broker.list_orders() == []
    report = oms.reconcile()
    assert report.resubmitted == ["c1"]
    assert report.ok
    assert [o.client_order_id for o in broker.list_orders()] == ["c1"]
    assert oms.get_order(ClientOrderId("c1")).status is OrderStatus.ACCEPTED  # type: ignore[union-attr]


def test_lost_response_is_adopted_not_duplicated(equities_panel: BarPanel, tmp_path: Path) -> None:
    broker = new_broker(equities_panel)
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), broker)
    broker.inject_submit_fault("lost_response")
    assert oms.submit(make_command("c1")).status is OrderStatus.NEW
    assert len(broker.list_orders()) == 1  # the order exists at the broker
    again = oms.submit(make_command("c1"))  # the strategy retries the same leg
    assert again.status is OrderStatus.ACCEPTED
    assert again.venue_order_id == "sim-00000001"
    assert len(broker.list_orders()) == 1
    assert broker.submit_calls == 1


def test_rejection_and_cancel(equities_panel: BarPanel, tmp_path: Path) -> None:
    broker = new_broker(equities_panel)
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), broker)
    rejected = oms.submit(make_command("sell", side=OrderSide.SELL, quantity="1"))
    assert rejected.status is OrderStatus.REJECTED
    assert "insufficient qty" in rejected.reason
    resting = oms.submit(make_command("limit", order_type=OrderType.LIMIT,
                                      limit_price=Decimal("0.01"), time_in_force=TimeInForce.GTC))  # fmt: skip
    assert resting.status is OrderStatus.ACCEPTED
    assert oms.cancel(ClientOrderId("limit")).status is OrderStatus.PENDING_CANCEL
    oms.process_events()
    assert oms.get_order(ClientOrderId("limit")).status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert oms.cancel(ClientOrderId("limit")).status is OrderStatus.CANCELED  # no-op when done
    with pytest.raises(ExecutionError, match="'nope' is not in the OMS store"):
        oms.cancel(ClientOrderId("nope"))


def test_unknown_broker_order_and_position_halt_trading(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    broker = new_broker(equities_panel)
    broker.submit(make_command("manual", quantity="3"))  # placed outside this OMS
    broker.advance()
    broker.submit(make_command("manual-open", order_type=OrderType.LIMIT,
                               limit_price=Decimal("0.01"), time_in_force=TimeInForce.GTC))  # fmt: skip
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), broker)
    report = oms.start()
    assert not report.ok
    assert oms.halted
    assert report.unknown_at_broker == ["manual-open"]
    assert report.position_mismatches == [("AAPL", Decimal(0), Decimal(3))]
    with pytest.raises(TradingHaltedError, match="trading is halted"):
        oms.submit(make_command("c1"))


def test_acknowledged_order_missing_at_broker_halts(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    path = tmp_path / "o.db"
    OrderManager(OrderStore.open_sqlite(path), new_broker(equities_panel)).submit(
        make_command("c1", order_type=OrderType.LIMIT, limit_price=Decimal("0.01"),
                     time_in_force=TimeInForce.GTC))  # fmt: skip
    other_venue = new_broker(equities_panel)  # knows nothing of c1
    report = OrderManager(OrderStore.open_sqlite(path), other_venue).start()
    assert report.missing_at_broker == ["c1"]
    assert not report.ok
    assert other_venue.list_orders() == []  # an acknowledged order is never resent


class TotalsOnlyBroker(SimulatedBroker):
    """A broker that reports filled quantity and average price but no individual fills."""

    def get_order_by_client_id(self, client_order_id: ClientOrderId) -> BrokerOrder | None:
        report = super().get_order_by_client_id(client_order_id)
        return None if report is None else replace(report, fills=None)


def test_fills_inferred_from_totals_while_down(equities_panel: BarPanel, tmp_path: Path) -> None:
    broker = TotalsOnlyBroker.from_panel(equities_panel, SimConfig(), start=START)
    path = tmp_path / "o.db"
    OrderManager(OrderStore.open_sqlite(path), broker).submit(make_command("c1", quantity="7"))
    broker.advance()
    broker.drain_events()  # the process was down: the stream's events are gone
    oms = OrderManager(OrderStore.open_sqlite(path), broker)
    report = oms.start()
    assert report.ok, report.summary()
    assert report.adopted_fills == ["recon-sim-00000001-7"]
    order = oms.get_order(ClientOrderId("c1"))
    assert order is not None
    assert order.status is OrderStatus.FILLED
    remote = broker.get_order_by_client_id(ClientOrderId("c1"))
    assert remote is not None
    assert order.avg_fill_price == remote.avg_fill_price
    assert oms.portfolio.quantities() == {"AAPL": Decimal(7)}


@pytest.fixture(scope="module")
def uninterrupted(equities_panel: BarPanel, tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[OrderManager, SimulatedBroker]:  # fmt: skip
    broker = new_broker(equities_panel)
    oms = run(tmp_path_factory.mktemp("base") / "o.db", broker, n_bars=5)
    return oms, broker


@pytest.mark.parametrize("occurrence", [1, 4])
@pytest.mark.parametrize("point", HOOK_POINTS)
def test_crash_at_every_step_gives_one_order_per_leg_and_the_same_positions(
    point: HookPoint,
    occurrence: int,
    equities_panel: BarPanel,
    tmp_path: Path,
    uninterrupted: tuple[OrderManager, SimulatedBroker],
) -> None:
    base_oms, base_broker = uninterrupted
    broker = new_broker(equities_panel)
    path = tmp_path / "o.db"
    with pytest.raises(Crash):
        run(path, broker, n_bars=5, hook=crash_at(point, occurrence))
    oms = run(path, broker, n_bars=5)  # restart: same file, same venue
    assert oms.last_report is not None
    assert oms.last_report.ok
    orders = broker.list_orders()
    expected = base_broker.list_orders()
    # exactly one broker order per (strategy, bar, leg), the same ones as without the crash
    assert [o.client_order_id for o in orders] == [o.client_order_id for o in expected]
    assert [(o.quantity, o.status) for o in orders] == [(o.quantity, o.status) for o in expected]
    assert all(o.status is OrderStatus.FILLED for o in orders)
    # identical final positions, cash, P&L and fees, locally and at the broker
    assert oms.portfolio == base_oms.portfolio
    assert broker.positions() == base_broker.positions()
    assert broker.account() == base_broker.account()
    assert oms.open_orders() == []
    stored = oms.store.load_orders()
    assert [o.client_order_id for o in stored] == [o.client_order_id for o in expected]
