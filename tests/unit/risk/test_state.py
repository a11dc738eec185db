"""tradeforge.risk.state and the persisted engine: the move table, the SQLite store (each move
and its audit entry in one transaction), restarts that stay HALTED, a kill from another
process (``kill_state_dir``) picked up by a running engine, and the audit trail it leaves."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from risk_helpers import BUY, SELL, T0, FakeOMS, order, view

from tradeforge.audit import AuditError, AuditLog, read_anchor, verify_chain
from tradeforge.core.clock import LiveClock, TestClock
from tradeforge.core.errors import RiskError
from tradeforge.risk import (
    DenyReason,
    RiskConfig,
    RiskEngine,
    RiskStateStore,
    StatePaths,
    StateRecord,
    TradingState,
    kill_state_dir,
    read_state_dir,
    resume_state_dir,
)
from tradeforge.risk.state import next_record

A, R, H = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED


def move(record: StateRecord, action: str, to: TradingState) -> StateRecord | None:
    return next_record(record, action, to, reason="r", source="t", now=T0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("start", "action", "to", "expected"),
    [
        (A, "escalate", R, R), (A, "escalate", H, H), (R, "escalate", H, H),
        (R, "escalate", A, None), (H, "escalate", R, None), (H, "escalate", A, None),
        (A, "escalate", A, None), (A, "kill", H, H), (R, "kill", H, H),
        (R, "resume", A, A), (H, "resume", A, A), (H, "resume", R, R), (A, "resume", A, None),
    ],
)  # fmt: skip
def test_move_table(
    start: TradingState, action: str, to: TradingState, expected: TradingState | None
) -> None:
    new = move(StateRecord(state=start, version=4), action, to)
    assert (None if new is None else new.state) == expected
    if new is not None:
        assert new.version == 5
        assert new.killed == (action == "kill")


def test_kill_latch_only_resume_clears_it() -> None:
    killed = move(StateRecord(), "kill", H)
    assert killed is not None
    assert killed.killed
    assert move(killed, "kill", H) is None  # a second kill changes nothing
    assert move(killed, "escalate", H) is None
    resumed = move(killed, "resume", A)
    assert resumed is not None
    assert (resumed.state, resumed.killed, resumed.kill_reason) == (A, False, "")
    with pytest.raises(RiskError, match="expected 'active' or 'reducing'"):
        move(killed, "resume", H)
    with pytest.raises(RiskError, match="kill: reason = ''"):
        next_record(StateRecord(), "kill", H, reason="", source="t", now=T0)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def engines() -> Iterator[list[RiskEngine]]:
    opened: list[RiskEngine] = []
    yield opened
    for eng in opened:
        eng.close()


def test_store_moves_and_audits_in_one_transaction(state_dir: Path) -> None:
    store = RiskStateStore.in_dir(state_dir, clock=TestClock(T0))
    record, changed = store.move("escalate", R, reason="drawdown", source="breaker.drawdown")
    assert changed
    assert store.load() == record
    assert (record.state, record.version) == (R, 1)
    entry = store.log.entries(kind="risk.state")[-1]
    assert entry.data == {"from": "active", "to": "reducing", "reason": "drawdown",
                          "source": "breaker.drawdown", "killed": False, "version": 1}  # fmt: skip
    assert store.move("escalate", A, reason="x", source="t") == (record, False)
    head = store.log.head()
    # an audit write that fails rolls the state move back with it
    store.log.connection.execute("CREATE TRIGGER no_more BEFORE INSERT ON audit_log "
                                 "BEGIN SELECT RAISE(ABORT, 'disk full'); END")  # fmt: skip
    with pytest.raises(AuditError, match="disk full"):
        store.move("kill", H, reason="stop", source="t")
    assert store.load() == record
    assert store.log.head() == head
    store.close()
    conn = sqlite3.connect(state_dir / "state.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_killed_engine_stays_halted_across_restart_and_cancels_again(state_dir: Path,
                                                                      engines: list[RiskEngine]) -> None:  # fmt: skip
    clock = TestClock(T0)
    oms = FakeOMS(open_orders=2)
    eng = RiskEngine.open(state_dir, RiskConfig(), clock=clock, kill_target=oms)
    assert eng.validate(order(BUY, 1), view()) is None
    eng.kill("risk officer: model misbehaving")
    assert oms.cancels == ["risk officer: model misbehaving"]
    eng.close()
    oms2 = FakeOMS(open_orders=1)  # an order the dead process never got to cancel
    again = RiskEngine.open(state_dir, RiskConfig(), clock=clock, kill_target=oms2)
    engines.append(again)
    assert again.state is H
    assert again.record.killed
    assert oms2.cancels == ["risk officer: model misbehaving"]
    assert oms2.open_orders == 0
    denied = again.validate(order(SELL, 1), view(positions={"AAPL": (5, 100)}))
    assert denied is not None
    assert denied.reason is DenyReason.TRADING_HALTED
    again.resume("model rolled back")
    assert read_state_dir(state_dir) == (again.record, False)
    third = RiskEngine.open(state_dir, RiskConfig(), clock=clock)
    engines.append(third)
    assert third.state is A


def test_kill_from_another_process_reaches_a_running_engine(state_dir: Path,
                                                           engines: list[RiskEngine]) -> None:  # fmt: skip
    oms = FakeOMS(open_orders=5)
    eng = RiskEngine.open(state_dir, RiskConfig(), clock=LiveClock(), kill_target=oms)
    engines.append(eng)
    assert eng.poll() is None
    start = time.perf_counter()
    record = kill_state_dir(state_dir, "ops kill", operator="alice")
    assert (record.state, record.killed) == (H, True)
    assert StatePaths(state_dir).kill_flag.read_text() == "ops kill\n"
    report = eng.poll()  # the node polls at least once a second
    elapsed = time.perf_counter() - start
    assert report is not None
    assert (report.canceled, oms.cancels) == (5, ["ops kill"])
    assert elapsed < 1.0
    assert eng.state is H
    assert eng.validate(order(BUY, 1), view()) is not None
    resumed = resume_state_dir(state_dir, "all clear", operator="alice")
    assert resumed.state is A
    assert not StatePaths(state_dir).kill_flag.exists()
    assert eng.validate(order(BUY, 1), view()) is None  # the engine picks the resume up
    kinds = [e.kind for e in eng.store.log.entries()]  # type: ignore[union-attr]
    assert kinds[:2] == ["risk.state_created", "risk.engine_started"]
    assert [k for k in kinds if k in ("risk.kill", "risk.kill_actions", "risk.resume")] == [
        "risk.kill", "risk.kill_actions", "risk.resume",
    ]  # fmt: skip
    kill = eng.store.log.entries(kind="risk.kill")[0].data  # type: ignore[union-attr]
    assert (kill["reason"], kill["operator"], kill["source"]) == ("ops kill", "alice", "cli")
    anchor = read_anchor(StatePaths(state_dir).anchor)
    assert anchor is not None
    assert verify_chain(eng.store.log.connection, anchor).ok  # type: ignore[union-attr]


def test_resume_needs_a_reason_and_a_state_dir(state_dir: Path) -> None:
    kill_state_dir(state_dir, "stop")
    with pytest.raises(RiskError, match="resume: reason = ' '; expected a non-empty reason"):
        resume_state_dir(state_dir, " ")
    assert read_state_dir(state_dir)[0].killed  # nothing changed, flag still there
    assert StatePaths(state_dir).kill_flag.exists()
    with pytest.raises(RiskError, match=r"holds no state\.db"):
        resume_state_dir(state_dir.parent / "nowhere", "x")
    with pytest.raises(RiskError, match="kill: reason"):
        kill_state_dir(state_dir, "")


def test_checks_are_audited_with_the_client_order_id(state_dir: Path,
                                                    engines: list[RiskEngine]) -> None:  # fmt: skip
    eng = RiskEngine.open(state_dir, RiskConfig(max_order_quantity=5), clock=TestClock(T0))
    engines.append(eng)
    eng.validate(order(BUY, 1, cid="ok-1"), view())
    eng.validate(order(BUY, 9, cid="big-1"), view())
    log = eng.store.log  # type: ignore[union-attr]
    ok, big = log.entries(correlation_id="ok-1")[0], log.entries(correlation_id="big-1")[0]
    assert (ok.kind, ok.data["approved"], ok.data["order"]["quantity"]) == ("risk.check", True, "1")
    assert (big.data["approved"], big.data["reason"]) == (False, "order_quantity_exceeds_max")
    quiet = RiskEngine.open(state_dir, RiskConfig(), clock=TestClock(T0), audit_checks=False)
    engines.append(quiet)
    head = quiet.store.log.head()  # type: ignore[union-attr]
    quiet.validate(order(BUY, 1), view())
    assert quiet.store.log.head() == head  # type: ignore[union-attr]


def test_check_entries_as_group_commits(state_dir: Path, engines: list[RiskEngine]) -> None:
    eng = RiskEngine.open(state_dir, RiskConfig(), clock=TestClock(T0), check_batch=3)
    log = eng.store.log  # type: ignore[union-attr]
    head = log.head()[0]
    eng.validate(order(BUY, 1, cid="g-1"), view())
    eng.validate(order(BUY, 2, cid="g-2"), view())
    assert log.head()[0] == head  # waiting for the batch
    eng.validate(order(BUY, 3, cid="g-3"), view())
    assert log.head()[0] == head + 3
    eng.validate(order(BUY, 4, cid="g-4"), view())
    assert eng.poll() is None  # the node's poll writes what waits
    assert [e.correlation_id for e in log.entries(kind="risk.check")] == [
        "g-1", "g-2", "g-3", "g-4",
    ]  # fmt: skip
    assert log.entries(correlation_id="g-1")[0].data["checked_at"] == "2024-01-02T14:30:00+00:00"
    eng.validate(order(BUY, 5, cid="g-5"), view())
    eng.close()
    with AuditLog(StatePaths(state_dir).db, create=False) as again:
        assert [e.correlation_id for e in again.entries(kind="risk.check", last=1)] == ["g-5"]
    with pytest.raises(RiskError, match="check_batch = 0; expected an int >= 1"):
        RiskEngine(RiskConfig(), check_batch=0)


def test_control_memory_survives_a_restart(state_dir: Path, engines: list[RiskEngine]) -> None:
    clock = TestClock(T0)
    cfg = RiskConfig(max_drawdown=0.1, trailing_stop=0.2)
    eng = RiskEngine.open(state_dir, cfg, clock=clock)
    eng.update(view(cash=0, positions={"AAPL": (100, 100)}, prices={"AAPL": 150}))
    eng.close()
    clock.advance(timedelta(minutes=5))
    again = RiskEngine.open(state_dir, cfg, clock=clock)
    engines.append(again)
    assert again.memory.peak_equity == 15_000
    assert again.memory.trail["AAPL"] == (1, 150)  # type: ignore[index]
    report = again.update(view(cash=0, positions={"AAPL": (100, 100)}, prices={"AAPL": 134}))
    assert again.state is H  # 13,400 < 15,000 x 0.9 against the peak from before the restart
    assert report.exits == ()  # the trailing stop sits at 150 x 0.8 = 120
    exits = again.update(view(cash=0, positions={"AAPL": (100, 100)}, prices={"AAPL": 120})).exits
    assert [(e.quantity, e.reason.value) for e in exits] == [(100, "trailing_stop")]
    log = AuditLog(StatePaths(state_dir).db, create=False)
    assert verify_chain(log.connection).ok
    log.close()
