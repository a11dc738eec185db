"""The OMS store: every order intent, order event, fill and the resulting positions, durably.

The order manager writes here BEFORE it acts: the intent (``OrderSubmitted``) is committed before
the order is sent, and each broker event is committed, together with the order's new state and,
for a fill, the new position and cash, in ONE transaction, before anything else looks at it.
A process killed at any instant therefore leaves either the state before or the state after a
change, never half of it; :meth:`OrderStore.load_orders` and :meth:`OrderStore.load_portfolio`
give it back after a restart.

Tables (every Decimal is stored as TEXT, exactly; every time as ISO 8601 UTC TEXT):

* ``orders``: one row per order, its current state (``body``: the ``Order`` as JSON) plus the
  columns queries filter on (``status``, ``is_open``, ``strategy_id``, ``symbol``...);
* ``order_events``: every event of every order, numbered ``seq`` = 1, 2, ... per order and
  ``id`` = 1, 2, ... across the store (the order in which events were recorded);
* ``fills``: one row per execution (unique per order and ``fill_id``: a replayed fill cannot be
  stored twice);
* ``positions``: the latest position per symbol; ``account``: the cash (the portfolio snapshot
  the fills lead to, kept in step with ``fills`` by the shared transaction);
* ``tf_meta``: the schema version.

The store speaks plain DB-API 2 through a small :class:`Dialect` (how to connect, how to start
a write transaction, the parameter placeholder, how to read a setting): ONE implementation of
the SQL serves SQLite (:class:`SqliteDialect`) and PostgreSQL
(:class:`tradeforge.execution.store_pg.PostgresDialect`). The SQL is written with ``?``
placeholders (rewritten to ``%s`` for PostgreSQL) and uses only types and statements both
accept: TEXT and INTEGER columns, ``INSERT ... ON CONFLICT (...) DO UPDATE`` (no ``INSERT OR
IGNORE``/``REPLACE``), and event ids numbered ``MAX(id) + 1`` inside the write transaction (no
``AUTOINCREMENT``/identity column), which is safe because a write transaction holds the store's
single-writer lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped advisory
lock), so two connections never interleave their writes.
SQLite runs in WAL mode with ``synchronous=FULL``: a committed transaction survives a power
loss, not only a process crash; PostgreSQL sessions run with ``synchronous_commit = on``.

:func:`open_store` picks the database from its argument: a ``postgresql://`` (or
``postgres://``) URL opens PostgreSQL, anything else is an SQLite file path.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from tradeforge.domain import (
    ClientOrderId,
    DomainError,
    Order,
    OrderEvent,
    OrderFilled,
    OrderSubmitted,
    Portfolio,
    Position,
    Symbol,
    event_from_json,
    event_to_json,
)
from tradeforge.execution.errors import OmsStoreError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1"

_SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS tf_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS orders (
        client_order_id TEXT PRIMARY KEY,
        strategy_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        quantity TEXT NOT NULL,
        status TEXT NOT NULL,
        is_open INTEGER NOT NULL,
        venue_order_id TEXT,
        filled_quantity TEXT NOT NULL,
        event_count INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        body TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS orders_is_open ON orders (is_open)",
    """CREATE TABLE IF NOT EXISTS order_events (
        id INTEGER NOT NULL UNIQUE,
        client_order_id TEXT NOT NULL REFERENCES orders (client_order_id),
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        ts TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (client_order_id, seq))""",
    """CREATE TABLE IF NOT EXISTS fills (
        client_order_id TEXT NOT NULL REFERENCES orders (client_order_id),
        fill_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        quantity TEXT NOT NULL,
        price TEXT NOT NULL,
        fee TEXT NOT NULL,
        ts TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (client_order_id, fill_id))""",
    """CREATE TABLE IF NOT EXISTS positions (
        symbol TEXT PRIMARY KEY,
        quantity TEXT NOT NULL,
        avg_price TEXT NOT NULL,
        realized_pnl TEXT NOT NULL,
        fees TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS account (
        id INTEGER PRIMARY KEY,
        cash TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
)


class Cursor(Protocol):
    """The part of a DB-API 2 cursor the store uses."""

    @property
    def rowcount(self) -> int: ...
    def execute(self, operation: str, parameters: Sequence[Any] = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def close(self) -> None: ...


class Connection(Protocol):
    """The part of a DB-API 2 connection the store uses."""

    def cursor(self) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class Dialect(Protocol):
    """What differs between databases: connecting (with its durability settings), the
    statements that open a write transaction (and take the store's single-writer lock), the
    parameter placeholder, the statement that reads a setting, and how the database is named
    in messages (no password)."""

    name: str
    placeholder: str

    @property
    def where(self) -> str: ...
    def connect(self) -> Connection: ...
    def begin(self, cursor: Cursor) -> None: ...
    def setting_sql(self, name: str) -> str: ...


class SqliteDialect:
    """SQLite in WAL mode with ``synchronous=FULL`` and foreign keys on.

    ``path`` is a file (created with its parent folders) or ``":memory:"`` (tests only: a
    memory database dies with its connection). Write transactions start with
    ``BEGIN IMMEDIATE``, so a second writer waits (``busy_timeout_ms``) instead of failing
    half-way.
    """

    name = "sqlite"
    placeholder = "?"

    def __init__(self, path: str | Path, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self.busy_timeout_ms = int(busy_timeout_ms)

    @property
    def where(self) -> str:
        return self.path

    def connect(self) -> Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise OmsStoreError(
                f"OMS store path = {self.path!r}: cannot open it as SQLite ({exc}); expected a "
                "writable SQLite file"
            ) from exc
        if self.path != ":memory:" and str(mode).lower() != "wal":
            raise OmsStoreError(
                f"OMS store path = {self.path!r}: journal_mode is {mode!r}; expected 'wal'"
            )
        return conn

    def begin(self, cursor: Cursor) -> None:
        cursor.execute("BEGIN IMMEDIATE")

    def setting_sql(self, name: str) -> str:
        return f"PRAGMA {name}"


_SETTING_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PG_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database (a ``postgresql://`` or ``postgres://``
    URL) rather than an SQLite file."""
    return isinstance(target, str) and target.lower().startswith(_PG_SCHEMES)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class OrderStore:
    """Durable orders, events, fills and positions (see the module docstring).

    Each write method is one transaction, committed before it returns; a failure rolls it back
    and raises :class:`~tradeforge.execution.errors.OmsStoreError`. Inside :meth:`batch`, the
    writes join the batch's one transaction instead, committed when the block ends. Not
    thread-safe: one order manager owns one store (other processes or connections may share
    the database: their writes are serialized).
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._batch: Cursor | None = None
        self._conn = dialect.connect()
        try:
            self._create_schema()
        except BaseException:
            self._conn.close()
            raise

    def _create_schema(self) -> None:
        with self._transaction() as cur:
            for statement in _SCHEMA:
                cur.execute(statement)
            cur.execute(self._sql("SELECT value FROM tf_meta WHERE key = ?"), ("schema_version",))
            row = cur.fetchone()
            if row is None:
                cur.execute(
                    self._sql("INSERT INTO tf_meta (key, value) VALUES (?, ?)"),
                    ("schema_version", SCHEMA_VERSION),
                )
            elif row[0] != SCHEMA_VERSION:
                raise OmsStoreError(
                    f"OMS store schema_version = {row[0]!r}; expected {SCHEMA_VERSION!r} "
                    "(a store written by another tradeforge version)"
                )

    @classmethod
    def open_sqlite(cls, path: str | Path) -> OrderStore:
        """A store on the SQLite file ``path`` (created if missing)."""
        return cls(SqliteDialect(path))

    @classmethod
    def open_postgres(cls, url: str, *, connect_timeout_s: float = 10.0) -> OrderStore:
        """A store in the PostgreSQL database ``url`` (``postgresql://user:pw@host:port/db``;
        the tables are created if missing). Needs ``psycopg`` (3)."""
        from tradeforge.execution.store_pg import PostgresDialect

        return cls(PostgresDialect(url, connect_timeout_s=connect_timeout_s))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> OrderStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _sql(self, text: str) -> str:
        return (
            text if self.dialect.placeholder == "?" else text.replace("?", self.dialect.placeholder)
        )

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        """One write transaction; inside :meth:`batch`, the batch's (committed by the batch)."""
        if self._batch is not None:
            try:
                yield self._batch
            except OmsStoreError:
                raise
            except Exception as exc:
                raise OmsStoreError(self._failed(exc)) from exc
            return
        cur: Cursor = self._conn.cursor()
        try:
            self.dialect.begin(cur)
            yield cur
            self._conn.commit()
        except OmsStoreError:
            self._rollback()
            raise
        except Exception as exc:
            self._rollback()
            raise OmsStoreError(self._failed(exc)) from exc
        finally:
            cur.close()

    def _failed(self, exc: Exception) -> str:
        return f"OMS store ({self.dialect.name}) write failed: {exc}"

    def _rollback(self) -> None:
        try:
            self._conn.rollback()
        except Exception as exc:  # a lost connection: the server drops the transaction itself
            logger.warning("OMS store (%s): rollback failed: %s", self.dialect.name, exc)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every write inside the block joins ONE transaction, committed when the block ends
        (a group commit: one fsync for a whole bar's orders). An exception in the block (a
        failed write included: it fails the whole batch) rolls all of it back and propagates.

        Write-ahead still holds only if the caller acts on none of these writes (sends no
        order) before the block has ended: record the intents of a bar in one batch, then
        send them. Batches do not nest.
        """
        if self._batch is not None:
            raise OmsStoreError("batch() inside batch(); expected one batch at a time")
        cur: Cursor = self._conn.cursor()
        try:
            try:
                self.dialect.begin(cur)
            except Exception as exc:
                self._rollback()
                raise OmsStoreError(self._failed(exc)) from exc
            self._batch = cur
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            finally:
                self._batch = None
            try:
                self._conn.commit()
            except Exception as exc:
                self._rollback()
                raise OmsStoreError(self._failed(exc)) from exc
        finally:
            cur.close()

    def _query(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        cur: Cursor = self._conn.cursor()
        try:
            cur.execute(self._sql(text), params)
            return cur.fetchall()
        finally:
            cur.close()

    # -- writes -----------------------------------------------------------------------------
    def init_account(self, cash: Decimal) -> Portfolio:
        """Record the starting cash once; later calls return the stored portfolio unchanged."""
        existing = self.load_portfolio()
        if existing is not None:
            return existing
        with self._transaction() as cur:
            cur.execute(
                self._sql("INSERT INTO account (id, cash, updated_at) VALUES (1, ?, ?)"),
                (str(cash), _now()),
            )
        return Portfolio(cash=cash)

    def record(self, order: Order, event: OrderEvent, portfolio: Portfolio | None = None) -> None:
        """Durably store ``event`` and the ``order`` it led to (and, for a fill, ``portfolio``,
        the portfolio after the fill) in one transaction.

        ``order.event_count`` numbers the event; the stored order must be the one just before
        (``event_count - 1``), else the write is refused (a lost or doubled write would show
        here). An ``OrderSubmitted`` creates the order row.
        """
        if order.client_order_id != event.client_order_id:
            raise OmsStoreError(
                f"record: event for {event.client_order_id!r} with order {order.client_order_id!r}"
                "; expected the same client_order_id"
            )
        is_fill = isinstance(event, OrderFilled)
        if is_fill and portfolio is None:
            raise OmsStoreError(
                f"record: fill {getattr(event, 'fill_id', '')!r} of {order.client_order_id} "
                "without the portfolio after it; expected portfolio="
            )
        recorded_at = _now()
        with self._transaction() as cur:
            self._write_order(cur, order, isinstance(event, OrderSubmitted))
            cur.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM order_events")
            event_id = int(cur.fetchone()[0])
            cur.execute(
                self._sql(
                    "INSERT INTO order_events (id, client_order_id, seq, kind, ts, recorded_at, "
                    "body) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                (event_id, order.client_order_id, order.event_count, event.kind,
                 event.ts.isoformat(), recorded_at, event_to_json(event)),
            )  # fmt: skip
            if isinstance(event, OrderFilled) and portfolio is not None:
                self._write_fill(cur, event, order.event_count)
                self._write_position(cur, portfolio.position(event.symbol), recorded_at)
                cur.execute(
                    self._sql("UPDATE account SET cash = ?, updated_at = ? WHERE id = 1"),
                    (str(portfolio.cash), recorded_at),
                )
                if cur.rowcount != 1:
                    raise OmsStoreError(
                        "record: the account row is missing; expected init_account() first"
                    )

    def _write_order(self, cur: Cursor, order: Order, create: bool) -> None:
        values = (
            order.strategy_id, order.symbol, order.side.value, str(order.quantity),
            order.status.value, int(order.is_open), order.venue_order_id,
            str(order.filled_quantity), order.event_count, order.created_at.isoformat(),
            order.updated_at.isoformat(), order.model_dump_json(),
        )  # fmt: skip
        if create:
            if order.event_count != 1:
                raise OmsStoreError(
                    f"record: OrderSubmitted for {order.client_order_id} with event_count = "
                    f"{order.event_count}; expected 1"
                )
            cur.execute(self._sql("SELECT 1 FROM orders WHERE client_order_id = ?"),
                        (order.client_order_id,))  # fmt: skip
            if cur.fetchone() is not None:
                raise OmsStoreError(
                    f"record: order {order.client_order_id!r} is already stored; expected a new "
                    "client_order_id for OrderSubmitted"
                )
            cur.execute(
                self._sql(
                    "INSERT INTO orders (strategy_id, symbol, side, quantity, status, is_open, "
                    "venue_order_id, filled_quantity, event_count, created_at, updated_at, body, "
                    "client_order_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (*values, order.client_order_id),
            )
            return
        cur.execute(
            self._sql(
                "UPDATE orders SET strategy_id = ?, symbol = ?, side = ?, quantity = ?, "
                "status = ?, is_open = ?, venue_order_id = ?, filled_quantity = ?, "
                "event_count = ?, created_at = ?, updated_at = ?, body = ? "
                "WHERE client_order_id = ? AND event_count = ?"
            ),
            (*values, order.client_order_id, order.event_count - 1),
        )
        if cur.rowcount != 1:
            raise OmsStoreError(
                f"record: order {order.client_order_id!r} with event_count "
                f"{order.event_count - 1} is not in the store; expected the stored order to be "
                "the state just before this event"
            )

    def _write_fill(self, cur: Cursor, fill: OrderFilled, seq: int) -> None:
        cur.execute(
            self._sql(
                "INSERT INTO fills (client_order_id, fill_id, symbol, side, quantity, price, fee, "
                "ts, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (fill.client_order_id, fill.fill_id, fill.symbol, fill.side.value, str(fill.quantity),
             str(fill.price), str(fill.fee), fill.ts.isoformat(), seq),
        )  # fmt: skip

    def _write_position(self, cur: Cursor, pos: Position, recorded_at: str) -> None:
        cur.execute(
            self._sql(
                "INSERT INTO positions (symbol, quantity, avg_price, realized_pnl, fees, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (symbol) DO UPDATE SET "
                "quantity = excluded.quantity, avg_price = excluded.avg_price, "
                "realized_pnl = excluded.realized_pnl, fees = excluded.fees, "
                "updated_at = excluded.updated_at"
            ),
            (pos.symbol, str(pos.quantity), str(pos.avg_price), str(pos.realized_pnl),
             str(pos.fees), recorded_at),
        )  # fmt: skip

    # -- reads ------------------------------------------------------------------------------
    def _order_from(self, body: str) -> Order:
        try:
            return Order.model_validate_json(body)
        except (ValidationError, DomainError) as exc:
            raise OmsStoreError(f"OMS store holds an unreadable order row: {exc}") from exc

    def get_order(self, client_order_id: ClientOrderId) -> Order | None:
        rows = self._query("SELECT body FROM orders WHERE client_order_id = ?", (client_order_id,))
        return self._order_from(rows[0][0]) if rows else None

    def load_orders(self, open_only: bool = False) -> list[Order]:
        """Every stored order (or only the open ones), oldest first."""
        where = " WHERE is_open = 1" if open_only else ""
        rows = self._query(f"SELECT body FROM orders{where} ORDER BY created_at, client_order_id")
        return [self._order_from(r[0]) for r in rows]

    def recent_orders(self, limit: int, strategy_id: str | None = None) -> list[Order]:
        """The ``limit`` most recently updated orders (of ``strategy_id`` when given), newest
        first, plus every open one: what a dashboard shows without reading the whole history."""
        where, params = ("WHERE strategy_id = ?", (strategy_id,)) if strategy_id else ("", ())
        rows = self._query(
            f"SELECT body FROM orders {where} ORDER BY updated_at DESC, client_order_id "
            f"LIMIT {int(limit)}", params,
        )  # fmt: skip
        seen = [self._order_from(r[0]) for r in rows]
        ids = {o.client_order_id for o in seen}
        opened = [o for o in self.load_orders(open_only=True)
                  if o.client_order_id not in ids
                  and (strategy_id is None or o.strategy_id == strategy_id)]  # fmt: skip
        return seen + opened

    def recent_fills(self, limit: int) -> list[OrderFilled]:
        """The ``limit`` most recently recorded fills, oldest first."""
        rows = self._query(
            "SELECT e.body FROM fills f JOIN order_events e ON e.client_order_id = "
            f"f.client_order_id AND e.seq = f.seq ORDER BY e.id DESC LIMIT {int(limit)}"
        )
        out = [event_from_json(body) for (body,) in reversed(rows)]
        return [e for e in out if isinstance(e, OrderFilled)]

    def activity(self) -> tuple[int, int]:
        """(the last event id, the number of fills): changes whenever anything is recorded."""
        rows = self._query("SELECT COALESCE(MAX(id), 0), (SELECT COUNT(*) FROM fills) "
                           "FROM order_events")  # fmt: skip
        return int(rows[0][0]), int(rows[0][1])

    def events(self, client_order_id: ClientOrderId) -> list[OrderEvent]:
        """The events of one order, in the order they were applied."""
        rows = self._query(
            "SELECT body FROM order_events WHERE client_order_id = ? ORDER BY seq",
            (client_order_id,),
        )
        return [event_from_json(r[0]) for r in rows]

    def fills(self) -> list[OrderFilled]:
        """Every stored fill, in the order they were recorded."""
        rows = self._query(
            "SELECT e.body FROM fills f JOIN order_events e ON e.client_order_id = "
            "f.client_order_id AND e.seq = f.seq ORDER BY e.id"
        )
        out: list[OrderFilled] = []
        for (body,) in rows:
            event = event_from_json(body)
            if not isinstance(event, OrderFilled):  # pragma: no cover - schema invariant
                raise OmsStoreError(f"fills row points at a {event.kind} event; expected a fill")
            out.append(event)
        return out

    def load_portfolio(self) -> Portfolio | None:
        """The stored cash and positions (None before :meth:`init_account`)."""
        account = self._query("SELECT cash FROM account WHERE id = 1")
        if not account:
            return None
        rows = self._query(
            "SELECT symbol, quantity, avg_price, realized_pnl, fees FROM positions ORDER BY symbol"
        )
        positions = tuple(
            Position(symbol=Symbol(s), quantity=Decimal(q), avg_price=Decimal(a),
                     realized_pnl=Decimal(r), fees=Decimal(f))
            for s, q, a, r, f in rows
        )  # fmt: skip
        return Portfolio(cash=Decimal(account[0][0]), positions=positions)

    def pragma(self, name: str) -> Any:
        """An SQLite PRAGMA's value (for checks and tests; SQLite only)."""
        if self.dialect.name != "sqlite":
            raise OmsStoreError(f"pragma({name!r}) on a {self.dialect.name} store; SQLite only")
        return self.setting(name)

    def setting(self, name: str) -> Any:
        """A database setting as this connection sees it (SQLite: ``PRAGMA name``;
        PostgreSQL: ``SHOW name``), for checks and tests."""
        if not isinstance(name, str) or not _SETTING_RE.fullmatch(name):
            raise OmsStoreError(
                f"setting name = {name!r}; expected a lower-case identifier (letters, digits, _)"
            )
        return self._query(self.dialect.setting_sql(name))[0][0]


def open_store(target: str | Path) -> OrderStore:
    """The store ``target`` names: a ``postgresql://`` (or ``postgres://``) URL opens
    PostgreSQL (:meth:`OrderStore.open_postgres`), anything else is an SQLite file path
    (:meth:`OrderStore.open_sqlite`)."""
    if is_postgres_url(target):
        return OrderStore.open_postgres(str(target))
    return OrderStore.open_sqlite(target)


__all__ = [
    "Connection",
    "Cursor",
    "Dialect",
    "OrderStore",
    "SqliteDialect",
    "is_postgres_url",
    "open_store",
]
