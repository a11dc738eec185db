"""Crash safety of the trading node (issue 10, done-when "Crash safety").

A node process trades six bars of AAPL/IBM/MSFT on the local venue (alpaca-py against a
``VenueServer`` that lives in this test process and survives the node). ``TRADEFORGE_NODE_CRASH_AT``
makes the node SIGKILL itself the 4th time its order manager reaches each of five points:
before the intent is stored, after it is stored, after the POST, after the acknowledgement is
stored, after a fill is stored. A new node process on the same state directory then finishes
the run. In every case the venue created exactly the orders of an uninterrupted run, each
client order id (one per strategy, bar and symbol) once, and the equity at every bar equals the
uninterrupted run's.
"""

from __future__ import annotations

import signal
from datetime import date
from pathlib import Path

import pytest

pytest.importorskip("alpaca")

from test_paper_support import (
    created_orders,
    no_thread_left,  # noqa: F401  (autouse)
    node_process,
    start_venue,
    summary,
)

START, END = "2010-01-04", "2010-01-11"
POINTS = ("before_intent", "after_intent", "after_submit", "after_ack", "after_fill")


def test_a_node_killed_at_each_step_finishes_with_one_order_per_bar_and_symbol(
    tmp_path: Path,
) -> None:
    venues = {name: start_venue(date(2010, 1, 4)) for name in ("reference", *POINTS)}
    try:
        crashed = {
            name: node_process(venues[name].url, tmp_path / name, START, END,
                               None if name == "reference" else f"{name}:4")
            for name in venues
        }  # fmt: skip
        for name, process in crashed.items():
            process.join(120)
            expected = 0 if name == "reference" else -signal.SIGKILL
            assert process.exitcode == expected, f"{name}: exit code {process.exitcode}"
        for name in POINTS:
            assert not (tmp_path / name / "summary.json").exists()
        restarted = {name: node_process(venues[name].url, tmp_path / name, START, END)
                     for name in POINTS}  # fmt: skip
        for name, process in restarted.items():
            process.join(120)
            assert process.exitcode == 0, f"{name} restart: exit code {process.exitcode}"
        reference = summary(tmp_path / "reference")
        expected_orders = created_orders(venues["reference"])
        assert reference["orders"] == len(expected_orders) >= 15  # 3 symbols x 6 bars, most bars
        assert reference["fills"] >= reference["orders"]
        for name in POINTS:
            orders = created_orders(venues[name])
            assert len(orders) == len(set(orders)), f"{name}: an order was created twice"
            assert sorted(orders) == sorted(expected_orders), name
            result = summary(tmp_path / name)
            assert result["orders"] == reference["orders"]
            assert result["equity"] == reference["equity"], name
            assert result["final_equity"] == reference["final_equity"]
            assert result["restore_mismatches"] == 0
    finally:
        for server in venues.values():
            server.stop()
