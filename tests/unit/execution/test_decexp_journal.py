"""Per-decision explanations in the node journal: stored with the decision in one transaction,
read back by bar, the newest one found; an explainer that fails never costs the decision."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tradeforge.execution.node_journal import NodeJournal, NodeStateError
from tradeforge.execution.node_policy import explain_observation

T = datetime(2011, 8, 16, tzinfo=UTC)
WHY = {"method": "integrated_gradients", "ms": 1.5,
       "outputs": [{"output": "action[AAPL]", "value": 0.4, "baseline_value": 0.1,
                    "top": [{"entry": "rsi_14[AAPL]@t", "observed": 71.0,
                             "attribution": 0.2}]}]}  # fmt: skip


def _journal(path: Path) -> NodeJournal:
    return NodeJournal(path / "node.sqlite", "s1", ("AAPL",), "abc")


def test_an_explanation_is_stored_with_its_decision_and_read_back(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.record_decision(T, [0.4], [0.0, 1.0, 0.0], [], explanation=WHY)
    journal.record_decision(T + timedelta(days=1), [0.5], [0.4, 0.6, 0.0], [])
    journal.close()
    reopened = _journal(tmp_path)
    assert reopened.explanation(T) == WHY
    assert reopened.explanation(T + timedelta(days=1)) is None
    assert reopened.last_explanation() == (T, WHY)
    later = {"outputs": [], "ms": np.float64(0.5), "value": float("nan"), "v": np.array([1.0])}
    reopened.record_decision(T + timedelta(days=2), [0.5], [0.4, 0.6, 0.0], [], explanation=later)
    assert reopened.last_explanation() == (
        T + timedelta(days=2),
        {"outputs": [], "ms": 0.5, "value": None, "v": [1.0]},
    )


def test_a_refused_decision_stores_no_explanation(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.record_decision(T, [0.4], [0.0, 1.0, 0.0], [], explanation=WHY)
    with pytest.raises(NodeStateError, match="already decided"):
        journal.record_decision(T, [0.1], [0.0, 1.0, 0.0], [], explanation={"other": 1})
    assert journal.explanation(T) == WHY


def test_a_journal_written_before_explanations_gets_the_table(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.record_decision(T, [0.4], [0.0, 1.0, 0.0], [])
    journal.close()
    conn = sqlite3.connect(tmp_path / "node.sqlite")
    conn.execute("DROP TABLE node_explanations")  # as an older journal was written
    conn.commit()
    conn.close()
    reopened = _journal(tmp_path)
    assert reopened.last_explanation() is None
    reopened.record_decision(T + timedelta(days=1), [0.4], [0.0, 1.0, 0.0], [], explanation=WHY)
    assert reopened.explanation(T + timedelta(days=1)) == WHY
    assert reopened.decision(T) is not None


def test_explain_observation_times_the_explainer_and_never_raises() -> None:
    seen = []

    def explainer(observation):
        seen.append(observation)
        return {"outputs": [{"output": "x"}]}

    def broken(observation):
        raise ValueError("observation has 4 entries")

    out = explain_observation(explainer, [1.0, 2.0])
    assert out is not None
    assert out["outputs"] == [{"output": "x"}]
    assert out["ms"] >= 0.0
    assert seen == [[1.0, 2.0]]
    failed = explain_observation(broken, [1.0])
    assert failed is not None
    assert failed["error"] == "ValueError: observation has 4 entries"
    assert explain_observation(None, [1.0]) is None
