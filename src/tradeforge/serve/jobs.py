"""A durable ledger of job executions, so each ``(job, key)`` runs at most once, across restarts.

APScheduler's job stores persist *schedules*, not *executions*: after a crash nothing says which
bar already ran. The service therefore claims ``(job, key)`` in SQLite (WAL, ``synchronous=FULL``)
before running it; a second claim of the same key, by this process or a restarted one, fails.

A claim that was never finished is what a crash left behind (:meth:`JobLedger.unfinished`). The
service reports such runs and does not rerun them: the bar may have half-run, and the trading
node's own journal resolves its bar's orders.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from tradeforge.core.errors import TradeforgeError

__all__ = ["JobLedger", "JobRun", "JobStatus", "LedgerError"]

JobStatus = Literal["running", "ok", "error", "skipped"]
_FINAL = ("ok", "error")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS job_runs (
    job TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    finished_at TEXT,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job, key)
);
CREATE INDEX IF NOT EXISTS job_runs_claimed ON job_runs (claimed_at);
"""


class LedgerError(TradeforgeError, ValueError):
    """The job ledger was used against its rules (finishing an unclaimed run, a bad status)."""


@dataclass(frozen=True)
class JobRun:
    """One row of the ledger: a claimed run of ``job`` for ``key`` and how it ended."""

    job: str
    key: str
    status: JobStatus
    claimed_at: datetime
    finished_at: datetime | None
    detail: str

    @property
    def finished(self) -> bool:
        """Whether the run reached an end (ok, error or skipped)."""
        return self.finished_at is not None


def _stamp(moment: datetime) -> str:
    # one fixed format so text order is time order
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _now() -> datetime:
    return datetime.now(UTC)


class JobLedger:
    """SQLite ledger of job executions: claim before running, finish after.

    One connection guarded by a lock serves every thread of the process; another process (a
    restarted service) sees the same rows through WAL. Claims are atomic
    (``INSERT ... ON CONFLICT DO NOTHING``).
    """

    def __init__(self, path: str | Path, clock: Callable[[], datetime] | None = None) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise LedgerError(
                f"ledger path = {str(self.path)!r} is a directory; expected a SQLite file path"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock or _now
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.executescript(_SCHEMA)

    # ------------------------------------------------------------------ writes

    def claim(self, job: str, key: str) -> bool:
        """Claim ``(job, key)``; False if it was claimed before, by anyone, in any process."""
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO job_runs (job, key, status, claimed_at) VALUES (?, ?, 'running', ?) "
                "ON CONFLICT (job, key) DO NOTHING",
                (job, key, _stamp(self._clock())),
            )
            return cursor.rowcount == 1

    def finish(self, job: str, key: str, status: Literal["ok", "error"], detail: str = "") -> None:
        """Record how a claimed run ended; a run is finished once."""
        if status not in _FINAL:
            raise LedgerError(
                f"status = {status!r} for job {job!r} key {key!r}; expected 'ok' or 'error'"
            )
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE job_runs SET status = ?, finished_at = ?, detail = ? "
                "WHERE job = ? AND key = ? AND finished_at IS NULL",
                (status, _stamp(self._clock()), detail, job, key),
            )
            updated = cursor.rowcount
        if updated != 1:
            current = self.get(job, key)
            state = "was never claimed" if current is None else f"is already {current.status}"
            raise LedgerError(
                f"finish(job={job!r}, key={key!r}): the run {state}; expected a claimed, "
                "unfinished run"
            )

    def skip(self, job: str, key: str, detail: str = "") -> bool:
        """Record ``(job, key)`` as skipped (claimed and finished at once); False if already claimed."""
        return self.skip_many(job, [key], detail) == 1

    def skip_many(self, job: str, keys: Sequence[str], detail: str = "") -> int:
        """Record every unclaimed key of ``keys`` as skipped, in one transaction; returns how many.

        One transaction (one fsync) however many bars a long outage left behind.
        """
        moment = _stamp(self._clock())
        rows = [(job, key, moment, moment, detail) for key in keys]
        if not rows:
            return 0
        with self._lock:
            before = self._conn.total_changes
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO job_runs (job, key, status, claimed_at, finished_at, detail) "
                    "VALUES (?, ?, 'skipped', ?, ?, ?) ON CONFLICT (job, key) DO NOTHING",
                    rows,
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return self._conn.total_changes - before

    # ------------------------------------------------------------------ reads

    def get(self, job: str, key: str) -> JobRun | None:
        """The run of ``(job, key)``, or None if it was never claimed."""
        rows = self._select("WHERE job = ? AND key = ?", (job, key))
        return rows[0] if rows else None

    def runs(self, job: str | None = None, limit: int = 50) -> list[JobRun]:
        """The latest runs (all jobs, or one), newest claim first."""
        if limit < 1:
            raise LedgerError(f"limit = {limit!r}; expected a positive number of runs")
        if job is None:
            return self._select("ORDER BY claimed_at DESC, rowid DESC LIMIT ?", (limit,))
        return self._select(
            "WHERE job = ? ORDER BY claimed_at DESC, rowid DESC LIMIT ?", (job, limit)
        )

    def unfinished(self) -> list[JobRun]:
        """Runs claimed but never finished: what a crash left. Report them; do not rerun them."""
        return self._select("WHERE finished_at IS NULL ORDER BY claimed_at, rowid", ())

    def last_key(self, job: str) -> str | None:
        """The greatest key ever claimed for ``job`` (keys that embed a UTC ISO time sort by time)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT MAX(key) FROM job_runs WHERE job = ?", (job,)
            ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def _select(self, where: str, params: tuple[object, ...]) -> list[JobRun]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT job, key, status, claimed_at, finished_at, detail FROM job_runs " + where,
                params,
            ).fetchall()
        return [
            JobRun(
                job=str(job),
                key=str(key),
                status=status,
                claimed_at=datetime.fromisoformat(claimed),
                finished_at=None if finished is None else datetime.fromisoformat(finished),
                detail=str(detail),
            )
            for job, key, status, claimed, finished, detail in rows
        ]

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> JobLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JobLedger({str(self.path)!r})"
