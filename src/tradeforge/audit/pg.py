"""The audit log in a PostgreSQL database (psycopg 3): the same chain, entries and checks as
the SQLite log (:mod:`tradeforge.audit.log`), the same :func:`~tradeforge.audit.verify_chain`.

* the connection runs in autocommit mode with ``synchronous_commit = on`` (a committed append
  is on the server's disk before ``append`` returns); :meth:`PgAuditLog.transaction` opens
  ``BEGIN`` ... ``COMMIT`` explicitly, and appends lock the head row (``FOR UPDATE``), so two
  writers queue instead of forking the chain;
* triggers refuse ``UPDATE``, ``DELETE`` and ``TRUNCATE`` on ``audit_log`` (SQLSTATE 23000,
  ``psycopg.errors.IntegrityConstraintViolation``). A superuser or the table owner can still
  disable them (``ALTER TABLE audit_log DISABLE TRIGGER ...``): verification is what catches
  that, as it does on SQLite;
* :func:`verify_pg` reads the log in one ``REPEATABLE READ`` snapshot, every text column as
  the raw bytes the server stores (no decoding: those bytes are what was hashed).

Only this module imports psycopg; :func:`~tradeforge.audit.open_audit_log` imports it for a
``postgresql://`` URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.adapt import Loader
from psycopg.pq import TransactionStatus

from tradeforge.audit.errors import AuditError
from tradeforge.audit.log import POSTGRES, AuditLogBase, ensure_schema
from tradeforge.core.clock import Clock, LiveClock

_ROWS = (
    "SELECT seq, ts, kind, correlation_id, payload, prev_hash, hash FROM audit_log "
    "WHERE seq BETWEEN %s AND %s ORDER BY seq"
)


def redact(url: str) -> str:
    """``url`` without its password (for messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class PgAuditLog(AuditLogBase):
    """The audit log in the PostgreSQL database ``url`` (see the module docstring).

    ``create=False`` opens an existing log only (nothing is written; the tables must exist).
    ``clock`` stamps entries. Not thread-safe: one connection per log object.
    """

    style = POSTGRES

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        create: bool = True,
        connect_timeout_s: int = 10,
    ) -> None:
        self.url = url
        self.where = redact(url)
        self.clock = clock or LiveClock()
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout_s)
        except psycopg.Error as exc:
            raise AuditError(
                f"audit log url = {self.where!r}: cannot connect ({exc}); expected a reachable "
                "PostgreSQL database"
            ) from exc
        try:
            self._conn.execute("SET synchronous_commit = on")
            if create:
                with self.transaction() as cur:
                    ensure_schema(cur)
            else:
                row = self._conn.execute(
                    "SELECT to_regclass('audit_log') IS NOT NULL AND "
                    "to_regclass('audit_head') IS NOT NULL"
                ).fetchone()
                if not (row and row[0]):
                    raise AuditError(
                        f"audit log url = {self.where!r} holds no audit log; expected the "
                        "audit_log and audit_head tables"
                    )
        except BaseException as exc:
            self._conn.close()
            if isinstance(exc, psycopg.Error):
                raise AuditError(f"audit log url = {self.where!r}: {exc}") from exc
            raise

    @property
    def connection(self) -> psycopg.Connection[Any]:
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PgAuditLog:
        return self

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        """One write transaction (``BEGIN`` ... ``COMMIT``); rolled back when the block
        raises. psycopg errors become :class:`AuditError`; others pass unchanged."""
        cur = self._conn.cursor()
        try:
            cur.execute("BEGIN")
            yield cur
            self._conn.commit()
        except BaseException as exc:
            if self._conn.info.transaction_status != TransactionStatus.IDLE:
                with suppress(psycopg.Error):  # a lost connection: the server dropped it
                    self._conn.rollback()
            if isinstance(exc, psycopg.Error):
                raise AuditError(f"audit log {self.where!r}: write failed: {exc}") from exc
            raise
        finally:
            cur.close()

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        except psycopg.Error as exc:
            raise AuditError(f"audit log {self.where!r}: read failed: {exc}") from exc


class _RawText(Loader):
    """Text columns as the bytes the server sent (the client encoding is UTF-8)."""

    def load(self, data: Any) -> bytes:
        return bytes(data)


class PgReader:
    """The reads :func:`~tradeforge.audit.verify_chain` needs, on a PostgreSQL connection, in
    one snapshot (entered with ``with``)."""

    path: str | None = None  # no file: verified in this process

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._own = False

    def __enter__(self) -> PgReader:
        status = self.conn.info.transaction_status
        if status == TransactionStatus.IDLE:
            self._own = True
            if self.conn.autocommit:
                self.conn.execute("BEGIN")
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._own and self.conn.info.transaction_status != TransactionStatus.IDLE:
            self.conn.rollback()

    def head(self) -> Any:
        return self.conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()

    def bounds(self) -> tuple[int, int]:
        row = self.conn.execute(
            "SELECT COALESCE(MIN(seq), 1), COALESCE(MAX(seq), 0) FROM audit_log"
        ).fetchone()
        if row is None:  # pragma: no cover - an aggregate always returns a row
            return 1, 0
        return int(row[0]), int(row[1])

    def rows(self, lo: int, hi: int) -> Iterable[Sequence[Any]]:
        cur = self.conn.cursor()
        cur.adapters.register_loader("text", _RawText)
        try:
            cur.execute(_ROWS, (lo, hi))
            yield from cur
        finally:
            cur.close()

    def hash_at(self, seq: int) -> str | None:
        row = self.conn.execute("SELECT hash FROM audit_log WHERE seq = %s", (seq,)).fetchone()
        return None if row is None else str(row[0])


def is_pg_connection(conn: object) -> bool:
    return isinstance(conn, psycopg.Connection)


Error = psycopg.Error

__all__ = ["PgAuditLog", "PgReader", "is_pg_connection", "redact"]
