"""The append-only, hash-chained audit log on SQLite (WAL, ``synchronous=FULL``) or PostgreSQL.

Each entry is one row of ``audit_log``::

    seq             1, 2, 3, ... with no gaps (the replay order)
    ts              UTC time, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
    kind            what happened (``risk.check``, ``risk.state``, ``order.submitted``...)
    correlation_id  links the entries of one decision -> risk check -> order -> fills chain
    payload         canonical JSON (:func:`canonical_json`: sorted keys, no spaces, ASCII)
    prev_hash       the ``hash`` of entry ``seq - 1`` (64 zeros for entry 1)
    hash            SHA-256 (hex) of the canonical bytes of the six fields above

The canonical bytes are the six fields joined by the ASCII unit separator ``0x1f`` and encoded
as UTF-8 (:func:`entry_hash`). No field can hold a raw ``0x1f``: kinds and correlation ids are
checked printable ASCII and the payload is JSON with every control character escaped; so the
bytes name one entry only. ``audit_head`` holds the last ``seq`` and ``hash``, moved in the
same transaction as each append, so a dropped tail shows as a head beyond the last entry
(:mod:`tradeforge.audit.verify`; an anchor file outside the database covers an attacker who
rewrites the head too). Triggers refuse ``UPDATE`` and ``DELETE`` on ``audit_log`` (PostgreSQL:
``TRUNCATE`` too).

The same chain, functions and methods serve both databases: :class:`AuditLog` is the SQLite
file, :class:`tradeforge.audit.pg.PgAuditLog` a PostgreSQL database (psycopg 3), both
:class:`AuditLogBase`; :func:`open_audit_log` picks one from a path or a ``postgresql://``
URL. :func:`append_entries` and :func:`ensure_schema` take either database's cursor and write
its dialect (:class:`SqlStyle`: ``?`` or ``%s`` placeholders; on PostgreSQL the head row is
locked ``FOR UPDATE``, so concurrent appenders queue instead of forking the chain).

Writing in the SAME transaction as the state change an entry records: :func:`append_entry`
takes the caller's cursor inside its open write transaction (the OMS's, the risk state
store's); :meth:`AuditLog.transaction` opens one on the log's own connection, where callers add
their own statements. Either all of it commits, or none.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from tradeforge.audit.errors import AuditError
from tradeforge.core.clock import Clock, LiveClock

GENESIS_HASH = "0" * 64
_SEP = "\x1f"
_KIND_RE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
_CORRELATION_RE = re.compile(r"^[\x20-\x7e]{0,128}$")


def _tables(seq_type: str) -> tuple[str, ...]:
    """The tables and the head row, the same on both databases but for the ``seq`` type
    (SQLite: ``INTEGER PRIMARY KEY``, the rowid; PostgreSQL: ``BIGINT``)."""
    return (
        f"""CREATE TABLE IF NOT EXISTS audit_log (
        seq {seq_type} PRIMARY KEY,
        ts TEXT NOT NULL,
        kind TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS audit_log_correlation ON audit_log (correlation_id)",
        f"""CREATE TABLE IF NOT EXISTS audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq {seq_type} NOT NULL,
        hash TEXT NOT NULL)""",
        f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}') "
        "ON CONFLICT (id) DO NOTHING",
    )


SCHEMA: tuple[str, ...] = (
    *_tables("INTEGER"),
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
)

# PostgreSQL: one trigger function raising ``integrity_constraint_violation`` (SQLSTATE 23000,
# as SQLite's RAISE(ABORT) is an IntegrityError), row triggers for UPDATE and DELETE and a
# statement trigger for TRUNCATE (which skips row triggers); created once, so reopening the log
# takes no table lock. The advisory lock serializes two processes creating the schema at once.
PG_SCHEMA: tuple[str, ...] = (
    "SELECT pg_advisory_xact_lock(7120113020514357331)",
    *_tables("BIGINT"),
    """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
        $fn$BEGIN
            RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation',
                MESSAGE = 'audit_log is append-only (' || TG_OP || ' refused)';
        END$fn$""",
    """DO $do$BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass
                       AND tgname = 'audit_log_no_update') THEN
            CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
                FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass
                       AND tgname = 'audit_log_no_delete') THEN
            CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
                FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass
                       AND tgname = 'audit_log_no_truncate') THEN
            CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
                FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
        END IF;
    END$do$""",
)


@dataclass(frozen=True)
class SqlStyle:
    """How a database spells the log's statements: the parameter placeholder, the clause that
    locks the head row for the rest of the transaction, and its schema."""

    name: str
    placeholder: str
    lock_row: str
    schema: tuple[str, ...]

    def sql(self, text: str) -> str:
        """``text``, written with ``?`` placeholders, in this database's placeholder."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


SQLITE = SqlStyle("sqlite", "?", "", SCHEMA)
POSTGRES = SqlStyle("postgresql", "%s", " FOR UPDATE", PG_SCHEMA)


def style_of(cur: Any) -> SqlStyle:
    """The :class:`SqlStyle` of a DB-API cursor, from its driver module's ``paramstyle``
    (``qmark``: SQLite; ``format``/``pyformat``: PostgreSQL through psycopg)."""
    module = sys.modules.get(type(cur).__module__.partition(".")[0])
    paramstyle = getattr(module, "paramstyle", "qmark")
    if paramstyle == "qmark":
        return SQLITE
    if paramstyle in ("format", "pyformat"):
        return POSTGRES
    raise AuditError(
        f"audit cursor {type(cur).__module__}.{type(cur).__name__} has paramstyle = "
        f"{paramstyle!r}; expected 'qmark' (sqlite3) or 'pyformat' (psycopg)"
    )


class Cursor(Protocol):
    """The part of a DB-API 2 cursor the log uses (a ``sqlite3.Cursor`` fits)."""

    def execute(self, operation: str, parameters: Sequence[Any] = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...


@dataclass(frozen=True)
class AuditEntry:
    """One stored entry (every field as stored; ``payload`` is canonical JSON text)."""

    seq: int
    ts: str
    kind: str
    correlation_id: str
    payload: str
    prev_hash: str
    hash: str

    @property
    def data(self) -> Any:
        """The payload parsed from JSON."""
        return json.loads(self.payload)

    @property
    def timestamp(self) -> datetime:
        return datetime.fromisoformat(self.ts)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def canonical_json(payload: Mapping[str, Any]) -> str:
    """``payload`` as canonical JSON: sorted keys, no whitespace, ASCII only (every control
    character escaped), no NaN or infinity. Decimals, times, enums, sets and paths become
    strings (sets: sorted lists)."""
    if not isinstance(payload, Mapping):
        raise AuditError(
            f"audit payload = {payload!r}; expected a mapping of JSON-serializable values"
        )
    try:
        return json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False,
            default=_json_default,
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise AuditError(f"audit payload {sorted(payload)}: {exc}; expected JSON values") from None


def format_ts(ts: datetime) -> str:
    """A timezone-aware time as the log stores it (UTC, microseconds, ``Z``)."""
    if not isinstance(ts, datetime) or ts.tzinfo is None:
        raise AuditError(f"audit ts = {ts!r}; expected a timezone-aware datetime")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    seq: int, ts: str, kind: str, correlation_id: str, payload: str, prev_hash: str
) -> str:
    """SHA-256 (hex) of an entry's canonical bytes (see the module docstring)."""
    text = _SEP.join((str(seq), ts, kind, correlation_id, payload, prev_hash))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_kind(kind: str, correlation_id: str) -> None:
    if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
        raise AuditError(
            f"audit kind = {kind!r}; expected 1 to 64 characters of a-z 0-9 _ . starting with "
            "a letter"
        )
    if not isinstance(correlation_id, str) or not _CORRELATION_RE.fullmatch(correlation_id):
        raise AuditError(
            f"audit correlation_id = {correlation_id!r}; expected at most 128 printable ASCII "
            "characters"
        )


def ensure_schema(cur: Cursor) -> None:
    """Create the audit tables and triggers if missing (inside the caller's transaction), in
    the dialect of ``cur``'s database."""
    for statement in style_of(cur).schema:
        cur.execute(statement)


def _in_transaction(cur: Cursor) -> bool:
    conn = getattr(cur, "connection", None)
    status = getattr(getattr(conn, "info", None), "transaction_status", None)
    if status is not None:  # psycopg: IDLE (0) in autocommit mode = no transaction open
        return int(status) != 0 or not getattr(conn, "autocommit", False)
    return bool(getattr(conn, "in_transaction", True))


def append_entries(
    cur: Cursor, items: Sequence[tuple[str, Mapping[str, Any], str]], ts: datetime
) -> list[AuditEntry]:
    """Append ``(kind, payload, correlation_id)`` items, in order, stamped ``ts``, inside the
    caller's open write transaction on ``cur`` (reads and moves ``audit_head`` there too)."""
    if not _in_transaction(cur):
        raise AuditError(
            "append_entries outside a transaction; expected a cursor inside an open write "
            "transaction (BEGIN IMMEDIATE), so the entry commits with the change it records"
        )
    style = style_of(cur)
    stamp = format_ts(ts)
    rows = []
    for kind, payload, correlation_id in items:
        _check_kind(kind, correlation_id)
        rows.append((kind, correlation_id, canonical_json(payload)))
    cur.execute(f"SELECT seq, hash FROM audit_head WHERE id = 1{style.lock_row}")
    head = cur.fetchone()
    if head is None:
        raise AuditError("audit_head row is missing; expected ensure_schema() first")
    seq, prev = int(head[0]), str(head[1])
    out: list[AuditEntry] = []
    for kind, correlation_id, text in rows:
        seq += 1
        digest = entry_hash(seq, stamp, kind, correlation_id, text, prev)
        cur.execute(
            style.sql(
                "INSERT INTO audit_log (seq, ts, kind, correlation_id, payload, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            (seq, stamp, kind, correlation_id, text, prev, digest),
        )
        out.append(AuditEntry(seq, stamp, kind, correlation_id, text, prev, digest))
        prev = digest
    if out:
        cur.execute(style.sql("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"), (seq, prev))
    return out


def append_entry(
    cur: Cursor,
    kind: str,
    payload: Mapping[str, Any],
    *,
    ts: datetime,
    correlation_id: str = "",
) -> AuditEntry:
    """Append one entry inside the caller's open write transaction on ``cur``."""
    return append_entries(cur, [(kind, payload, correlation_id)], ts)[0]


def connect_sqlite(
    path: str | Path, *, create: bool = True, busy_timeout_ms: int = 5000
) -> sqlite3.Connection:
    """A connection to the SQLite file ``path`` in WAL mode with ``synchronous=FULL`` (a
    committed transaction survives a power loss), autocommit off the Python side
    (transactions are opened explicitly with ``BEGIN IMMEDIATE``)."""
    file = Path(path)
    if not create and not file.is_file():
        raise AuditError(f"database path = {str(file)!r} does not exist; expected a state file")
    file.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(file), isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as exc:
        raise AuditError(
            f"database path = {str(file)!r}: cannot open it as SQLite ({exc}); expected a "
            "writable SQLite file"
        ) from exc
    if str(mode).lower() != "wal":
        conn.close()
        raise AuditError(f"database path = {str(file)!r}: journal_mode is {mode!r}; expected wal")
    return conn


def _entry(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(int(row[0]), *(str(v) for v in row[1:7]))


class AuditLogBase(ABC):
    """What every audit log offers, on either database (the SQL is shared; a subclass says how
    to open a write transaction and run a read).

    ``clock`` stamps entries; ``where`` names the database in messages (never a password)."""

    clock: Clock
    style: SqlStyle
    where: str

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Cursor]:
        """One write transaction, committed when the block ends, rolled back when it raises
        (database errors become :class:`AuditError`; others pass unchanged)."""

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one read (``sql`` in this database's placeholders)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> AuditLogBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(
        self,
        cur: Cursor,
        kind: str,
        payload: Mapping[str, Any],
        correlation_id: str = "",
    ) -> AuditEntry:
        """Append one entry, stamped by the log's clock, in the transaction of ``cur``."""
        return append_entry(cur, kind, payload, ts=self.clock.now(), correlation_id=correlation_id)

    def append(self, kind: str, payload: Mapping[str, Any], correlation_id: str = "") -> AuditEntry:
        """Append one entry in its own durable transaction."""
        with self.transaction() as cur:
            return self.record(cur, kind, payload, correlation_id)

    def append_batch(self, items: Iterable[tuple[str, Mapping[str, Any], str]]) -> list[AuditEntry]:
        """Append ``(kind, payload, correlation_id)`` items in ONE durable transaction (a group
        commit: one fsync for the batch). All or none are stored."""
        batch = list(items)
        with self.transaction() as cur:
            return append_entries(cur, batch, self.clock.now())

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last entry as ``audit_head`` records it (0 and 64 zeros when
        empty)."""
        rows = self._fetch("SELECT seq, hash FROM audit_head WHERE id = 1")
        if not rows:
            raise AuditError(f"audit log {self.where!r}: the audit_head row is missing")
        return int(rows[0][0]), str(rows[0][1])

    def entries(
        self,
        *,
        kind: str | None = None,
        correlation_id: str | None = None,
        since_seq: int | None = None,
        last: int | None = None,
    ) -> list[AuditEntry]:
        """Entries in ``seq`` order, filtered by kind, correlation id and first ``seq``;
        ``last`` keeps only the last N of those."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("kind", kind), ("correlation_id", correlation_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since_seq is not None:
            where.append("seq >= ?")
            params.append(int(since_seq))
        sql = "SELECT seq, ts, kind, correlation_id, payload, prev_hash, hash FROM audit_log"
        sql += (" WHERE " + " AND ".join(where)) if where else ""
        if last is not None:
            if last < 0:
                raise AuditError(f"entries last = {last}; expected a count >= 0")
            rows = self._fetch(self.style.sql(sql + " ORDER BY seq DESC LIMIT ?"), (*params, last))
            return [_entry(r) for r in reversed(rows)]
        return [_entry(r) for r in self._fetch(self.style.sql(sql + " ORDER BY seq"), params)]


class AuditLog(AuditLogBase):
    """The audit log in the SQLite file ``path`` (see the module docstring).

    ``create=False`` opens an existing log only (for reading and verifying: nothing is
    written). ``clock`` stamps entries. Not thread-safe: one connection per log object.
    """

    style = SQLITE

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock | None = None,
        create: bool = True,
        busy_timeout_ms: int = 5000,
    ) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self.clock = clock or LiveClock()
        self._conn = connect_sqlite(self.path, create=create, busy_timeout_ms=busy_timeout_ms)
        if create:
            with self.transaction() as cur:
                ensure_schema(cur)
        else:
            found = self._conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                "('audit_log', 'audit_head')"
            ).fetchone()[0]
            if found != 2:
                self._conn.close()
                raise AuditError(
                    f"database path = {str(self.path)!r} holds no audit log; expected the "
                    "audit_log and audit_head tables"
                )

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> AuditLog:
        return self

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``); rolled back when the
        block raises. SQLite errors become :class:`AuditError`; others pass unchanged."""
        cur = self._conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            yield cur
            cur.execute("COMMIT")
        except BaseException as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise AuditError(f"audit log {str(self.path)!r}: write failed: {exc}") from exc
            raise
        finally:
            cur.close()

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, params).fetchall()


def open_audit_log(
    target: str | Path, *, clock: Clock | None = None, create: bool = True
) -> AuditLogBase:
    """The audit log ``target`` names: a ``postgresql://`` (or ``postgres://``) URL opens
    :class:`tradeforge.audit.pg.PgAuditLog` (psycopg 3), anything else is the SQLite file
    :class:`AuditLog`. ``create=False`` refuses a database without the log's tables."""
    if isinstance(target, str) and target.lower().startswith(("postgresql://", "postgres://")):
        from tradeforge.audit.pg import PgAuditLog

        return PgAuditLog(target, clock=clock, create=create)
    return AuditLog(target, clock=clock, create=create)


__all__ = [
    "GENESIS_HASH",
    "PG_SCHEMA",
    "POSTGRES",
    "SCHEMA",
    "SQLITE",
    "AuditEntry",
    "AuditLog",
    "AuditLogBase",
    "Cursor",
    "SqlStyle",
    "append_entries",
    "append_entry",
    "canonical_json",
    "connect_sqlite",
    "ensure_schema",
    "entry_hash",
    "format_ts",
    "open_audit_log",
    "style_of",
]
