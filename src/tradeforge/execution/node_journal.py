"""The trading node's journal: what it decided at each bar and what each bar was worth.

It makes every (strategy, bar) run at most once, also across a crash and a restart. At a bar
the node first commits the decision (the target weights, the account state the policy saw and
the exact ``SubmitOrder`` commands sized from them) in one transaction, then sends the commands
through the order manager (which writes each intent ahead itself), then marks the bar
``submitted``. A node restarted anywhere in between finds the decision and sends the SAME
commands again: the order manager returns the orders it already has and the venue refuses a
client order id twice, so no order is ever duplicated and none is lost. A bar already
``submitted`` is never decided again.

Tables (SQLite, WAL, ``synchronous=FULL``, like the OMS store; Decimals and floats as exact
TEXT/JSON):

* ``node_meta``: the strategy, the symbols and the program fingerprint the journal belongs to
  (a journal written for another strategy, symbol list or program is refused);
* ``node_bars``: one row per decided bar: status, weights, account vector, commands, denials;
* ``node_marks``: equity and cash at each bar close, after that bar's fills;
* ``node_explanations``: optional, per decided bar, why the policy decided it (the top
  Integrated Gradients attributions, JSON; written in the decision's transaction when the node
  explains decisions, see :class:`~tradeforge.execution.node_policy.DecisionExplainer`);
* ``node_parents``: every order the node decided, as a parent (:class:`ParentSchedule`): its
  arrival price and time, its children (one for an order sent whole; several when an
  execution algorithm slices it) and how many of them were handed to the order manager. A
  bar's decision and the parents it creates, advances or ends are committed in ONE
  transaction, so a restarted node continues every schedule where it stood: the children a
  decided bar holds are resent with the same ids (never twice at the venue), the next bar
  sends the next child (never a child skipped).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, cast

from tradeforge.core.types import FloatArray
from tradeforge.domain import ClientOrderId, OrderSide, SubmitOrder, Symbol
from tradeforge.execution.errors import ExecutionError
from tradeforge.execution.store import SqliteDialect

BarStatus = Literal["decided", "submitted"]
ParentStatus = Literal["active", "done", "replaced", "canceled"]
JOURNAL_VERSION = "1"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS node_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS node_bars (
        bar_time TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        weights TEXT NOT NULL,
        account TEXT NOT NULL,
        commands TEXT NOT NULL,
        denied TEXT NOT NULL,
        recorded_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS node_marks (
        bar_time TEXT PRIMARY KEY,
        equity TEXT NOT NULL,
        cash TEXT NOT NULL,
        recorded_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS node_parents (
        parent_id TEXT PRIMARY KEY,
        arrival_time TEXT NOT NULL,
        symbol TEXT NOT NULL,
        status TEXT NOT NULL,
        body TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS node_parents_status ON node_parents (status)",
    """CREATE TABLE IF NOT EXISTS node_explanations (
        bar_time TEXT PRIMARY KEY,
        body TEXT NOT NULL)""",
)


class NodeStateError(ExecutionError):
    """The node's journal cannot be opened, belongs to another strategy, or was misused."""


@dataclass(frozen=True)
class BarDecision:
    """One decided bar: weights (NaN = hold), the account vector the policy saw, the commands
    sized from them and the commands the risk hook denied (client order id -> reason)."""

    bar_time: datetime
    status: BarStatus
    weights: tuple[float, ...]
    account: tuple[float, ...]
    commands: tuple[SubmitOrder, ...]
    denied: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BarMark:
    """Equity and cash at a bar's close."""

    bar_time: datetime
    equity: Decimal
    cash: Decimal


@dataclass(frozen=True)
class ParentSchedule:
    """An order the node decided at ``arrival_time`` (the last close was ``arrival_price``, the
    policy's weight for the symbol ``weight``) and its children: ``children[k]`` is sent with
    id ``client_order_ids[k]`` at the ``k``-th trading bar from the arrival bar (a 0 child is
    skipped). ``sent`` children were handed over so far; ``status`` is ``active`` while some
    are left, then ``done``, or ``replaced`` (a later decision changed the symbol's target)
    or ``canceled`` (a risk exit took the symbol) at ``ended_at``. ``algo`` is ``none`` for
    an order sent whole."""

    parent_id: str
    symbol: Symbol
    side: OrderSide
    quantity: Decimal
    arrival_price: Decimal
    arrival_time: datetime
    weight: float
    algo: str
    children: tuple[Decimal, ...]
    client_order_ids: tuple[ClientOrderId, ...]
    sent: int = 0
    status: ParentStatus = "active"
    ended_at: datetime | None = None

    @property
    def remaining(self) -> tuple[Decimal, ...]:
        """The children not handed over yet."""
        return self.children[self.sent :] if self.status == "active" else ()

    def to_json(self) -> str:
        return json.dumps({
            "parent_id": self.parent_id, "symbol": self.symbol, "side": self.side.value,
            "quantity": str(self.quantity), "arrival_price": str(self.arrival_price),
            "arrival_time": _ts(self.arrival_time), "weight": self.weight, "algo": self.algo,
            "children": [str(q) for q in self.children],
            "client_order_ids": list(self.client_order_ids), "sent": self.sent,
            "status": self.status,
            "ended_at": None if self.ended_at is None else _ts(self.ended_at),
        }, sort_keys=True)  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> ParentSchedule:
        d = json.loads(text)
        return cls(
            parent_id=d["parent_id"], symbol=Symbol(d["symbol"]), side=OrderSide(d["side"]),
            quantity=Decimal(d["quantity"]), arrival_price=Decimal(d["arrival_price"]),
            arrival_time=datetime.fromisoformat(d["arrival_time"]), weight=float(d["weight"]),
            algo=d["algo"], children=tuple(Decimal(q) for q in d["children"]),
            client_order_ids=tuple(ClientOrderId(c) for c in d["client_order_ids"]),
            sent=int(d["sent"]), status=d["status"],
            ended_at=None if d["ended_at"] is None else datetime.fromisoformat(d["ended_at"]),
        )  # fmt: skip


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        raise NodeStateError(f"bar_time = {value!r} is naive; expected a timezone-aware time")
    return value.astimezone(UTC).isoformat()


def _floats(values: Sequence[float] | FloatArray) -> str:
    return json.dumps([None if math.isnan(v) else float(v) for v in values])


def _unfloats(text: str) -> tuple[float, ...]:
    return tuple(float("nan") if v is None else float(v) for v in json.loads(text))


class NodeJournal:
    """The journal at ``path`` for ``strategy_id`` trading ``symbols`` (see the module docstring).

    ``fingerprint`` names the program (policy, features, sizing): a journal written by another
    program is refused, because its stored decisions would not be this program's.
    """

    def __init__(
        self, path: str | Path, strategy_id: str, symbols: Sequence[str], fingerprint: str
    ) -> None:
        self.path = Path(path)
        try:
            self._conn = cast(sqlite3.Connection, SqliteDialect(self.path).connect())
        except ExecutionError as exc:
            raise NodeStateError(f"node journal {self.path}: {exc}") from exc
        expected = {
            "version": JOURNAL_VERSION,
            "strategy_id": strategy_id,
            "symbols": json.dumps(list(symbols)),
            "fingerprint": fingerprint,
        }
        with self._write() as cur:
            for statement in _SCHEMA:
                cur.execute(statement)
            stored = dict(cur.execute("SELECT key, value FROM node_meta").fetchall())
            if not stored:
                cur.executemany("INSERT INTO node_meta VALUES (?, ?)", sorted(expected.items()))
        wrong = {k: (stored[k], v) for k, v in expected.items() if stored and stored.get(k) != v}
        if wrong:
            self._conn.close()
            detail = "; ".join(
                f"{k} = {old!r}, this node has {new!r}" for k, (old, new) in wrong.items()
            )
            raise NodeStateError(
                f"node journal {self.path} was written by another node ({detail}); expected the "
                "same strategy, symbols and program, or a new --state directory"
            )

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        cur = self._conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            yield cur
            self._conn.commit()
        except BaseException:
            self._conn.rollback()
            raise
        finally:
            cur.close()

    # -- decisions ----------------------------------------------------------------------------
    def record_decision(
        self,
        bar_time: datetime,
        weights: Sequence[float] | FloatArray,
        account: Sequence[float],
        commands: Sequence[SubmitOrder],
        parents: Sequence[ParentSchedule] = (),
        explanation: Mapping[str, Any] | None = None,
    ) -> BarDecision:
        """Commit a new decision (status ``decided``), the new state of the ``parents`` it
        creates or changes and its ``explanation`` (JSON-ready; non-finite numbers stored as
        null), in one transaction; a bar decided before raises."""
        body = json.dumps([json.loads(c.model_dump_json()) for c in commands])
        now = datetime.now(UTC).isoformat()
        try:
            with self._write() as cur:
                cur.execute(
                    "INSERT INTO node_bars VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (_ts(bar_time), "decided", _floats(weights), _floats(account), body, "{}", now),
                )
                cur.executemany(
                    "INSERT INTO node_parents VALUES (?, ?, ?, ?, ?) ON CONFLICT (parent_id) DO "
                    "UPDATE SET status = excluded.status, body = excluded.body",
                    [(p.parent_id, _ts(p.arrival_time), p.symbol, p.status, p.to_json())
                     for p in parents],
                )  # fmt: skip
                if explanation is not None:
                    cur.execute(
                        "INSERT INTO node_explanations VALUES (?, ?)",
                        (_ts(bar_time), json.dumps(_json_safe(explanation), allow_nan=False)),
                    )
        except sqlite3.IntegrityError:
            raise NodeStateError(
                f"bar {_ts(bar_time)} is already decided in {self.path}; a bar is decided once"
            ) from None
        return BarDecision(bar_time, "decided", tuple(float(w) for w in weights),
                           tuple(account), tuple(commands))  # fmt: skip

    def record_denial(self, bar_time: datetime, client_order_id: str, reason: str) -> None:
        with self._write() as cur:
            row = cur.execute(
                "SELECT denied FROM node_bars WHERE bar_time = ?", (_ts(bar_time),)
            ).fetchone()
            if row is None:
                raise NodeStateError(f"record_denial: bar {_ts(bar_time)} was never decided")
            denied = json.loads(row[0])
            denied[client_order_id] = reason
            cur.execute(
                "UPDATE node_bars SET denied = ? WHERE bar_time = ?",
                (json.dumps(denied, sort_keys=True), _ts(bar_time)),
            )

    def mark_submitted(self, bar_time: datetime) -> None:
        with self._write() as cur:
            cur.execute(
                "UPDATE node_bars SET status = 'submitted' WHERE bar_time = ?", (_ts(bar_time),)
            )
            if cur.rowcount != 1:
                raise NodeStateError(f"mark_submitted: bar {_ts(bar_time)} was never decided")

    def decision(self, bar_time: datetime) -> BarDecision | None:
        rows = self._conn.execute(
            "SELECT * FROM node_bars WHERE bar_time = ?", (_ts(bar_time),)
        ).fetchall()
        return _decision(rows[0]) if rows else None

    def decisions(self) -> list[BarDecision]:
        """Every decision, oldest first."""
        rows = self._conn.execute("SELECT * FROM node_bars ORDER BY bar_time").fetchall()
        return [_decision(r) for r in rows]

    def explanation(self, bar_time: datetime) -> dict[str, Any] | None:
        """The stored explanation of ``bar_time``'s decision (None when it has none)."""
        row = self._conn.execute(
            "SELECT body FROM node_explanations WHERE bar_time = ?", (_ts(bar_time),)
        ).fetchone()
        return dict(json.loads(row[0])) if row else None

    def last_explanation(self) -> tuple[datetime, dict[str, Any]] | None:
        """The newest decision's explanation with its bar time (None when none is stored)."""
        row = self._conn.execute(
            "SELECT bar_time, body FROM node_explanations ORDER BY bar_time DESC LIMIT 1"
        ).fetchone()
        return (datetime.fromisoformat(row[0]), dict(json.loads(row[1]))) if row else None

    # -- parents ------------------------------------------------------------------------------
    def parents(self, *, active_only: bool = False) -> list[ParentSchedule]:
        """Every parent (or only the active ones), by arrival time and symbol."""
        where = " WHERE status = 'active'" if active_only else ""
        rows = self._conn.execute(
            f"SELECT body FROM node_parents{where} ORDER BY arrival_time, symbol"
        ).fetchall()
        return [ParentSchedule.from_json(r[0]) for r in rows]

    # -- marks --------------------------------------------------------------------------------
    def record_mark(self, bar_time: datetime, equity: Decimal, cash: Decimal) -> None:
        """Store (or replace) the equity and cash at ``bar_time``'s close."""
        with self._write() as cur:
            cur.execute(
                "INSERT INTO node_marks VALUES (?, ?, ?, ?) ON CONFLICT (bar_time) DO UPDATE "
                "SET equity = excluded.equity, cash = excluded.cash, "
                "recorded_at = excluded.recorded_at",
                (_ts(bar_time), str(equity), str(cash), datetime.now(UTC).isoformat()),
            )

    def marks(self) -> list[BarMark]:
        rows = self._conn.execute(
            "SELECT bar_time, equity, cash FROM node_marks ORDER BY bar_time"
        ).fetchall()
        return [BarMark(datetime.fromisoformat(t), Decimal(e), Decimal(c)) for t, e, c in rows]

    def pragma(self, name: str) -> Any:
        return self._conn.execute(f"PRAGMA {name}").fetchone()[0]


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as None and numpy scalars as Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):  # numpy float64 too
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        return _json_safe(value.tolist())
    return value


def _decision(row: tuple[Any, ...]) -> BarDecision:
    bar_time, status, weights, account, commands, denied, _ = row
    return BarDecision(
        bar_time=datetime.fromisoformat(bar_time),
        status=status,
        weights=_unfloats(weights),
        account=_unfloats(account),
        commands=tuple(SubmitOrder.model_validate(c) for c in json.loads(commands)),
        denied=dict(json.loads(denied)),
    )


__all__ = [
    "BarDecision",
    "BarMark",
    "BarStatus",
    "NodeJournal",
    "NodeStateError",
    "ParentSchedule",
    "ParentStatus",
]
