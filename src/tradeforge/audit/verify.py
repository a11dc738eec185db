"""Verify the hash chain of an audit log, and the anchor file that pins its head from outside.

:func:`verify_chain` walks every entry in ``seq`` order and stops at the first problem, naming
its ``seq``:

* ``missing``: the ``seq`` numbers skip (a deleted entry; the first missing number is named);
* ``edited``: the stored ``hash`` is not the hash of the entry's fields (a changed byte in any
  field, or rows whose contents or ``seq`` numbers were swapped, i.e. reordered);
* ``broken_link``: ``prev_hash`` is not the previous entry's ``hash`` (an entry rewritten with
  a hash recomputed over its new content, or an entry inserted into the chain);
* ``truncated``: ``audit_head`` (moved in the same transaction as every append) or the anchor
  file names a ``seq`` beyond the last entry: the tail was dropped (``seq`` = the first
  missing one);
* ``head_mismatch``: entries beyond what ``audit_head`` records (appended outside the log's
  API), or a head hash that differs from the entry's;
* ``anchor_mismatch``: the anchor file's hash differs from the entry at its ``seq`` (the
  history up to the anchor was rewritten, head included).

An anchor (:func:`write_anchor`) is the head ``(seq, hash)`` written to a file outside the
database after a commit; keep a copy elsewhere (an alert, another machine) and an attacker who
rewrites the database, head table included, still cannot hide a dropped tail or a rewritten
history. It lags the database (written after the commit), never leads it, so an anchor behind
the head is normal.

The walk is the same on both databases; a reader gives it one snapshot of the rows as raw
bytes (SQLite: this module; PostgreSQL: :class:`tradeforge.audit.pg.PgReader`).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from tradeforge.audit.errors import AuditError
from tradeforge.audit.log import GENESIS_HASH, AuditLogBase

if TYPE_CHECKING:
    import psycopg

_SEP = b"\x1f"


class Problem(StrEnum):
    MISSING = "missing"
    EDITED = "edited"
    BROKEN_LINK = "broken_link"
    TRUNCATED = "truncated"
    HEAD_MISMATCH = "head_mismatch"
    ANCHOR_MISMATCH = "anchor_mismatch"


@dataclass(frozen=True)
class Anchor:
    """The head of the chain at some moment: its last ``seq`` and that entry's ``hash``."""

    seq: int
    hash: str
    written_at: str = ""


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify_chain`. ``first_bad_seq`` and ``problem`` are None when
    the chain is intact; ``entries`` counts the entries checked."""

    entries: int
    last_seq: int
    head_seq: int
    first_bad_seq: int | None
    problem: Problem | None
    message: str
    seconds: float
    anchor_seq: int | None = None
    cpu_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Scan(NamedTuple):
    entries: int
    last_seq: int
    last_hash: bytes
    bad: int | None
    problem: Problem | None
    message: str
    first_prev: bytes | None


_ROWS = (
    "SELECT seq, ts, kind, correlation_id, payload, prev_hash, hash FROM audit_log "
    "WHERE seq BETWEEN ? AND ? ORDER BY seq"
)
_PARALLEL_MIN = 200_000  # fewer entries than this: one process is faster than starting workers


def _scan(rows: Iterable[Sequence[Any]], lo: int, hi: int, prev: bytes | None) -> _Scan:
    """Walk the entries ``lo..hi`` (``rows``: those entries in ``seq`` order, every text column
    as the raw stored bytes: no UTF-8 decoding and re-encoding, the stored bytes are what was
    hashed); ``prev`` is the hash entry ``lo`` must link to (None: take its ``prev_hash`` as
    given, for the caller to stitch)."""
    expected, count, first_prev = lo, 0, None
    last = prev if prev is not None else b""
    sha256 = hashlib.sha256

    def stop(seq: int, problem: Problem, message: str) -> _Scan:
        return _Scan(count, expected - 1, last, seq, problem, message, first_prev)

    for seq, ts, kind, cid, payload, prev_hash, stored in rows:
        if seq != expected:
            return stop(expected, Problem.MISSING,
                        f"seq {expected} is missing (the next entry is seq {seq})")  # fmt: skip
        try:
            text = _SEP.join((b"%d" % seq, ts, kind, cid, payload, prev_hash))
            intact = sha256(text).hexdigest().encode() == stored
        except TypeError:  # a field rewritten with another SQL type
            intact = False
        if not intact:
            return stop(seq, Problem.EDITED, f"seq {seq}: the stored hash does not match "
                        "the entry's content (edited or reordered)")  # fmt: skip
        if count == 0:
            first_prev = prev_hash
        if prev_hash != last and (count > 0 or prev is not None):
            return stop(seq, Problem.BROKEN_LINK, f"seq {seq}: prev_hash does not match the "
                        f"hash of seq {seq - 1} (one of them was rewritten)")  # fmt: skip
        last, expected, count = stored, expected + 1, count + 1
    if expected <= hi:  # rows missing at the end of a bounded range
        return stop(expected, Problem.MISSING, f"seq {expected} is missing")
    return _Scan(count, expected - 1, last, None, None, "", first_prev)


class _Reader(Protocol):
    """One read snapshot of a log (entered with ``with``) for :func:`verify_chain`."""

    path: str | None  # the SQLite file, for parallel workers (None: verify in this process)

    def __enter__(self) -> _Reader: ...
    def __exit__(self, *exc: object) -> None: ...
    def head(self) -> Any: ...
    def bounds(self) -> tuple[int, int]: ...
    def rows(self, lo: int, hi: int) -> Iterable[Sequence[Any]]: ...
    def hash_at(self, seq: int) -> str | None: ...


class _SqliteReader:
    """:class:`_Reader` on an SQLite connection: one ``BEGIN`` ... ``ROLLBACK`` snapshot
    (unless the caller's transaction is open), rows read with ``text_factory = bytes``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._own = False
        self.path: str | None = None

    def __enter__(self) -> _SqliteReader:
        self._own = not self.conn.in_transaction
        if self._own:
            self.conn.execute("BEGIN")  # one read snapshot for the head, the entries and anchor
        self.path = _database_file(self.conn)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._own and self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def head(self) -> Any:
        return self.conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()

    def bounds(self) -> tuple[int, int]:
        bottom, top = self.conn.execute(
            "SELECT COALESCE(MIN(seq), 1), COALESCE(MAX(seq), 0) FROM audit_log"
        ).fetchone()
        return bottom, top

    def rows(self, lo: int, hi: int) -> Iterator[Sequence[Any]]:
        factory = self.conn.text_factory
        self.conn.text_factory = bytes
        try:
            yield from self.conn.execute(_ROWS, (lo, hi))
        finally:
            self.conn.text_factory = factory

    def hash_at(self, seq: int) -> str | None:
        row = self.conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else row[0]


def _scan_file(path: str, lo: int, hi: int) -> _Scan:
    """:func:`_scan` of ``lo..hi`` on its own read-only connection (a worker process)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.text_factory = bytes
        return _scan(conn.execute(_ROWS, (lo, hi)), lo, hi, None)
    finally:
        conn.close()


def _scan_parallel(path: str, top: int, workers: int) -> _Scan:
    """Scan ``1..top`` in ``workers`` processes by seq range, then stitch the ranges."""
    step = -(-top // workers)
    ranges = [(lo, min(lo + step - 1, top)) for lo in range(1, top + 1, step)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(ranges), mp_context=context) as pool:
        parts = list(pool.map(_scan_file, [path] * len(ranges), *zip(*ranges, strict=True)))
    prev, count = GENESIS_HASH.encode(), 0
    for (lo, _), part in zip(ranges, parts, strict=True):
        if part.entries > 0 and part.first_prev != prev:
            return _Scan(count, lo - 1, prev, lo, Problem.BROKEN_LINK, f"seq {lo}: prev_hash "
                         f"does not match the hash of seq {lo - 1} (one of them was rewritten)",
                         None)  # fmt: skip
        if part.problem is not None:
            return part._replace(entries=count + part.entries)
        prev, count = part.last_hash, count + part.entries
    return _Scan(count, top, prev, None, None, "", None)


def _database_file(conn: sqlite3.Connection) -> str | None:
    for _, name, file in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(file) if file else None
    return None  # pragma: no cover - every connection has a main database


def verify_chain(
    conn: sqlite3.Connection | psycopg.Connection[Any],
    anchor: Anchor | None = None,
    *,
    workers: int = 1,
    parallel_min: int = _PARALLEL_MIN,
) -> VerifyReport:
    """Check every entry, ``audit_head`` and (when given) the ``anchor`` (module docstring).

    ``conn`` is the log's connection: SQLite (``AuditLog.connection``) or PostgreSQL
    (``PgAuditLog.connection``). Reads one snapshot: entries appended while it runs are not
    looked at. ``workers`` > 1 verifies seq ranges in that many processes (SQLite logs of
    ``parallel_min`` entries or more, in a file) and stitches their links; the report is the
    same.
    """
    if not isinstance(workers, int) or workers < 1:
        raise AuditError(f"verify workers = {workers!r}; expected an int >= 1")
    start, cpu = time.perf_counter(), time.process_time()
    reader: _Reader
    errors: tuple[type[Exception], ...]
    if isinstance(conn, sqlite3.Connection):
        reader, errors = _SqliteReader(conn), (sqlite3.Error,)
    else:
        from tradeforge.audit import pg

        if not pg.is_pg_connection(conn):
            raise AuditError(
                f"verify conn = {type(conn).__name__}; expected an sqlite3 or psycopg connection"
            )
        reader, errors = pg.PgReader(conn), (pg.Error,)
    try:
        with reader:
            report = _verify(reader, anchor, workers, parallel_min)
    except errors as exc:
        raise AuditError(f"audit log cannot be read: {exc}") from exc
    return replace(report, seconds=time.perf_counter() - start,
                   cpu_seconds=time.process_time() - cpu)  # fmt: skip


def _verify(
    reader: _Reader, anchor: Anchor | None, workers: int, parallel_min: int
) -> VerifyReport:
    head_row = reader.head()
    bottom, top = reader.bounds()
    if bottom < 1:
        scan = _Scan(0, 0, GENESIS_HASH.encode(), int(bottom), Problem.EDITED,
                     f"seq {bottom} is not a valid seq (entries start at 1)", None)  # fmt: skip
    elif workers > 1 and top >= parallel_min and reader.path:
        scan = _scan_parallel(reader.path, top, workers)
    else:
        scan = _scan(reader.rows(1, top), 1, top, GENESIS_HASH.encode())
    return _judge(reader, scan, head_row, anchor)


def _judge(reader: _Reader, scan: _Scan, head_row: Any, anchor: Anchor | None) -> VerifyReport:
    count, last, bad, problem, message = (scan.entries, scan.last_seq, scan.bad, scan.problem,
                                          scan.message)  # fmt: skip
    head_seq, head_hash = (int(head_row[0]), str(head_row[1])) if head_row else (0, GENESIS_HASH)
    if problem is None and head_row is None:
        bad, problem, message = 1, Problem.HEAD_MISMATCH, "the audit_head row is missing"
    if problem is None and head_seq > last:
        bad, problem = last + 1, Problem.TRUNCATED
        message = f"audit_head records seq {head_seq} but the last entry is seq {last}"
    elif problem is None and head_seq < last:
        bad, problem = head_seq + 1, Problem.HEAD_MISMATCH
        message = f"entries after seq {head_seq}, where audit_head says the chain ends"
    elif problem is None and head_hash.encode() != scan.last_hash and head_seq > 0:
        bad, problem = head_seq, Problem.HEAD_MISMATCH
        message = f"audit_head hash differs from the hash of seq {head_seq}"
    if problem is None and anchor is not None:
        if anchor.seq > last:
            bad, problem = last + 1, Problem.TRUNCATED
            message = f"the anchor records seq {anchor.seq} but the last entry is seq {last}"
        elif anchor.seq > 0 and reader.hash_at(anchor.seq) != anchor.hash:
            bad, problem = anchor.seq, Problem.ANCHOR_MISMATCH
            message = f"seq {anchor.seq}: hash differs from the anchor's"
    if problem is None:
        message = f"{count} entries verified; head seq {head_seq}"
    return VerifyReport(
        entries=count, last_seq=last, head_seq=head_seq, first_bad_seq=bad, problem=problem,
        message=message, seconds=0.0, anchor_seq=None if anchor is None else anchor.seq,
    )  # fmt: skip


def write_anchor(log: AuditLogBase, path: str | Path) -> Anchor:
    """Write the log's current head to ``path`` atomically (temporary file, fsync, rename)."""
    seq, digest = log.head()
    anchor = Anchor(seq=seq, hash=digest, written_at=datetime.now(UTC).isoformat())
    file = Path(path)
    tmp = file.with_name(file.name + ".tmp")
    body = json.dumps({"seq": seq, "hash": digest, "written_at": anchor.written_at})
    try:
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(body + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, file)
        dir_fd = os.open(file.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise AuditError(f"anchor path = {str(file)!r}: cannot write it ({exc})") from exc
    return anchor


def read_anchor(path: str | Path) -> Anchor | None:
    """The anchor in ``path`` (None when the file does not exist)."""
    file = Path(path)
    if not file.exists():
        return None
    try:
        raw = json.loads(file.read_text(encoding="ascii"))
        return Anchor(seq=int(raw["seq"]), hash=str(raw["hash"]),
                      written_at=str(raw.get("written_at", "")))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AuditError(
            f"anchor path = {str(file)!r}: unreadable ({exc}); expected JSON with seq and hash"
        ) from exc


__all__ = ["Anchor", "Problem", "VerifyReport", "read_anchor", "verify_chain", "write_anchor"]
