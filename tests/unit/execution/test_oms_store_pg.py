"""tradeforge.execution.store on both dialects: the same behaviour on SQLite and on a REAL
PostgreSQL server (round trip, refused gaps and duplicates, restart, schema version), two
connections writing one store (the writer lock), batches (one transaction), open_store's
choice by scheme, and the order manager's crash-restart on PostgreSQL.

PostgreSQL comes from ``tradeforge.testing.postgres`` (TRADEFORGE_TEST_POSTGRES_URL or a
throwaway local cluster; skipped with the reason when neither exists); each test gets a fresh
database."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from exec_helpers import T0, make_command, make_fill

from tradeforge.data.panel import BarPanel
from tradeforge.domain import (
    ClientOrderId,
    Order,
    OrderAccepted,
    OrderStatus,
    OrderSubmitted,
    Portfolio,
    StrategyId,
    Symbol,
    VenueOrderId,
)
from tradeforge.execution import (
    OmsStoreError,
    OrderManager,
    OrderStore,
    SimulatedBroker,
    plan_orders,
    to_commands,
)
from tradeforge.execution.store import SqliteDialect, is_postgres_url, open_store
from tradeforge.execution.store_pg import PostgresDialect, redact_url
from tradeforge.sim import SimConfig
from tradeforge.testing.postgres import fresh_database, require_postgres
from tradeforge.testing.sim import EVERY_COST


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database(require_postgres()) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a store lives: an SQLite file path or a fresh PostgreSQL database URL."""
    if request.param == "sqlite":
        yield str(tmp_path / "oms" / "orders.db")
    else:
        with fresh_database(require_postgres()) as url:
            yield url


_RAW: list[Any] = []


@pytest.fixture(autouse=True)
def _close_raw() -> Iterator[None]:
    yield
    while _RAW:
        _RAW.pop().close()


def raw_execute(target: str, statement: str) -> None:
    """Run one statement on the store's database outside the store (as an operator would)."""
    conn: Any = (
        psycopg.connect(target, autocommit=True)
        if is_postgres_url(target)
        else sqlite3.connect(target, isolation_level=None)
    )
    _RAW.append(conn)
    conn.execute(statement)


def submitted(cid: str, **kw: object) -> tuple[Order, OrderSubmitted]:
    event = OrderSubmitted(client_order_id=ClientOrderId(cid), ts=T0,
                           command=make_command(cid, **kw))  # fmt: skip
    return Order.create(event), event


def test_open_store_chooses_the_dialect_by_scheme(target: str) -> None:
    with open_store(target) as store:
        if is_postgres_url(target):
            assert isinstance(store.dialect, PostgresDialect)
            assert store.setting("synchronous_commit") == "on"
            with pytest.raises(OmsStoreError, match="SQLite only"):
                store.pragma("journal_mode")
        else:
            assert isinstance(store.dialect, SqliteDialect)
            assert str(store.setting("journal_mode")).lower() == "wal"
            assert store.pragma("synchronous") == 2
        with pytest.raises(OmsStoreError, match=r"setting name = 'x; drop'; expected"):
            store.setting("x; drop")
    assert is_postgres_url("postgres://h/db")
    assert is_postgres_url("POSTGRESQL://h/db")
    assert not is_postgres_url("state/postgresql.db")
    assert not is_postgres_url(Path("postgresql://x"))


def test_reload_gives_the_same_orders_events_fills_and_positions(target: str) -> None:
    store = open_store(target)
    portfolio = store.init_account(Decimal(100_000))
    a, ev_a = submitted("tf1-a", quantity="10")
    b, ev_b = submitted("tf1-b", symbol="MSFT", quantity="5")
    store.record(a, ev_a)
    store.record(b, ev_b)
    ack = OrderAccepted(client_order_id=ClientOrderId("tf1-a"), ts=T0,
                        venue_order_id=VenueOrderId("v-1"))  # fmt: skip
    a = a.apply(ack)
    store.record(a, ack)
    fills = [make_fill("tf1-a", "e1", "4", "187.25", "0.01"),
             make_fill("tf1-a", "e2", "6", "187.5", "0.02")]  # fmt: skip
    for f in fills:
        a = a.apply(f)
        portfolio = portfolio.apply_fill(f)
        store.record(a, f, portfolio)
    store.close()

    again = open_store(target)  # a restart: a new connection sees everything committed
    assert again.get_order(ClientOrderId("tf1-a")) == a
    assert a.status is OrderStatus.FILLED
    assert again.load_orders(open_only=True) == [b]
    assert [o.client_order_id for o in again.load_orders()] == ["tf1-a", "tf1-b"]
    assert [e.kind for e in again.events(ClientOrderId("tf1-a"))] == [
        "submitted", "accepted", "filled", "filled"]  # fmt: skip
    assert again.fills() == fills
    loaded = again.load_portfolio()
    assert loaded == portfolio
    assert loaded is not None
    assert loaded.cash == Decimal(100_000) - Decimal("749.00") - Decimal("1125.0") - Decimal("0.03")
    assert loaded.position(Symbol("AAPL")).quantity == Decimal(10)
    again.close()


def test_writes_refuse_gaps_and_duplicates(target: str) -> None:
    store = open_store(target)
    portfolio = store.init_account(Decimal(1000))
    a, ev = submitted("tf1-a")
    store.record(a, ev)
    with pytest.raises(OmsStoreError, match="'tf1-a' is already stored"):
        store.record(a, ev)
    f = make_fill("tf1-a", "e1", "1", "10")
    a1 = a.apply(f)
    with pytest.raises(OmsStoreError, match="without the portfolio"):
        store.record(a1, f)
    a3 = a1.apply(make_fill("tf1-a", "e2", "1", "10"))
    with pytest.raises(OmsStoreError, match="event_count 2 is not in the store"):
        store.record(a3, make_fill("tf1-a", "e2", "1", "10"), portfolio)
    # the same fill id twice is refused by the database itself (primary key), atomically
    store.record(a1, f, portfolio.apply_fill(f))
    a2 = a1.model_copy(update={"event_count": 3})  # a replayed fill that slipped past the OMS
    with pytest.raises(OmsStoreError, match=r"write failed: .*(UNIQUE|duplicate key)"):
        store.record(a2, f, portfolio.apply_fill(f).apply_fill(f))
    assert store.get_order(ClientOrderId("tf1-a")) == a1
    assert store.fills() == [f]
    assert store.load_portfolio() == portfolio.apply_fill(f)
    store.close()


def test_a_client_order_id_is_stored_once_across_connections(target: str) -> None:
    one, two = open_store(target), open_store(target)
    a, ev = submitted("tf1-dup")
    one.record(a, ev)
    with pytest.raises(OmsStoreError, match="'tf1-dup' is already stored"):
        two.record(a, ev)
    assert [o.client_order_id for o in two.load_orders()] == ["tf1-dup"]
    one.close()
    two.close()


def test_init_account_keeps_the_first_cash(target: str) -> None:
    with open_store(target) as store:
        assert store.init_account(Decimal(500)).cash == 500
        assert store.init_account(Decimal(900)).cash == 500
    with open_store(target) as store:
        assert store.load_portfolio() == Portfolio(cash=Decimal(500))


def test_schema_version_mismatch_is_refused(target: str) -> None:
    open_store(target).close()
    raw_execute(target, "UPDATE tf_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(OmsStoreError, match="schema_version = '99'; expected '1'"):
        open_store(target)


def test_batch_commits_every_write_at_once_or_none(target: str) -> None:
    store, reader = open_store(target), open_store(target)
    portfolio = store.init_account(Decimal(1000))
    orders = [submitted(f"tf1-{i}", quantity="1") for i in range(5)]
    with store.batch():
        for order, event in orders:
            store.record(order, event)
        # another connection sees nothing before the batch commits
        assert reader.load_orders() == []
        assert len(store.load_orders()) == 5  # the batch's own connection sees its writes
    assert [o.client_order_id for o in reader.load_orders()] == [f"tf1-{i}" for i in range(5)]

    more = [submitted(f"tf2-{i}") for i in range(3)]

    def interrupted() -> None:
        with store.batch():
            for order, event in more:
                store.record(order, event)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert len(reader.load_orders()) == 5
    f = make_fill("tf1-0", "e1", "1", "10")

    def fill_then_duplicate() -> None:  # a failed write fails the whole batch
        with store.batch():
            store.record(orders[0][0].apply(f), f, portfolio.apply_fill(f))
            store.record(*orders[1])

    with pytest.raises(OmsStoreError, match="already stored"):
        fill_then_duplicate()
    assert reader.fills() == []
    assert reader.load_portfolio() == portfolio
    with store.batch(), pytest.raises(OmsStoreError, match=r"batch\(\) inside batch\(\)"):
        store.batch().__enter__()
    store.record(*more[0])  # the store works normally after the batches
    assert reader.get_order(ClientOrderId("tf2-0")) == more[0][0]
    store.close()
    reader.close()


def test_writers_on_two_connections_take_turns(target: str) -> None:
    """A write waits for another connection's open write transaction (SQLite: BEGIN
    IMMEDIATE; PostgreSQL: the advisory writer lock) instead of interleaving with it, so event
    ids stay unique and in commit order."""
    first = open_store(target)
    open_store(target).close()  # the schema exists before the second writer starts
    a, ev_a = submitted("tf1-a")
    b, ev_b = submitted("tf1-b")
    done, opened, go = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write_b() -> None:
        try:
            with open_store(target) as second:  # its own connection, in its own thread
                opened.set()
                go.wait(10)
                second.record(b, ev_b)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=write_b)
    thread.start()
    assert opened.wait(10)
    with first.batch():
        first.record(a, ev_a)
        go.set()
        assert not done.wait(0.5)  # blocked behind the open transaction
    thread.join(10)
    assert done.is_set()
    assert errors == []
    with open_store(target) as store:
        assert [o.client_order_id for o in store.load_orders()] == ["tf1-a", "tf1-b"]
    ids = _event_ids(target)
    assert ids == [(1, "tf1-a"), (2, "tf1-b")]
    first.close()


def _event_ids(target: str) -> list[tuple[int, str]]:
    conn: Any = (
        psycopg.connect(target)
        if is_postgres_url(target)
        else sqlite3.connect(target, isolation_level=None)
    )
    _RAW.append(conn)
    rows = conn.execute("SELECT id, client_order_id FROM order_events ORDER BY id").fetchall()
    return [(int(i), str(c)) for i, c in rows]


def test_concurrent_writers_lose_nothing(target: str) -> None:
    """Two connections, each in its own thread, submit and fill 20 orders each at once."""
    with open_store(target) as store:
        store.init_account(Decimal(10**6))
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(k: int) -> None:
        try:
            with open_store(target) as store:  # one connection per thread
                start.wait(10)
                for i in range(20):
                    order, event = submitted(f"w{k}-{i}", quantity="1")
                    store.record(order, event)
                    ack = OrderAccepted(client_order_id=order.client_order_id, ts=T0,
                                        venue_order_id=VenueOrderId(f"v{k}-{i}"))  # fmt: skip
                    store.record(order.apply(ack), ack)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    ids = _event_ids(target)
    assert [i for i, _ in ids] == list(range(1, 81))
    with open_store(target) as store:
        orders = store.load_orders()
        assert len(orders) == 40
        assert {o.status for o in orders} == {OrderStatus.ACCEPTED}
        assert all(len(store.events(o.client_order_id)) == 2 for o in orders)


def test_postgres_connection_errors_name_the_url_without_password() -> None:
    with pytest.raises(OmsStoreError, match=r"expected a postgresql:// URL"):
        PostgresDialect("mysql://u:secret@h/db")
    with pytest.raises(OmsStoreError, match=r"connect_timeout_s = 0; expected seconds > 0"):
        PostgresDialect("postgresql://h/db", connect_timeout_s=0)
    port = _closed_port()
    url = f"postgresql://u:secret@127.0.0.1:{port}/db"
    with pytest.raises(OmsStoreError, match=r"cannot connect") as info:
        OrderStore.open_postgres(url, connect_timeout_s=2)
    assert "secret" not in str(info.value)
    assert f"u:***@127.0.0.1:{port}/db" in str(info.value)
    assert redact_url("postgresql://h:5432/db") == "postgresql://h:5432/db"


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the order manager on PostgreSQL: crash and restart ------------------------------------

START = 300
CONFIG = SimConfig(
    costs=EVERY_COST.model_copy(
        update={"borrow_bps_annual": 0.0, "cash_rate_annual": 0.0, "margin_spread_annual": 0.0}
    ),
    fractional=False,
)
WEIGHTS = [{"AAPL": 0.3, "IBM": 0.2, "MSFT": 0.4}, {"AAPL": 0.1, "IBM": 0.5, "MSFT": 0.2}]


class Crash(Exception):
    """Stands for the process being killed."""


def _run(store: OrderStore, broker: SimulatedBroker, n_bars: int,
         hook: Callable[[Any, Any], None] | None = None) -> OrderManager:  # fmt: skip
    oms = OrderManager(store, broker, hook=hook)
    assert oms.start().ok
    from tradeforge.domain import Instrument

    insts = {s: Instrument(symbol=s) for s in broker.symbols}
    while broker.bar < START + n_bars:
        marks = broker.marks()
        weights = {Symbol(k): v for k, v in WEIGHTS[(broker.bar - START) % 2].items()}
        pf = oms.portfolio
        plan = plan_orders(weights, pf.quantities(), marks, pf.equity(marks), insts,
                           Decimal(10**12))  # fmt: skip
        for command in to_commands(plan, StrategyId("momo"), broker.now):
            oms.submit(command)
        broker.advance()
        oms.process_events()
    return oms


def test_each_step_is_committed_before_the_next(target: str, equities_panel: BarPanel) -> None:
    """Write-ahead, seen from ANOTHER connection (which sees only committed rows): the intent
    is committed before the broker is called, the acknowledgement before the manager goes on,
    the fill (with the portfolio) before ``after_fill``."""
    broker = SimulatedBroker.from_panel(equities_panel, CONFIG, start=START)
    seen: list[tuple[str, str | None, Decimal | None]] = []
    with open_store(target) as store, open_store(target) as observer:

        def hook(point: Any, cid: Any) -> None:
            stored = observer.get_order(cid)
            pf = observer.load_portfolio()
            qty = pf.position(Symbol("AAPL")).quantity if pf is not None else None
            seen.append((point, stored.status.value if stored else None, qty))

        oms = OrderManager(store, broker, hook=hook, initial_cash=Decimal(100_000))
        oms.submit(make_command("c1", quantity="10"))
        broker.advance()
        oms.process_events()
    assert seen == [
        ("before_intent", None, Decimal(0)),
        ("after_intent", "new", Decimal(0)),
        ("after_submit", "new", Decimal(0)),
        ("after_ack", "accepted", Decimal(0)),
        ("fill_received", "accepted", Decimal(0)),
        ("after_fill", "filled", Decimal(10)),
    ]


@pytest.mark.parametrize("point", ["after_intent", "fill_received"])
def test_order_manager_restarts_from_postgres_after_a_crash(
    point: str, equities_panel: BarPanel, pg_url: str, tmp_path: Path
) -> None:
    """A crash mid-bar, then a restart on the same PostgreSQL database, gives exactly the
    orders and the portfolio of an uninterrupted run (on SQLite)."""
    base_broker = SimulatedBroker.from_panel(equities_panel, CONFIG, start=START)
    base = _run(open_store(str(tmp_path / "base.db")), base_broker, 3)  # uninterrupted, SQLite
    base.store.close()
    broker = SimulatedBroker.from_panel(equities_panel, CONFIG, start=START)
    seen = {"n": 0}

    def hook(p: Any, cid: Any) -> None:
        if p == point:
            seen["n"] += 1
            if seen["n"] == 2:
                raise Crash(p)

    with open_store(pg_url) as store, pytest.raises(Crash):
        _run(store, broker, 3, hook)
    oms = _run(open_store(pg_url), broker, 3)  # restart: the same database, the same venue
    assert oms.last_report is not None
    assert oms.last_report.ok
    assert [o.client_order_id for o in broker.list_orders()] == [
        o.client_order_id for o in base_broker.list_orders()
    ]
    assert all(o.status is OrderStatus.FILLED for o in broker.list_orders())
    assert oms.portfolio == base.portfolio
    assert oms.portfolio.quantities() == {s: p.quantity for s, p in broker.positions().items()}
    assert len(oms.store.load_orders()) == len(broker.list_orders())
    oms.store.close()


def test_recent_reads_are_bounded_and_newest_first(target: str) -> None:
    store = open_store(target)
    store.init_account(Decimal(100_000))
    for k in range(6):
        order, event = submitted(f"tf1-r{k}", quantity="1")
        store.record(order, event)
    before = store.activity()
    recent = store.recent_orders(3)
    assert len(recent) == 6  # the three newest, then every other open order
    assert {o.client_order_id for o in recent} == {f"tf1-r{k}" for k in range(6)}
    filled, _ = submitted("tf1-f", quantity="2")
    store.record(filled, _)
    fill = make_fill("tf1-f", "e9", "2", "10", "0.01")
    store.record(filled.apply(fill), fill, store.load_portfolio().apply_fill(fill))
    assert [f.fill_id for f in store.recent_fills(5)] == ["e9"]
    assert store.activity() > before
    assert store.recent_orders(1)[0].client_order_id == "tf1-f"
    store.close()
