"""The PostgreSQL dialect of the OMS store (:class:`tradeforge.execution.store.OrderStore`).

The store's SQL is shared with SQLite (see :mod:`tradeforge.execution.store`); this module only
says how PostgreSQL differs:

* connecting: psycopg 3 in autocommit mode (reads are single statements; a write transaction
  is opened explicitly) with ``synchronous_commit = on`` for the session, so a committed
  transaction is on the server's disk (WAL flushed) before ``commit`` returns;
* a write transaction: ``BEGIN`` then ``pg_advisory_xact_lock`` on one key per database (the
  counterpart of SQLite's ``BEGIN IMMEDIATE``): writers of the same store run one at a time,
  so ``MAX(id) + 1`` event numbering and the read-then-write checks of ``record`` stay exact
  with many connections; the lock is released by the commit or rollback;
* ``%s`` placeholders; settings are read with ``SHOW``.

Only this module imports psycopg, and only :meth:`OrderStore.open_postgres` imports this one.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tradeforge.execution.errors import OmsStoreError
from tradeforge.execution.store import Connection, Cursor, is_postgres_url

# A fixed 64-bit key for the store's writer lock (advisory locks are per database).
WRITER_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"tradeforge.execution.store").digest()[:8], "big", signed=True
)


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)
        user = parts.username or ""
        host = netloc[1] if len(netloc) == 2 else ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "<unparseable url>"


class PostgresDialect:
    """PostgreSQL through psycopg 3 (see the module docstring). ``url`` is a libpq URL
    (``postgresql://user:password@host:port/dbname``); ``connect_timeout_s`` bounds the
    connection attempt."""

    name = "postgresql"
    placeholder = "%s"

    def __init__(self, url: str, *, connect_timeout_s: float = 10.0) -> None:
        if not is_postgres_url(url):
            raise OmsStoreError(
                f"OMS store url = {redact_url(str(url))!r}; expected a postgresql:// URL"
            )
        if not connect_timeout_s > 0:
            raise OmsStoreError(
                f"OMS store connect_timeout_s = {connect_timeout_s!r}; expected seconds > 0"
            )
        self.url = url
        self.connect_timeout_s = float(connect_timeout_s)

    @property
    def where(self) -> str:
        return redact_url(self.url)

    def connect(self) -> Connection:
        try:
            conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, round(self.connect_timeout_s))
            )
        except psycopg.Error as exc:
            raise OmsStoreError(
                f"OMS store url = {self.where!r}: cannot connect ({exc}); expected a reachable "
                "PostgreSQL database the user may create tables in"
            ) from exc
        try:
            conn.execute("SET synchronous_commit = on")
        except psycopg.Error as exc:
            conn.close()
            raise OmsStoreError(
                f"OMS store url = {self.where!r}: cannot set synchronous_commit ({exc})"
            ) from exc
        return conn

    def begin(self, cursor: Cursor) -> None:
        cursor.execute("BEGIN")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK_KEY,))

    def setting_sql(self, name: str) -> str:
        return f"SHOW {name}"


__all__ = ["WRITER_LOCK_KEY", "PostgresDialect", "redact_url"]
