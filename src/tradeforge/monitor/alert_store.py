"""Durable record of alert deliveries and cooldowns (SQLite, WAL, ``synchronous=FULL``).

One row per alert and channel: ``sent`` or ``failed`` (with the attempts made and the redacted
error), or one ``suppressed`` row (channel ``*``) when the cooldown held it back. A separate
``alert_cooldowns`` table keeps the last time each key was notified, so a restarted service
still suppresses a key notified just before it stopped.

The store is safe to share between threads (one connection behind a lock).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from tradeforge.monitor.alert_sinks import Alert, AlertError, FieldValue

__all__ = ["SUPPRESSED_CHANNEL", "AlertRecord", "AlertStore", "DeliveryStatus"]

DeliveryStatus = Literal["sent", "failed", "suppressed"]
STATUSES: tuple[str, ...] = get_args(DeliveryStatus)
SUPPRESSED_CHANNEL = "*"
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    key TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    fields_json TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sent', 'failed', 'suppressed')),
    attempts INTEGER NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS alert_deliveries_status ON alert_deliveries (status, id);
CREATE INDEX IF NOT EXISTS alert_deliveries_key ON alert_deliveries (key, id);
CREATE TABLE IF NOT EXISTS alert_cooldowns (
    key TEXT PRIMARY KEY,
    last_notified_at TEXT NOT NULL
);
"""


def _ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise AlertError(f"alert store timestamp {moment!r} is naive; expected timezone-aware")
    return moment.astimezone(UTC).strftime(_TS_FORMAT)


def _parse_ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True)
class AlertRecord:
    """What happened to one alert on one channel (``*`` for a suppressed alert)."""

    key: str
    severity: str
    title: str
    text: str
    channel: str
    status: DeliveryStatus
    attempts: int
    error: str | None
    created_at: datetime
    delivered_at: datetime | None
    fields: dict[str, FieldValue] = field(default_factory=dict)
    alert_id: str = ""
    id: int = 0


class AlertStore:
    """SQLite file at ``path`` (created with its parent folders); survives restarts."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self._path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)

    @property
    def path(self) -> Path:
        return self._path

    def pragmas(self) -> dict[str, str]:
        """``journal_mode`` and ``synchronous`` as SQLite reports them (``wal``, ``2`` = FULL)."""
        with self._lock:
            journal = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
            synchronous = self._conn.execute("PRAGMA synchronous").fetchone()[0]
        return {"journal_mode": str(journal), "synchronous": str(synchronous)}

    def record(
        self,
        alert: Alert,
        *,
        alert_id: str,
        channel: str,
        status: DeliveryStatus,
        attempts: int,
        error: str | None = None,
        delivered_at: datetime | None = None,
    ) -> int:
        """Append one delivery outcome; returns its row id."""
        if status not in STATUSES:
            raise AlertError(f"alert record status = {status!r}; expected one of {STATUSES}")
        row = (
            alert_id,
            alert.key,
            alert.severity,
            alert.title,
            alert.text,
            json.dumps(alert.fields, default=str),
            channel,
            status,
            attempts,
            error,
            _ts(alert.created_at),
            None if delivered_at is None else _ts(delivered_at),
        )
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO alert_deliveries (alert_id, key, severity, title, text, fields_json,"
                " channel, status, attempts, error, created_at, delivered_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            row_id = cursor.lastrowid
        return int(row_id) if row_id is not None else 0

    def mark_notified(self, key: str, at: datetime) -> None:
        """Remember that ``key`` was notified (sent or attempted) at ``at``."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO alert_cooldowns (key, last_notified_at) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET last_notified_at = excluded.last_notified_at",
                (key, _ts(at)),
            )

    def last_notified(self) -> dict[str, datetime]:
        """Every key's last notification time (the cooldown state)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, last_notified_at FROM alert_cooldowns"
            ).fetchall()
        return {str(key): datetime.fromisoformat(at) for key, at in rows}

    def recent(self, limit: int = 50) -> list[AlertRecord]:
        """The newest ``limit`` records, newest first."""
        return self._select("", (), limit)

    def failures(self, limit: int = 50) -> list[AlertRecord]:
        """The newest ``limit`` failed deliveries, newest first."""
        return self._select("WHERE status = 'failed'", (), limit)

    def for_key(self, key: str, limit: int = 50) -> list[AlertRecord]:
        """The newest ``limit`` records of one alert key, newest first."""
        return self._select("WHERE key = ?", (key,), limit)

    def counts(self, key: str | None = None) -> dict[str, int]:
        """Number of records per status (all keys, or one)."""
        where, args = ("WHERE key = ?", (key,)) if key is not None else ("", ())
        with self._lock:
            rows = self._conn.execute(
                f"SELECT status, COUNT(*) FROM alert_deliveries {where} GROUP BY status", args
            ).fetchall()
        found = {str(status): int(count) for status, count in rows}
        return {status: found.get(status, 0) for status in STATUSES}

    def _select(self, where: str, args: tuple[object, ...], limit: int) -> list[AlertRecord]:
        if not isinstance(limit, int) or limit < 1:
            raise AlertError(f"alert store limit = {limit!r}; expected a positive int")
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, alert_id, key, severity, title, text, fields_json, channel, status,"
                f" attempts, error, created_at, delivered_at FROM alert_deliveries {where}"
                " ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [
            AlertRecord(
                id=int(row[0]),
                alert_id=str(row[1]),
                key=str(row[2]),
                severity=str(row[3]),
                title=str(row[4]),
                text=str(row[5]),
                fields=json.loads(row[6]),
                channel=str(row[7]),
                status=row[8],
                attempts=int(row[9]),
                error=row[10],
                created_at=datetime.fromisoformat(row[11]),
                delivered_at=_parse_ts(row[12]),
            )
            for row in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
