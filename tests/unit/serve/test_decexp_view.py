"""The dashboard's "why" of the last decision: ``StateReader.last_explanation`` reads it from the
node journal; the overview's last-decision tile lists its top entries."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from serve_ui_support import make_snapshot

from tradeforge.execution.node_journal import NodeJournal
from tradeforge.serve.ui import render
from tradeforge.serve.view import LiveFacts, StateReader

T = datetime(2024, 3, 1, 21, tzinfo=UTC)


def _why(attribution: float) -> dict[str, Any]:
    return {"method": "integrated_gradients", "n_steps": 16, "ms": 2.25,
            "outputs": [{"output": "action[AAPL]", "value": 0.4, "baseline_value": 0.1,
                         "completeness_error": 1e-9,
                         "top": [{"entry": "rsi_14[AAPL]@t", "observed": 71.0,
                                  "attribution": attribution},
                                 {"entry": "logret_5[AAPL]@t-1", "observed": -0.01,
                                  "attribution": -0.05}]}]}  # fmt: skip


def _reader(state: Path) -> StateReader:
    return StateReader(state, strategy_id="s1", symbols=("AAPL",), mode="paper", venue="local",
                       risk=None)  # fmt: skip


def test_the_reader_gives_the_newest_explained_decision(tmp_path: Path) -> None:
    reader = _reader(tmp_path)
    assert reader.last_explanation() is None  # no journal yet
    journal = NodeJournal(tmp_path / "node.sqlite", "s1", ("AAPL",), "abc")
    journal.record_decision(T, [0.4], [0.0, 1.0, 0.0], [], explanation=_why(0.2))
    journal.record_decision(T + timedelta(days=1), [0.3], [0.4, 0.6, 0.0], [],
                            explanation=_why(0.125))  # fmt: skip
    journal.record_decision(T + timedelta(days=2), [0.3], [0.4, 0.6, 0.0], [])
    last = reader.last_explanation()
    assert last == {"bar_time": T + timedelta(days=1), **_why(0.125)}
    snap = reader.snapshot(LiveFacts())  # the snapshot still builds from that journal
    assert snap.strategy_id == "s1"
    journal.close()


class _WithWhy:
    """A snapshot that carries ``last_explanation`` (the field the Snapshot is to get)."""

    def __init__(self, why: dict[str, Any] | None) -> None:
        self._snap, self.last_explanation = make_snapshot(), why

    def __getattr__(self, name: str) -> Any:
        return getattr(self._snap, name)


def test_the_last_decision_tile_lists_the_top_entries() -> None:
    html = render("fragments/tiles.html", s=_WithWhy(_why(0.125)))
    rows = re.search(r'data-testid="decision-why">(.*?)</table>', html, re.S)
    assert rows is not None
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", rows.group(1))
    assert cells == ["rsi_14[AAPL]@t", "+0.125", "logret_5[AAPL]@t-1", "-0.05"]
    assert "why: action[AAPL] (integrated gradients, 2.2 ms)" in html
    failed = render("fragments/tiles.html", s=_WithWhy({"error": "ValueError: bad", "ms": 0.1}))
    assert "why: not explained (ValueError: bad)" in failed
    # a snapshot without explanations renders the tile without the list
    plain = render("fragments/tiles.html", s=make_snapshot())
    assert "decision-why" not in plain
    assert 'data-testid="tile-decision"' in plain
