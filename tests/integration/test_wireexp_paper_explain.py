"""Per-decision explanations in a paper replay (simulated venue, the tiny trained PPO artifact):
``node.explain_decisions`` journals one Integrated Gradients explanation per decision, complete
(attributions sum to f(x) - f(baseline)), without changing a single trade; the serve view reads
the newest."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from test_paper_support import no_thread_left, trained_artifact  # noqa: F401

from tradeforge.execution.node import NodeConfig
from tradeforge.experiment.paper import PaperConfig, paper_trade
from tradeforge.serve.view import StateReader


def _replay(artifact: Path, state: Path, explain: bool):
    node = NodeConfig(explain_decisions=explain, explain_top_k=1000)
    return paper_trade(PaperConfig(node=node), artifact, venue="sim", state_dir=state)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    artifact = trained_artifact("single", tmp_path_factory)
    root = tmp_path_factory.mktemp("wireexp_paper")
    on = _replay(artifact, root / "on", explain=True)
    off = _replay(artifact, root / "off", explain=False)
    return root, on, off


def _rows(db: Path, sql: str) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql))


def test_every_decision_has_a_complete_explanation(runs):
    root, _, _ = runs
    db = root / "on" / "node.sqlite"
    decided = [t for (t,) in _rows(db, "SELECT bar_time FROM node_bars ORDER BY bar_time")]
    explained = _rows(db, "SELECT bar_time, body FROM node_explanations ORDER BY bar_time")
    assert decided
    assert [t for t, _ in explained] == decided
    for _, body in explained:
        why = json.loads(body)
        assert "error" not in why
        assert why["method"] == "integrated_gradients"
        (out,) = why["outputs"]
        assert out["output"].endswith("action[SP500]")
        total = sum(e["attribution"] for e in out["top"])  # top_k covers every entry
        assert total == pytest.approx(out["value"] - out["baseline_value"], abs=1e-4)
        assert out["completeness_error"] < 1e-4
    off_db = root / "off" / "node.sqlite"
    assert _rows(off_db, "SELECT count(*) FROM node_explanations") == [(0,)]


def test_explaining_changes_no_trade(runs):
    _, on, off = runs
    assert len(on.equity) > 10
    pd.testing.assert_series_equal(on.equity, off.equity)
    assert (on.orders, on.fills) == (off.orders, off.fills)


def test_the_serve_view_shows_the_newest_explanation(runs):
    root, on, _ = runs
    state = root / "on"
    reader = StateReader(state, strategy_id=on.strategy_id, symbols=("SP500",), mode="paper",
                         venue="sim", risk=None)  # fmt: skip
    last = reader.last_explanation()
    (newest, body), = _rows(state / "node.sqlite",
                            "SELECT bar_time, body FROM node_explanations "
                            "ORDER BY bar_time DESC LIMIT 1")  # fmt: skip
    assert last is not None
    assert last["bar_time"].isoformat() == pd.Timestamp(newest).isoformat()
    assert last["outputs"] == json.loads(body)["outputs"]


def test_a_policy_without_a_torch_member_is_refused_by_name():
    from tradeforge.core.errors import ConfigError
    from tradeforge.experiment.paper import decision_explainer
    from tradeforge.testing.programs import numpy_program

    with pytest.raises(ConfigError, match=r"node\.explain_decisions = true .*swing"):
        decision_explainer(numpy_program("swing"), 5)


def test_explaining_is_off_by_default():
    assert NodeConfig().explain_decisions is False
    assert NodeConfig().explain_top_k == 5
