"""The node on the local venue through alpaca-py: the same equity as on the in-process simulator,
reconciliation at start-up and every N bars halting on an unexplained difference, and clear
errors for a missing Alpaca key."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("alpaca")

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest
from test_paper_support import no_thread_left, numpy_program, start_venue  # noqa: F401

from tradeforge.core.errors import ConfigError
from tradeforge.execution.node import NodeConfig
from tradeforge.experiment.paper import KEY_ENV, SECRET_ENV, PaperConfig, paper_trade

START, END = "2010-01-04", "2010-01-13"
CONFIG = PaperConfig(node=NodeConfig(strategy_id="swing", reconcile_every=3))


def _buy_by_hand(url: str, cid: str) -> None:
    client = TradingClient("k", "s", paper=True, url_override=url)
    try:
        client.submit_order(MarketOrderRequest(symbol="IBM", qty=5, side=OrderSide.BUY,
                                               time_in_force=TimeInForce.DAY,
                                               client_order_id=cid))  # fmt: skip
    finally:
        client._session.close()


def test_the_local_venue_and_the_simulator_give_the_same_run(tmp_path: Path) -> None:
    program = numpy_program()
    server = start_venue(date(2010, 1, 4))
    try:
        local = paper_trade(CONFIG, program, venue="local", venue_url=server.url, start=START,
                            end=END, state_dir=tmp_path / "local")  # fmt: skip
    finally:
        server.stop()
    sim = paper_trade(CONFIG, program, venue="sim", start=START, end=END)
    assert local.orders == sim.orders > 0
    assert list(local.equity.items()) == list(sim.equity.items())
    assert local.reconciliations[0] == "start-up: ok"
    assert not local.halted


def test_an_unexplained_position_at_start_up_halts_the_node(tmp_path: Path) -> None:
    server = start_venue(date(2010, 1, 4))
    try:
        _buy_by_hand(server.url, "by-hand-1")
        server.engine.advance()
        result = paper_trade(CONFIG, numpy_program(), venue="local", venue_url=server.url,
                             start="2010-01-05", end=END, state_dir=tmp_path)  # fmt: skip
    finally:
        server.stop()
    assert result.halted
    assert result.orders == 0
    assert "position_mismatches=[('IBM'" in result.reconciliations[0]
    assert all("trading halted by reconciliation" in why for _, why in result.skipped)


def test_an_order_placed_by_hand_mid_run_halts_at_the_next_reconciliation(tmp_path: Path) -> None:
    server = start_venue(date(2010, 1, 4))
    acks: list[str] = []

    def outsider(point: str, cid: str) -> None:
        if point == "after_ack":
            acks.append(cid)
            if len(acks) == 4:  # bar 2: someone trades the account by hand
                _buy_by_hand(server.url, "by-hand-2")

    try:
        result = paper_trade(CONFIG, numpy_program(), venue="local", venue_url=server.url,
                             start=START, end=END, state_dir=tmp_path, hook=outsider)  # fmt: skip
    finally:
        server.stop()
    assert result.halted
    halting = [r for r in result.reconciliations if "by-hand-2" in r or "IBM" in r]
    assert halting
    assert halting[0].startswith("2010-01-07")  # the 4th bar: reconcile_every = 3
    decided = {d.bar_time.date().isoformat() for d in result.node.decisions}  # type: ignore[union-attr]
    assert decided == {"2010-01-04", "2010-01-05", "2010-01-06"}


def test_alpaca_needs_both_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(SECRET_ENV, "x")
    with pytest.raises(ConfigError, match=r"\$APCA_API_KEY_ID and \$APCA_API_SECRET_KEY"):
        paper_trade(None, numpy_program(), venue="alpaca")
    with pytest.raises(ConfigError, match="venue_url is for the local venue"):
        paper_trade(None, numpy_program(), venue="sim", venue_url="http://127.0.0.1:1")
    kwargs: dict[str, Any] = {"start": "2010-02-01", "end": "2010-01-01"}
    with pytest.raises(ConfigError, match="end = 2010-01-01 is before start = 2010-02-01"):
        paper_trade(None, numpy_program(), venue="sim", **kwargs)


def test_a_local_venue_run_stopped_and_started_again_carries_on(tmp_path: Path) -> None:
    program = numpy_program()
    whole = paper_trade(CONFIG, program, venue="local", start=START, end=END)
    first = paper_trade(CONFIG, program, venue="local", start=START, end="2010-01-07",
                        state_dir=tmp_path)  # fmt: skip
    assert (tmp_path / "venue").is_dir()  # the in-process venue kept its journal
    again = paper_trade(CONFIG, program, venue="local", start=START, end=END,
                        state_dir=tmp_path)  # fmt: skip
    assert first.orders < again.orders == whole.orders
    assert list(again.equity.items()) == list(whole.equity.items())
    assert again.restore_mismatches == 0
