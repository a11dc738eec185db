"""tradeforge.execution.venue.journal: a venue restarted on its --state folder is exactly where it
stopped (same bar, orders, fills, fees, cash, ids), and refuses a folder of another config."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from venue_helpers import COSTS, make_engine, market

from tradeforge.data.panel import BarPanel
from tradeforge.execution.venue import AlpacaApiError, VenueEngine, VenueStateError
from tradeforge.execution.venue.faults import PartialFillFault, RejectFault
from tradeforge.sim import SimConfig


def _snapshot(engine: VenueEngine) -> dict[str, Any]:
    return {
        "bar": engine.bar,
        "orders": engine.orders(status="all", limit=500, direction="asc"),
        "positions": engine.positions(),
        "account": engine.account(),
    }


def _trade(engine: VenueEngine) -> None:
    engine.faults.add(PartialFillFault(participation_cap=1e-6))
    engine.faults.add(RejectFault(symbol="IBM"))
    engine.submit(market("AAPL", "10", client_order_id="a"))
    engine.submit(market("MSFT", qty=None, notional=2500.0, client_order_id="b"))
    engine.submit(market("IBM", "3", client_order_id="r"))
    engine.submit(market("AAPL", "500", time_in_force="gtc", client_order_id="g"))
    engine.advance()  # partial fills only (participation capped)
    engine.submit(market("AAPL", "1", type="limit", limit_price=0.5, client_order_id="x"))
    engine.cancel(engine.order_by_client_id("x")["id"])
    engine.advance(2)


def test_restart_replays_the_journal_to_the_same_state(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    first, _ = make_engine(equities_panel, state_dir=tmp_path)
    _trade(first)
    before = _snapshot(first)
    entries = len(first.journal)
    first.close()
    assert (tmp_path / "venue.sqlite").is_file()
    assert before["bar"] > 0
    assert {o["client_order_id"]: o["status"] for o in before["orders"]} == {
        "a": "filled", "b": "expired", "r": "rejected", "g": "filled", "x": "canceled",
    }  # fmt: skip

    second, _ = make_engine(equities_panel, state_dir=tmp_path)
    try:
        assert _snapshot(second) == before
        assert len(second.journal) == entries
        with pytest.raises(AlpacaApiError, match="client_order_id must be unique"):
            second.submit(market(client_order_id="a"))
        # and it keeps going from there exactly like an uninterrupted venue
        uninterrupted, _ = make_engine(equities_panel)
        _trade(uninterrupted)
        for eng in (second, uninterrupted):
            eng.submit(market("MSFT", "4", client_order_id="later"))
            eng.advance()
        assert _snapshot(second) == _snapshot(uninterrupted)
        uninterrupted.close()
    finally:
        second.close()


def test_a_state_folder_of_another_configuration_is_refused(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    engine, _ = make_engine(equities_panel, state_dir=tmp_path)
    engine.submit(market())
    engine.close()
    other = SimConfig(costs=COSTS.model_copy(update={"commission_bps": 9.0}))
    with pytest.raises(VenueStateError) as info:
        make_engine(equities_panel, state_dir=tmp_path, sim=other)
    assert "sim.costs.commission_bps = 3.0 in the state, 9.0 now" in str(info.value)
    # keys and account labels do not change fills: they may differ
    again, _ = make_engine(equities_panel, state_dir=tmp_path, api_key="k", secret_key="s")
    assert len(again.orders(status="all")) == 1
    again.close()


def test_an_unreadable_state_file_is_refused(equities_panel: BarPanel, tmp_path: Path) -> None:
    (tmp_path / "venue.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(VenueStateError, match="not a SQLite journal"):
        make_engine(equities_panel, state_dir=tmp_path)


def test_the_journal_is_committed_with_wal_and_full_sync(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    engine, _ = make_engine(equities_panel, state_dir=tmp_path)
    try:
        engine.submit(market(client_order_id="w"))
        # a second connection sees the committed entry while the venue is still running
        with sqlite3.connect(tmp_path / "venue.sqlite") as conn:
            rows = conn.execute("SELECT kind, payload FROM venue_journal").fetchall()
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert [r[0] for r in rows] == ["submit"]
        assert '"client_order_id": "w"' in rows[0][1]
        assert mode == "wal"
        assert engine.journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        engine.close()
