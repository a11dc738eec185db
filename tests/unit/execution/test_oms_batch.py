"""tradeforge.execution.oms batching: ``submit_many`` records a bar's intents in one
transaction before anything is sent, ``process_events`` applies a bar's fills in one
transaction, a crash at any step inside a batch recovers to the uninterrupted run, and a failed
commit leaves the manager's memory equal to the store."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import oms_loop
import pytest
from oms_loop import (
    Crash,
    bar_commands,
    crash_at,
    new_broker,
)

from tradeforge.data.panel import BarPanel
from tradeforge.domain import ClientOrderId, OrderStatus
from tradeforge.execution import (
    HOOK_POINTS,
    HookPoint,
    OrderManager,
    OrderStore,
    SimulatedBroker,
)
from tradeforge.execution.errors import OmsStoreError


def run(path: Path, broker: SimulatedBroker, n_bars: int, hook: object = None,
        batched: bool = True) -> OrderManager:  # fmt: skip
    """The shared bar loop, a bar's orders at once with ``submit_many`` unless told not to."""
    return oms_loop.run(path, broker, n_bars, hook, batched=batched)


class Statements:
    """Every SQL statement the store's connection runs (sqlite3 trace callback)."""

    def __init__(self, store: OrderStore) -> None:
        self.seen: list[str] = []
        conn = store._conn
        assert isinstance(conn, sqlite3.Connection)
        conn.set_trace_callback(self.seen.append)

    def commits(self) -> int:
        return sum(1 for s in self.seen if s.strip().upper().startswith("COMMIT"))

    def transactions(self) -> list[list[str]]:
        """The statements of each committed transaction, in order."""
        out: list[list[str]] = []
        current: list[str] | None = None
        for s in self.seen:
            head = s.strip().upper()
            if head.startswith("BEGIN"):
                current = []
            elif head.startswith("COMMIT"):
                assert current is not None
                out.append(current)
                current = None
            elif current is not None:
                current.append(s)
        return out


def test_a_bar_of_n_orders_is_n_intents_in_one_transaction(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    path = tmp_path / "o.db"
    broker = new_broker(equities_panel)
    observer = OrderStore.open_sqlite(path)
    at_first_send: list[list[str]] = []

    def hook(point: HookPoint, cid: ClientOrderId) -> None:
        if point == "after_submit" and not at_first_send:
            # another connection sees only committed rows: every intent is there already
            at_first_send.append(sorted(o.status.value for o in observer.load_orders()))

    oms = OrderManager(OrderStore.open_sqlite(path), broker, hook=hook,
                       initial_cash=Decimal(1_000_000))  # fmt: skip
    commands = bar_commands(oms, broker)
    assert len(commands) == 3
    trace = Statements(oms.store)
    orders = oms.submit_many(commands)
    assert [o.client_order_id for o in orders] == [c.client_order_id for c in commands]
    assert [o.status for o in orders] == [OrderStatus.ACCEPTED] * 3
    assert at_first_send == [["new", "new", "new"]]
    # two transactions for the bar (was two per order): the 3 intents, then the 3 acks
    assert trace.commits() == 2
    intents, acks = trace.transactions()
    events = [s for s in intents if s.strip().upper().startswith("INSERT INTO ORDER_EVENTS")]
    assert len(events) == 3, intents
    assert all("'submitted'" in s for s in events), events
    assert len(broker.list_orders()) == 3
    assert {o.client_order_id for o in oms.store.load_orders()} == {
        c.client_order_id for c in commands
    }
    assert len(acks) > 0

    # the bar's fills: one transaction for all three
    broker.advance()
    trace.seen.clear()
    applied = oms.process_events()
    assert len([e for e in applied if e.kind == "filled"]) == 3
    assert trace.commits() == 1
    assert oms.portfolio == oms.store.load_portfolio()

    # idempotent: the same commands again send nothing and write no intent
    trace.seen.clear()
    again = oms.submit_many(commands)
    assert [o.status for o in again] == [OrderStatus.FILLED] * 3
    assert len(broker.list_orders()) == 3
    assert not any("INSERT" in s.upper() for s in trace.seen)
    observer.close()
    oms.store.close()


def test_submit_many_matches_submit_one_by_one(equities_panel: BarPanel, tmp_path: Path) -> None:
    one = run(tmp_path / "a.db", (b1 := new_broker(equities_panel)), n_bars=5, batched=False)
    many = run(tmp_path / "b.db", (b2 := new_broker(equities_panel)), n_bars=5)
    assert many.portfolio == one.portfolio
    assert [(o.client_order_id, o.quantity, o.status) for o in b2.list_orders()] == [
        (o.client_order_id, o.quantity, o.status) for o in b1.list_orders()
    ]


@pytest.fixture(scope="module")
def uninterrupted(equities_panel: BarPanel, tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[OrderManager, SimulatedBroker]:  # fmt: skip
    broker = new_broker(equities_panel)
    oms = run(tmp_path_factory.mktemp("base") / "o.db", broker, n_bars=5)
    return oms, broker


@pytest.mark.parametrize("occurrence", [1, 2, 4])
@pytest.mark.parametrize("point", HOOK_POINTS)
def test_crash_inside_a_batch_recovers_to_the_uninterrupted_run(
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
    orders, expected = broker.list_orders(), base_broker.list_orders()
    # exactly one broker order per command, the same ones as without the crash
    assert [o.client_order_id for o in orders] == [o.client_order_id for o in expected]
    assert [(o.quantity, o.status) for o in orders] == [(o.quantity, o.status) for o in expected]
    assert all(o.status is OrderStatus.FILLED for o in orders)
    assert oms.portfolio == base_oms.portfolio
    assert broker.positions() == base_broker.positions()
    assert broker.account() == base_broker.account()
    assert oms.open_orders() == []


class FailingCommit:
    """The store's connection, whose ``commit`` fails when armed (a full disk, a lost server)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.armed = False

    def commit(self) -> None:
        if self.armed:
            self.armed = False
            raise sqlite3.OperationalError("disk I/O error")
        self._conn.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def memory_equals_store(oms: OrderManager) -> None:
    stored = {o.client_order_id: o for o in oms.store.load_orders(open_only=True)}
    assert {o.client_order_id: o for o in oms.open_orders()} == stored
    assert oms.portfolio == oms.store.load_portfolio()


@pytest.mark.parametrize("which", ["intents", "acks", "fills"])
def test_a_failed_commit_leaves_memory_equal_to_the_store(
    which: str, equities_panel: BarPanel, tmp_path: Path,
    uninterrupted: tuple[OrderManager, SimulatedBroker],
) -> None:  # fmt: skip
    base_oms, base_broker = uninterrupted
    broker = new_broker(equities_panel)
    store = OrderStore.open_sqlite(tmp_path / "o.db")
    oms = OrderManager(store, broker)
    assert oms.start().ok
    failing = FailingCommit(store._conn)
    store._conn = failing  # type: ignore[assignment]
    commands = bar_commands(oms, broker)
    if which == "intents":
        failing.armed = True
        with pytest.raises(OmsStoreError):
            oms.submit_many(commands)
        memory_equals_store(oms)
        assert oms.open_orders() == []
        assert broker.list_orders() == []  # nothing was sent: no intent was durable
    elif which == "acks":
        oms.submit_many(commands[:0])  # no commit at all for an empty bar
        with pytest.raises(OmsStoreError):
            oms.submit_many(_arm_after_first_commit(failing, commands, oms))
        memory_equals_store(oms)
        # sent, but the acknowledgements were rolled back: memory says new, as the store does
        assert [o.status for o in oms.open_orders()] == [OrderStatus.NEW] * 3
        assert len(broker.list_orders()) == 3
    else:
        oms.submit_many(commands)
        broker.advance()
        failing.armed = True
        with pytest.raises(OmsStoreError):
            oms.process_events()
        memory_equals_store(oms)
        assert oms.portfolio.quantities() == {}
        assert [o.status for o in oms.open_orders()] == [OrderStatus.ACCEPTED] * 3
    # the next reconciliation brings everything up to date, sending nothing twice
    assert oms.reconcile().ok
    store.close()
    oms = run(tmp_path / "o.db", broker, n_bars=5)
    assert [o.client_order_id for o in broker.list_orders()] == [
        o.client_order_id for o in base_broker.list_orders()
    ]
    assert oms.portfolio == base_oms.portfolio


def _arm_after_first_commit(
    failing: FailingCommit, commands: list[Any], oms: OrderManager
) -> list[Any]:
    """Arms the commit failure for the second transaction of ``submit_many`` (the acks)."""
    original = oms._call_hook

    def hook(point: HookPoint, cid: ClientOrderId) -> None:
        if point == "after_intent":
            failing.armed = True
        original(point, cid)

    oms._call_hook = hook  # type: ignore[method-assign]
    return commands


def test_the_node_risk_checks_a_bar_order_by_order_with_the_bar_approved_so_far(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    """The node sends a bar's orders in one ``submit_many``, but each order is still
    risk-checked against the open orders INCLUDING the ones of this bar approved before it:
    with ``max_open_orders = 2`` no bar sends more than two orders (the rest are denied)."""
    from test_node_support import bar_time, broker, make_node

    from tradeforge.risk import RiskConfig, RiskEngine

    def factory(target: object, clock: object) -> RiskEngine:
        return RiskEngine(RiskConfig(max_open_orders=2), clock=clock, kill_target=target)  # type: ignore[arg-type]

    venue = broker(equities_panel)
    node = make_node(tmp_path / "node", equities_panel, venue, risk_factory=factory)
    first = venue.bar
    try:
        result = node.run(bar_time(equities_panel, first), bar_time(equities_panel, first + 8))
    finally:
        node.close()
    sent = [o for o in venue.list_orders()]
    per_bar: dict[Any, int] = {}
    for d in result.decisions:
        cids = {c.client_order_id for c in d.commands}
        per_bar[d.bar_time] = sum(1 for o in sent if o.client_order_id in cids)
    assert sent
    assert max(per_bar.values()) == 2
    assert result.denied
    assert all("max_open_orders" in why for why in result.denied.values())
    decided = {c.client_order_id for d in result.decisions for c in d.commands}
    assert decided == set(result.denied) | {o.client_order_id for o in sent}
