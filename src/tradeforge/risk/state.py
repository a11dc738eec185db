"""The trading state machine ACTIVE -> REDUCING -> HALTED, the kill latch, and their durable
store (SQLite, WAL, ``synchronous=FULL``) that shares one file and one transaction with the
audit log.

* ``ACTIVE``: every order the checks approve passes.
* ``REDUCING``: only risk-reducing orders pass (they shrink a position toward zero).
* ``HALTED``: no new order passes; cancels always do.

Automatic moves only escalate (ACTIVE -> REDUCING -> HALTED). The kill switch latches HALTED
with ``killed`` set. Only :func:`resume`, with a reason, moves back down (to ACTIVE or
REDUCING) and clears the latch. Each move is one row update in ``risk_state`` and one audit
entry (``risk.state``, ``risk.kill`` or ``risk.resume``) committed together; a move is computed
from the row as read inside the write transaction, so two processes (the trading node and
``tradeforge kill``) never lose each other's moves.

The state directory holds ``state.db`` (state, control memory, audit log), the flag file
``KILL`` (its presence kills; ``tradeforge resume`` removes it) and ``audit.anchor``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from tradeforge.audit import AuditError, AuditLog, format_ts
from tradeforge.core.clock import Clock
from tradeforge.core.errors import RiskError

STATE_DB_NAME = "state.db"
KILL_FLAG_NAME = "KILL"
ANCHOR_NAME = "audit.anchor"

Action = Literal["escalate", "kill", "resume"]


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
_KIND: dict[Action, str] = {"escalate": "risk.state", "kill": "risk.kill", "resume": "risk.resume"}


@dataclass(frozen=True)
class StatePaths:
    """The files of a state directory."""

    root: Path

    @property
    def db(self) -> Path:
        return self.root / STATE_DB_NAME

    @property
    def kill_flag(self) -> Path:
        return self.root / KILL_FLAG_NAME

    @property
    def anchor(self) -> Path:
        return self.root / ANCHOR_NAME


@dataclass(frozen=True)
class StateRecord:
    """The trading state as stored: ``version`` counts the moves (0 = never moved)."""

    state: TradingState = TradingState.ACTIVE
    reason: str = "initial"
    source: str = "init"
    changed_at: str = ""
    killed: bool = False
    kill_reason: str = ""
    version: int = 0


def next_record(
    record: StateRecord,
    action: Action,
    to: TradingState,
    *,
    reason: str,
    source: str,
    now: datetime,
) -> StateRecord | None:
    """The record after ``action`` (None when it changes nothing).

    * ``escalate``: only to a higher state (a lower or equal one changes nothing);
    * ``kill``: HALTED and latched (a second kill changes nothing);
    * ``resume``: to ACTIVE or REDUCING, latch cleared; needs a non-empty reason.
    """
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise RiskError(f"{action}: reason = {reason!r}; expected a non-empty reason")
    stamp = format_ts(now)
    if action == "escalate":
        if to.rank <= record.state.rank:
            return None
        return replace(record, state=to, reason=reason, source=source, changed_at=stamp,
                       version=record.version + 1)  # fmt: skip
    if action == "kill":
        if record.killed:
            return None
        return replace(record, state=TradingState.HALTED, reason=reason, source=source,
                       changed_at=stamp, killed=True, kill_reason=reason,
                       version=record.version + 1)  # fmt: skip
    if to is TradingState.HALTED:
        raise RiskError("resume: to = 'halted'; expected 'active' or 'reducing'")
    if not record.killed and record.state is to:
        return None
    return replace(record, state=to, reason=reason, source=source, changed_at=stamp,
                   killed=False, kill_reason="", version=record.version + 1)  # fmt: skip


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS risk_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        state TEXT NOT NULL,
        reason TEXT NOT NULL,
        source TEXT NOT NULL,
        changed_at TEXT NOT NULL,
        killed INTEGER NOT NULL,
        kill_reason TEXT NOT NULL,
        version INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS risk_memory (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        body TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
)
_COLUMNS = "state, reason, source, changed_at, killed, kill_reason, version"


class RiskStateStore:
    """The durable trading state, control memory and audit log in one SQLite file.

    ``create=False`` opens an existing store only. ``clock`` stamps moves and audit entries.
    """

    def __init__(self, path: str | Path, *, clock: Clock | None = None, create: bool = True):
        self.log = AuditLog(path, clock=clock, create=create)
        self.clock = self.log.clock
        if not create:
            found = self.log.connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'risk_state'"
            ).fetchone()[0]
            if found != 1:
                self.log.close()
                raise RiskError(f"state store {str(path)!r} has no risk_state table; expected a "
                                "store a risk engine or the kill switch created")  # fmt: skip
            return
        try:
            with self.log.transaction() as cur:
                for statement in _SCHEMA:
                    cur.execute(statement)
                cur.execute("SELECT count(*) FROM risk_state")
                if cur.fetchone()[0] == 0:
                    cur.execute(
                        f"INSERT INTO risk_state (id, {_COLUMNS}) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                        _row(StateRecord(changed_at=format_ts(self.clock.now()))),
                    )
                    self.log.record(cur, "risk.state_created", {"state": "active"})
        except AuditError:
            self.log.close()
            raise

    @classmethod
    def in_dir(
        cls, state_dir: str | Path, *, clock: Clock | None = None, create: bool = True
    ) -> RiskStateStore:
        return cls(StatePaths(Path(state_dir)).db, clock=clock, create=create)

    @property
    def path(self) -> Path:
        return self.log.path

    def close(self) -> None:
        self.log.close()

    def load(self) -> StateRecord:
        row = self.log.connection.execute(f"SELECT {_COLUMNS} FROM risk_state WHERE id = 1")
        return _record(row.fetchone())

    def move(
        self,
        action: Action,
        to: TradingState,
        *,
        reason: str,
        source: str,
        details: Mapping[str, Any] | None = None,
        correlation_id: str = "",
    ) -> tuple[StateRecord, bool]:
        """Apply ``action`` to the stored record and audit it, in one transaction; returns the
        record and whether it changed (see :func:`next_record`)."""
        with self.log.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM risk_state WHERE id = 1")
            current = _record(cur.fetchone())
            new = next_record(current, action, to, reason=reason, source=source,
                              now=self.clock.now())  # fmt: skip
            if new is None:
                return current, False
            cur.execute(
                "UPDATE risk_state SET state = ?, reason = ?, source = ?, changed_at = ?, "
                "killed = ?, kill_reason = ?, version = ? WHERE id = 1",
                _row(new),
            )
            payload = {"from": current.state, "to": new.state, "reason": new.reason,
                       "source": source, "killed": new.killed, "version": new.version,
                       **(details or {})}  # fmt: skip
            self.log.record(cur, _KIND[action], payload, correlation_id)
        return new, True

    def load_memory(self) -> dict[str, Any] | None:
        row = self.log.connection.execute("SELECT body FROM risk_memory WHERE id = 1").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def save_memory(self, body: Mapping[str, Any]) -> None:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        with self.log.transaction() as cur:
            cur.execute(
                "INSERT INTO risk_memory (id, body, updated_at) VALUES (1, ?, ?) ON CONFLICT (id) "
                "DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                (text, format_ts(self.clock.now())),
            )


def _row(record: StateRecord) -> tuple[Any, ...]:
    return (record.state.value, record.reason, record.source, record.changed_at,
            int(record.killed), record.kill_reason, record.version)  # fmt: skip


def _record(row: Any) -> StateRecord:
    if row is None:
        raise RiskError("risk_state row is missing; expected the store to create it")
    state, reason, source, changed_at, killed, kill_reason, version = row
    return StateRecord(TradingState(state), str(reason), str(source), str(changed_at),
                       bool(killed), str(kill_reason), int(version))  # fmt: skip


__all__ = [
    "ANCHOR_NAME",
    "KILL_FLAG_NAME",
    "STATE_DB_NAME",
    "Action",
    "RiskStateStore",
    "StatePaths",
    "StateRecord",
    "TradingState",
    "next_record",
]
