"""tradeforge.execution.store: durable orders, events, fills and positions on SQLite (WAL,
synchronous=FULL); a reload gives back the same open orders and positions."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from exec_helpers import T0, make_command, make_fill

from tradeforge.domain import (
    ClientOrderId,
    Order,
    OrderAccepted,
    OrderSide,
    OrderStatus,
    OrderSubmitted,
    Portfolio,
    VenueOrderId,
)
from tradeforge.execution import OmsStoreError, OrderStore


def submitted(cid: str, **kw: object) -> tuple[Order, OrderSubmitted]:
    event = OrderSubmitted(client_order_id=ClientOrderId(cid), ts=T0,
                           command=make_command(cid, **kw))  # fmt: skip
    return Order.create(event), event


def test_sqlite_durability_settings(tmp_path: Path) -> None:
    store = OrderStore.open_sqlite(tmp_path / "oms" / "orders.db")
    assert str(store.pragma("journal_mode")).lower() == "wal"
    assert store.pragma("synchronous") == 2  # FULL
    assert store.pragma("foreign_keys") == 1
    tables = {r[0] for r in sqlite3.connect(tmp_path / "oms" / "orders.db").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}  # fmt: skip
    assert {"orders", "order_events", "fills", "positions", "account", "tf_meta"} <= tables


def test_reload_gives_the_same_orders_events_fills_and_positions(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    store = OrderStore.open_sqlite(path)
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

    again = OrderStore.open_sqlite(path)
    assert again.get_order(ClientOrderId("tf1-a")) == a
    assert a.status is OrderStatus.FILLED
    assert [o.client_order_id for o in again.load_orders(open_only=True)] == ["tf1-b"]
    assert again.load_orders(open_only=True) == [b]
    assert len(again.load_orders()) == 2
    assert [e.kind for e in again.events(ClientOrderId("tf1-a"))] == [
        "submitted", "accepted", "filled", "filled"]  # fmt: skip
    assert again.fills() == fills
    loaded = again.load_portfolio()
    assert loaded == portfolio
    assert loaded is not None
    assert loaded.cash == Decimal(100_000) - Decimal("749.00") - Decimal("1125.0") - Decimal("0.03")
    # the portfolio rebuilt from the stored fills equals the stored snapshot
    rebuilt = Portfolio(cash=Decimal(100_000))
    for f in again.fills():
        rebuilt = rebuilt.apply_fill(f)
    assert rebuilt == loaded


def test_writes_refuse_gaps_and_duplicates(tmp_path: Path) -> None:
    store = OrderStore.open_sqlite(tmp_path / "o.db")
    portfolio = store.init_account(Decimal(1000))
    a, ev = submitted("tf1-a")
    store.record(a, ev)
    with pytest.raises(OmsStoreError, match="already stored"):
        store.record(a, ev)
    f = make_fill("tf1-a", "e1", "1", "10")
    a1 = a.apply(f)
    with pytest.raises(OmsStoreError, match="without the portfolio"):
        store.record(a1, f)
    # skipping an event (stored event_count 1, this order is at 3) is refused
    a3 = a1.apply(make_fill("tf1-a", "e2", "1", "10"))
    with pytest.raises(OmsStoreError, match="event_count 2 is not in the store"):
        store.record(a3, make_fill("tf1-a", "e2", "1", "10"), portfolio)
    # a failed transaction leaves nothing behind
    assert store.get_order(ClientOrderId("tf1-a")) == a
    assert store.fills() == []
    assert store.load_portfolio() == Portfolio(cash=Decimal(1000))


def test_init_account_keeps_the_first_cash(tmp_path: Path) -> None:
    store = OrderStore.open_sqlite(tmp_path / "o.db")
    assert store.init_account(Decimal(500)).cash == 500
    assert store.init_account(Decimal(900)).cash == 500


def test_schema_version_mismatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    OrderStore.open_sqlite(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE tf_meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(OmsStoreError, match="schema_version = '99'; expected '1'"):
        OrderStore.open_sqlite(path)


def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(OmsStoreError, match="cannot open it as SQLite"):
        OrderStore.open_sqlite(tmp_path / "dir.db")


def test_sell_side_fill_updates_short_position(tmp_path: Path) -> None:
    store = OrderStore.open_sqlite(tmp_path / "o.db")
    p = store.init_account(Decimal(1000))
    a, ev = submitted("tf1-s", side=OrderSide.SELL, quantity="3")
    store.record(a, ev)
    f = make_fill("tf1-s", "e1", "3", "50", side=OrderSide.SELL)
    p = p.apply_fill(f)
    store.record(a.apply(f), f, p)
    loaded = store.load_portfolio()
    assert loaded is not None
    assert loaded.cash == Decimal(1150)
    assert loaded.quantities() == {"AAPL": Decimal(-3)}
