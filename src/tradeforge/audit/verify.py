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
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from tradeforge.audit.errors import AuditError
from tradeforge.audit.log import GENESIS_HASH, AuditLog

_SEP = "\x1f"


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

    @property
    def ok(self) -> bool:
        return self.problem is None


def _scan(conn: sqlite3.Connection) -> tuple[int, int, str, int | None, Problem | None, str]:
    """Walk the chain: (entries, last seq, last hash, first bad seq, problem, message)."""
    prev, expected, count = GENESIS_HASH, 1, 0
    sha256 = hashlib.sha256
    rows = conn.execute(
        "SELECT seq, ts, kind, correlation_id, payload, prev_hash, hash FROM audit_log ORDER BY seq"
    )
    for seq, ts, kind, cid, payload, prev_hash, stored in rows:
        if seq != expected:
            return (
                count,
                expected - 1,
                prev,
                expected,
                Problem.MISSING,
                (f"seq {expected} is missing (the next entry is seq {seq})"),
            )
        text = _SEP.join((str(seq), str(ts), str(kind), str(cid), str(payload), str(prev_hash)))
        if sha256(text.encode("utf-8")).hexdigest() != stored:
            return (
                count,
                expected - 1,
                prev,
                seq,
                Problem.EDITED,
                (
                    f"seq {seq}: the stored hash does not match the entry's content (edited or "
                    "reordered)"
                ),
            )
        if prev_hash != prev:
            return (
                count,
                expected - 1,
                prev,
                seq,
                Problem.BROKEN_LINK,
                (
                    f"seq {seq}: prev_hash does not match the hash of seq {seq - 1} (one of them "
                    "was rewritten)"
                ),
            )
        prev, expected, count = stored, expected + 1, count + 1
    return count, expected - 1, prev, None, None, ""


def verify_chain(conn: sqlite3.Connection, anchor: Anchor | None = None) -> VerifyReport:
    """Check every entry, ``audit_head`` and (when given) the ``anchor`` (module docstring)."""
    start = time.perf_counter()
    try:
        head_row = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        count, last, last_hash, bad, problem, message = _scan(conn)
    except sqlite3.Error as exc:
        raise AuditError(f"audit log cannot be read: {exc}") from exc
    head_seq, head_hash = (int(head_row[0]), str(head_row[1])) if head_row else (0, GENESIS_HASH)
    if problem is None and head_row is None:
        bad, problem, message = 1, Problem.HEAD_MISMATCH, "the audit_head row is missing"
    if problem is None and head_seq > last:
        bad, problem = last + 1, Problem.TRUNCATED
        message = f"audit_head records seq {head_seq} but the last entry is seq {last}"
    elif problem is None and head_seq < last:
        bad, problem = head_seq + 1, Problem.HEAD_MISMATCH
        message = f"entries after seq {head_seq}, where audit_head says the chain ends"
    elif problem is None and head_hash != last_hash:
        bad, problem = head_seq, Problem.HEAD_MISMATCH
        message = f"audit_head hash differs from the hash of seq {head_seq}"
    if problem is None and anchor is not None:
        if anchor.seq > last:
            bad, problem = last + 1, Problem.TRUNCATED
            message = f"the anchor records seq {anchor.seq} but the last entry is seq {last}"
        elif anchor.seq > 0:
            row = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (anchor.seq,))
            found = row.fetchone()
            if found is None or found[0] != anchor.hash:
                bad, problem = anchor.seq, Problem.ANCHOR_MISMATCH
                message = f"seq {anchor.seq}: hash differs from the anchor's"
    if problem is None:
        message = f"{count} entries verified; head seq {head_seq}"
    return VerifyReport(
        entries=count, last_seq=last, head_seq=head_seq, first_bad_seq=bad, problem=problem,
        message=message, seconds=time.perf_counter() - start,
        anchor_seq=None if anchor is None else anchor.seq,
    )  # fmt: skip


def write_anchor(log: AuditLog, path: str | Path) -> Anchor:
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
