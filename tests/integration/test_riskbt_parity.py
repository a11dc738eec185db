"""Backtest with risk equals a paper replay with the same limits (issue 11, done-when "Backtest
with ``risk:`` limits and stops equals, bar for bar, a paper replay with the same limits").

A tiny PPO portfolio policy (AAPL/IBM/MSFT, softmax weights; ``trained_artifact``) is replayed
over 2011-08-16 .. 2011-09-13 by ``tradeforge backtest --policy ... --risk CONFIG`` and by
``tradeforge paper CONFIG --policy ... --venue local`` with the same ``risk:`` section: a 2 %
stop-loss, a 4 % trailing stop and a $255,000 order notional limit, which all bind in that
window (August 2011 fell hard); then the same with a 1 % drawdown breaker that moves the
state to REDUCING after two bars. Every bar's equity must agree to a relative 1e-9, and the
denials by reason and the stops hit by reason and symbol must be the same numbers (the paper
side's are read from its audit log: every check and every stop is an entry).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

pytest.importorskip("alpaca")

from parity_support import PERIOD, policy_at_home, replay_both
from test_paper_support import no_thread_left  # noqa: F401

from tradeforge.testing.cli import run_cli as run

STOPS = {"stop_loss": 0.02, "trailing_stop": 0.04, "max_order_notional": 255000}
BREAKER = {**STOPS, "max_drawdown": 0.01, "drawdown_action": "reducing"}


def _audit(capsys: pytest.CaptureFixture[str], state: Path, kind: str) -> list[dict[str, object]]:
    code, out, err = run(capsys, "audit", "show", "--state", str(state), "--kind", kind,
                         "--last", "100000", "--json")  # fmt: skip
    assert code == 0, err
    entries: list[dict[str, object]] = json.loads(out)
    return entries


@pytest.mark.parametrize("risk", [STOPS, BREAKER], ids=["stops", "breaker"])
def test_backtest_with_risk_equals_the_paper_replay_bar_for_bar(
    risk: dict[str, object],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    artifact = policy_at_home("portfolio", tmp_path_factory, monkeypatch)
    config = tmp_path / "paper.yaml"
    config.write_text(yaml.safe_dump({"risk": risk, "audit_checks": True}), encoding="utf-8")
    state = tmp_path / "state"
    bt, _, paper, _ = replay_both(capsys, artifact, tmp_path / "bt", config=config, risk=True,
                                  state=state)  # fmt: skip

    tally = bt["risk"]
    # the limits bind: something was denied and some stops fired
    assert tally["denied"].get("order_notional_exceeds_max", 0) > 0
    assert sum(tally["stops"].values()) > 0
    assert tally["approved"] + sum(tally["denied"].values()) == tally["orders"]
    if "max_drawdown" in risk:  # the breaker trips early: REDUCING denies the policy's buys
        assert tally["trips"] == {"drawdown": 1}
        assert tally["denied"].get("trading_reducing", 0) > 0
        assert tally["state_bars"]["reducing"] > tally["state_bars"]["active"] > 0
        assert tally["final_state"] == "reducing"
    else:
        assert tally["trips"] == {}
        assert tally["state_share"]["active"] == 1.0
    checks = [e["payload"] for e in _audit(capsys, state / "risk", "risk.check")]
    denied = Counter(str(p["reason"]) for p in checks if not p["approved"])  # type: ignore[index]
    assert dict(denied) == tally["denied"]
    assert len(checks) == tally["orders"]
    stops = [e["payload"] for e in _audit(capsys, state / "risk", "risk.stop")]
    by_reason = Counter(str(p["reason"]) for p in stops)  # type: ignore[index]
    assert dict(by_reason) == tally["stops"]
    by_symbol: dict[str, Counter[str]] = {}
    for p in stops:
        by_symbol.setdefault(str(p["symbol"]), Counter())[str(p["reason"])] += 1  # type: ignore[index]
    assert {s: dict(c) for s, c in by_symbol.items()} == tally["stops_by_symbol"]
    # the paper run's policy-order denials are the backtest's too (exits are never denied here)
    journal = Counter(reason.split(":")[0] for reason in paper["denied"].values())
    assert dict(journal) == tally["denied"]


def test_a_risk_section_without_controls_leaves_the_replay_unchanged(
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    artifact = policy_at_home("portfolio", tmp_path_factory, monkeypatch)
    config = tmp_path / "risk.yaml"
    config.write_text(yaml.safe_dump({"risk": {"max_turnover": 5.0}}), encoding="utf-8")
    start, end = PERIOD
    args = ["backtest", "--policy", str(artifact), "--start", start, "--end", end, "--json"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    plain = json.loads(out)
    code, out, err = run(capsys, *args, "--risk", str(config))
    assert code == 0, err
    limited = json.loads(out)
    assert limited["risk"] is None
    assert plain["risk"] is None
    assert limited["final_equity"] == plain["final_equity"]
    assert limited["metrics"] == plain["metrics"]
