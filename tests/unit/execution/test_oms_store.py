"""tradeforge.execution.store, SQLite-only parts (durability settings, bad paths, short fills); the
behaviour both backends share is tested on both in test_oms_store_pg.py."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from exec_helpers import T0, make_command, make_fill

from tradeforge.domain import (
    ClientOrderId,
    Order,
    OrderSide,
    OrderSubmitted,
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
