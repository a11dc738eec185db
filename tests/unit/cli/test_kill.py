"""``tradeforge kill``, ``tradeforge resume`` and ``tradeforge risk status`` through the real
entry point (the commands registered on a fresh app): the latch, the flag file, the audit
trail, a running engine picking the kill up, and one-line errors for a missing reason."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer

from tradeforge.audit import AuditLog
from tradeforge.cli import risk_cmd
from tradeforge.core.clock import LiveClock
from tradeforge.risk import ExitIntent, RiskConfig, RiskEngine, StatePaths, TradingState
from tradeforge.testing.cli import run_cli as run


class FakeOMS:
    def __init__(self, open_orders: int) -> None:
        self.open_orders = open_orders
        self.cancels: list[str] = []

    def cancel_all_orders(self, reason: str) -> int:
        self.cancels.append(reason)
        n, self.open_orders = self.open_orders, 0
        return n

    def flatten(self, exits: Sequence[ExitIntent], reason: str) -> None:  # pragma: no cover
        raise AssertionError("flatten_on_kill is off")


def status(capsys: pytest.CaptureFixture[str], state: Path) -> dict[str, object]:
    code, out, _ = run(capsys, "risk", "status", "--state", str(state), "--json")
    assert code == 0
    return dict(json.loads(out))


def test_kill_latches_halted_with_flag_audit_and_anchor(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "node"
    code, out, err = run(capsys, "kill", "--state", str(state), "--reason", "runaway orders")
    assert (code, err) == (0, "")
    assert "HALTED" in out
    assert "runaway orders" in out
    paths = StatePaths(state)
    assert paths.kill_flag.read_text() == "runaway orders\n"
    got = status(capsys, state)
    assert (got["state"], got["killed"], got["kill_flag"]) == ("halted", True, True)
    assert got["kill_reason"] == "runaway orders"
    anchor = json.loads(paths.anchor.read_text())
    assert anchor["seq"] == got["audit_head_seq"]
    with AuditLog(paths.db, create=False) as log:
        kill = log.entries(kind="risk.kill")
    assert len(kill) == 1
    assert kill[0].data["reason"] == "runaway orders"
    assert kill[0].data["source"] == "cli"
    # a second kill changes nothing and writes no second state entry
    assert run(capsys, "kill", "--state", str(state), "--reason", "again")[0] == 0
    with AuditLog(paths.db, create=False) as log:
        assert len(log.entries(kind="risk.kill")) == 1


def test_resume_needs_a_reason_and_clears_the_latch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "node"
    run(capsys, "kill", "--state", str(state), "--reason", "stop")
    code, _, err = run(capsys, "resume", "--state", str(state))
    assert code == 2
    assert "Missing option '--reason'" in err
    code, _, err = run(capsys, "resume", "--state", str(state), "--reason", "  ")
    assert code == 2
    assert err.count("\n") == 1
    assert "resume: reason = '  '; expected a non-empty reason" in err
    assert status(capsys, state)["killed"] is True
    code, out, _ = run(capsys, "resume", "--state", str(state), "--reason", "fixed", "--to",
                       "reducing", "--json")  # fmt: skip
    assert code == 0
    assert json.loads(out)["state"] == "reducing"
    got = status(capsys, state)
    assert (got["state"], got["killed"], got["kill_flag"]) == ("reducing", False, False)
    with AuditLog(StatePaths(state).db, create=False) as log:
        resumed = log.entries(kind="risk.resume")[0].data
    assert (resumed["reason"], resumed["to"], resumed["from"]) == ("fixed", "reducing", "halted")


def test_kill_without_reason_or_on_a_missing_dir_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "kill", "--state", str(tmp_path))
    assert code == 2
    assert "--reason" in err
    code, _, err = run(capsys, "kill", "--state", str(tmp_path), "--reason", "")
    assert code == 2
    assert "kill: reason = ''" in err
    assert not (tmp_path / "state.db").exists()
    code, _, err = run(capsys, "resume", "--state", str(tmp_path / "none"), "--reason", "x")
    assert code == 2
    assert "holds no state.db" in err
    code, _, err = run(capsys, "risk", "status", "--state", str(tmp_path / "none"))
    assert code == 2


def test_a_running_engine_cancels_on_the_cli_kill_and_a_restart_stays_halted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "node"
    oms = FakeOMS(open_orders=3)
    engine = RiskEngine.open(state, RiskConfig(), clock=LiveClock(), kill_target=oms)
    assert engine.poll() is None
    assert run(capsys, "kill", "--state", str(state), "--reason", "desk kill")[0] == 0
    report = engine.poll()
    assert report is not None
    assert (report.canceled, oms.cancels) == (3, ["desk kill"])
    assert engine.state is TradingState.HALTED
    engine.close()
    restarted = RiskEngine.open(state, RiskConfig(), clock=LiveClock(), kill_target=FakeOMS(0))
    assert restarted.state is TradingState.HALTED
    restarted.close()
    assert run(capsys, "resume", "--state", str(state), "--reason", "ok")[0] == 0
    again = RiskEngine.open(state, RiskConfig(), clock=LiveClock())
    assert again.state is TradingState.ACTIVE
    again.close()


def test_commands_register_on_the_app() -> None:
    app = typer.Typer()
    risk_cmd.register(app)
    names = {c.name for c in app.registered_commands}
    assert names == {"kill", "resume"}
    assert [g.name for g in app.registered_groups] == ["risk"]
    assert "tradeforge.cli.risk_cmd" in sys.modules
