"""The node journal: decisions committed once, denials and submission recorded, marks kept,
a journal of another node refused, durable settings (WAL, synchronous=FULL)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from exec_helpers import make_command

from tradeforge.execution.node_journal import NodeJournal, NodeStateError

T = datetime(2011, 8, 16, tzinfo=UTC)


def _journal(tmp_path: Path, **changes: object) -> NodeJournal:
    args: dict[str, object] = {
        "strategy_id": "s1", "symbols": ("AAPL", "IBM"), "fingerprint": "abc",
    }  # fmt: skip
    args.update(changes)
    return NodeJournal(tmp_path / "node.sqlite", **args)  # type: ignore[arg-type]


def test_a_decision_round_trips_with_nan_weights_and_commands(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    commands = [make_command("tf1-a", "AAPL", quantity="1.5"), make_command("tf1-b", "IBM")]
    journal.record_decision(T, [0.25, float("nan")], [0.1, 0.0, 0.9, 0.001], commands)
    journal.record_denial(T, "tf1-b", "restricted_symbol: IBM")
    journal.close()
    reopened = _journal(tmp_path)
    decision = reopened.decision(T)
    assert decision is not None
    assert decision.status == "decided"
    assert decision.weights[0] == 0.25
    assert math.isnan(decision.weights[1])
    assert decision.account == (0.1, 0.0, 0.9, 0.001)
    assert list(decision.commands) == commands
    assert decision.denied == {"tf1-b": "restricted_symbol: IBM"}
    reopened.mark_submitted(T)
    assert reopened.decisions()[0].status == "submitted"
    assert reopened.decision(T + timedelta(days=1)) is None


def test_a_bar_is_decided_once(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.record_decision(T, [0.5, 0.5], [0, 0, 1, 0], [])
    with pytest.raises(NodeStateError, match="already decided"):
        journal.record_decision(T, [0.1, 0.1], [0, 0, 1, 0], [])
    assert journal.decision(T).weights == (0.5, 0.5)  # type: ignore[union-attr]
    with pytest.raises(NodeStateError, match="never decided"):
        journal.mark_submitted(T + timedelta(days=1))
    with pytest.raises(NodeStateError, match="never decided"):
        journal.record_denial(T + timedelta(days=1), "x", "y")
    with pytest.raises(NodeStateError, match="naive"):
        journal.decision(datetime(2011, 8, 16))


def test_marks_are_replaced_not_duplicated(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.record_mark(T + timedelta(days=1), Decimal("1000.5"), Decimal("10"))
    journal.record_mark(T, Decimal("999"), Decimal("999"))
    journal.record_mark(T, Decimal("1001.25"), Decimal("3"))
    marks = journal.marks()
    assert [(m.bar_time, m.equity, m.cash) for m in marks] == [
        (T, Decimal("1001.25"), Decimal("3")),
        (T + timedelta(days=1), Decimal("1000.5"), Decimal("10")),
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [("strategy_id", "s2"), ("symbols", ("AAPL",)), ("fingerprint", "other")],
)
def test_a_journal_of_another_node_is_refused(tmp_path: Path, field: str, value: object) -> None:
    _journal(tmp_path).close()
    with pytest.raises(NodeStateError, match=f"{field} = .*this node has"):
        _journal(tmp_path, **{field: value})


def test_the_journal_is_durable(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    assert str(journal.pragma("journal_mode")).lower() == "wal"
    assert journal.pragma("synchronous") == 2  # FULL
