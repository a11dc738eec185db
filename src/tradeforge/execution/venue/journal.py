"""The venue's journal: every state-changing command, durably, in the order it was applied.

The venue is deterministic: the same bars, configuration and commands (submit, cancel, reject,
advance) always lead to the same orders, fills and cash. So the journal stores the commands,
not the state; a venue that restarts on the same ``--state`` folder replays them through a fresh
``SimulatedBroker`` and is back exactly where it stopped. A command is committed BEFORE it is
applied (write-ahead), in SQLite with WAL and ``synchronous=FULL``: an order the venue has
acknowledged survives a crash of the venue.

Tables: ``venue_meta`` (schema version and the replay-relevant configuration, see
``VenueConfig.replay_key``) and ``venue_journal`` (``seq``, ``kind``, ``payload`` JSON,
``recorded_at``). ``":memory:"`` keeps nothing (a venue without ``--state``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tradeforge.execution.venue.errors import VenueStateError

SCHEMA_VERSION = "1"
JOURNAL_FILE = "venue.sqlite"

EntryKind = Literal["submit", "cancel", "reject", "advance"]
_KINDS: frozenset[str] = frozenset({"submit", "cancel", "reject", "advance"})


@dataclass(frozen=True)
class JournalEntry:
    """One command as it was recorded."""

    seq: int
    kind: EntryKind
    payload: dict[str, Any]


def _differences(stored: Any, current: Any, path: str) -> list[str]:
    """Leaf paths where ``current`` differs from ``stored`` (keys new in ``current`` are a newer
    schema's defaults and are not differences)."""
    if isinstance(stored, Mapping) and isinstance(current, Mapping):
        out: list[str] = []
        for key in stored:
            sub = f"{path}.{key}" if path else str(key)
            if key not in current:
                out.append(f"{sub} = {stored[key]!r} in the state, absent now")
            else:
                out.extend(_differences(stored[key], current[key], sub))
        return out
    if stored != current:
        return [f"{path} = {stored!r} in the state, {current!r} now"]
    return []


class VenueJournal:
    """The write-ahead command log of one venue (see the module docstring).

    ``path`` is a folder (the journal is ``<path>/venue.sqlite``) or None for a journal that
    lives in memory only. ``replay_key`` is checked against the one a stored journal was made
    with: a different configuration would replay the commands into different fills, so it is
    refused with :class:`VenueStateError` naming every differing field.
    """

    def __init__(self, path: str | Path | None, replay_key: Mapping[str, Any]) -> None:
        self.path = Path(path) / JOURNAL_FILE if path is not None else None
        self._lock = threading.Lock()
        self._conn = self._connect()
        try:
            self._init_schema(dict(replay_key))
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        target = ":memory:" if self.path is None else str(self.path)
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise VenueStateError(
                f"venue state = {target!r}: cannot open it ({exc}); expected a writable folder"
            ) from exc
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            conn.close()
            raise VenueStateError(
                f"venue state = {target!r}: not a SQLite journal ({exc}); expected a folder "
                f"holding {JOURNAL_FILE} written by `tradeforge venue serve`"
            ) from exc
        if self.path is not None and str(mode).lower() != "wal":
            conn.close()
            raise VenueStateError(f"venue state = {target!r}: journal_mode {mode!r}; expected wal")
        return conn

    def _init_schema(self, replay_key: dict[str, Any]) -> None:
        c = self._conn
        c.execute("CREATE TABLE IF NOT EXISTS venue_meta (key TEXT PRIMARY KEY, value TEXT)")
        c.execute(
            "CREATE TABLE IF NOT EXISTS venue_journal (seq INTEGER PRIMARY KEY, kind TEXT NOT "
            "NULL, payload TEXT NOT NULL, recorded_at TEXT NOT NULL)"
        )
        rows = dict(c.execute("SELECT key, value FROM venue_meta").fetchall())
        if not rows:
            c.execute("BEGIN IMMEDIATE")
            c.execute("INSERT INTO venue_meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            c.execute("INSERT INTO venue_meta VALUES ('replay_key', ?)", (json.dumps(replay_key),))
            c.execute("COMMIT")
            return
        where = self.path if self.path is not None else ":memory:"
        if rows.get("schema") != SCHEMA_VERSION:
            raise VenueStateError(
                f"venue state {where}: schema = {rows.get('schema')!r}; expected {SCHEMA_VERSION!r}"
            )
        stored = json.loads(rows.get("replay_key", "{}"))
        diffs = _differences(stored, json.loads(json.dumps(replay_key)), "")
        if diffs:
            raise VenueStateError(
                f"venue state {where} was written with another configuration: "
                + "; ".join(diffs)
                + ". Expected the same data, sim and replay settings, or a new --state folder"
            )

    def append(self, kind: EntryKind, payload: Mapping[str, Any]) -> int:
        """Commit one command (before it is applied); returns its sequence number."""
        if kind not in _KINDS:
            raise VenueStateError(f"journal kind = {kind!r}; expected one of {sorted(_KINDS)}")
        text = json.dumps(dict(payload), sort_keys=True)
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(
                    "INSERT INTO venue_journal (kind, payload, recorded_at) VALUES (?, ?, ?)",
                    (kind, text, datetime.now(UTC).isoformat()),
                )
                seq = int(cur.lastrowid or 0)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return seq

    def entries(self) -> Iterator[JournalEntry]:
        """Every recorded command, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, kind, payload FROM venue_journal ORDER BY seq"
            ).fetchall()
        for seq, kind, payload in rows:
            if kind not in _KINDS:
                raise VenueStateError(f"journal entry {seq}: kind = {kind!r}; expected {_KINDS}")
            yield JournalEntry(int(seq), kind, json.loads(payload))

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM venue_journal").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


__all__ = ["JOURNAL_FILE", "EntryKind", "JournalEntry", "VenueJournal"]
