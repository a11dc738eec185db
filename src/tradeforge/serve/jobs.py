"""A durable ledger of job executions, so each ``(job, key)`` runs at most once, across restarts.

APScheduler's job stores persist *schedules*, not *executions*: after a crash nothing says which
bar already ran. The service therefore claims ``(job, key)`` in SQLite (WAL, ``synchronous=FULL``)
before running it; a second claim of the same key, by this process or a restarted one, fails.

A claim that was never finished is what a crash left behind (:meth:`JobLedger.unfinished`). The
service reports such runs and does not rerun them: the bar may have half-run, and the trading
node's own journal resolves its bar's orders.

:class:`RetrainWorker` runs the retraining job (``schedule.retrain``: :class:`RetrainJobConfig`)
in its own thread, one retrain at a time, each cadence slot at most once (ledgered as job
``retrain.run``): :func:`tradeforge.experiment.retrain.retrain`, which registers a challenger
and moves ``shadow`` only through the offline gate and never touches the champion.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import TradeforgeError
from tradeforge.governance.gates import GateConfig
from tradeforge.monitor.alert_sinks import Alert

if TYPE_CHECKING:
    from tradeforge.experiment.retrain import RetrainResult, Runner

__all__ = [
    "JobLedger",
    "JobRun",
    "JobStatus",
    "LedgerError",
    "RetrainJobConfig",
    "RetrainWorker",
]

_LOG = logging.getLogger(__name__)

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


class RetrainJobConfig(FrozenConfig):
    """``schedule.retrain``: what the service's retraining job runs (with
    ``schedule.retrain_every_days`` as its cadence).

    ``config``: the experiment YAML; ``model``: the registered name (default the experiment's
    ``tracking.model_name``, else its name); ``registry_uri`` and ``audit``: the registry
    store and the governance audit log (defaults as ``tradeforge models``); ``actor``: who the
    audit names; ``approver``: a standing second approver that lets a version that failed the
    offline gate into ``shadow`` (audited as an override; leave unset to refuse such versions);
    ``gates``: the gate thresholds; ``out_dir``: where runs go (default the experiment's
    ``output_dir``)."""

    config: str = Field(min_length=1)
    model: str | None = None
    registry_uri: str | None = None
    audit: str | None = None
    actor: str = Field(default="tradeforge-service", min_length=1)
    approver: str | None = None
    gates: GateConfig = Field(default_factory=GateConfig)
    out_dir: str | None = None


RETRAIN_RUN = "retrain.run"


class RetrainWorker:
    """Runs :func:`~tradeforge.experiment.retrain.retrain` for ``job`` in a worker thread.

    :meth:`submit` (the scheduler's retrain callback) claims ``(retrain.run, key)`` in the
    ledger and starts the thread; a slot claimed before is not run again, and a slot that
    comes while a retrain is still running is recorded as ``skipped``. The outcome is
    ledgered (``ok`` with ``registered ...`` or ``refused: ...``, or ``error``) and told to
    ``notify`` as an :class:`~tradeforge.monitor.alert_sinks.Alert`. ``runner`` replaces the
    walk-forward (tests)."""

    def __init__(
        self,
        ledger: JobLedger,
        job: RetrainJobConfig,
        *,
        notify: Callable[[Alert], None] | None = None,
        runner: Runner | None = None,
    ) -> None:
        self.ledger = ledger
        self.job = job
        self._notify = notify
        self._runner = runner
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.last: RetrainResult | None = None

    @property
    def running(self) -> bool:
        """Whether a retrain is in progress."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def submit(self, key: str) -> bool:
        """Start the retrain of cadence slot ``key`` in the worker thread; False when the slot
        ran before or a retrain is still running (then the slot is recorded as skipped)."""
        with self._lock:
            if self.running:
                self.ledger.skip(RETRAIN_RUN, key, "skipped: the previous retrain is still running")
                _LOG.warning("retrain %s skipped: the previous retrain is still running", key)
                return False
            if not self.ledger.claim(RETRAIN_RUN, key):
                _LOG.info("retrain %s was claimed before; not run again", key)
                return False
            self._thread = threading.Thread(
                target=self._run, args=(key,), name=f"tradeforge-retrain-{key}", daemon=True
            )
            self._thread.start()
        return True

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a running retrain; True when none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def _run(self, key: str) -> None:
        try:
            result = self._retrain()
        except Exception as exc:
            _LOG.exception("retrain %s failed", key)
            self.ledger.finish(RETRAIN_RUN, key, "error", f"{type(exc).__name__}: {exc}")
            self._tell(Alert(key=f"retrain:{key}", severity="warning", title="Retraining failed",
                             text=f"{self.job.config}: {type(exc).__name__}: {exc}"))  # fmt: skip
            return
        self.last = result
        if result.registered:
            aliases = ", ".join(result.aliases)
            detail = f"registered {result.model} v{result.version} ({aliases})"
            if result.approver:
                detail += f"; offline gate failed, approved by {result.approver}"
            self.ledger.finish(RETRAIN_RUN, key, "ok", detail)
            self._tell(Alert(key=f"retrain:{key}", severity="info",
                             title="Retrained: new challenger in shadow", text=detail))  # fmt: skip
            return
        detail = f"refused: {result.refused}"
        self.ledger.finish(RETRAIN_RUN, key, "ok", detail)
        self._tell(Alert(key=f"retrain:{key}", severity="warning",
                         title="Retrained model refused by the offline gate",
                         text=f"{result.model}: {detail}"))  # fmt: skip

    def _retrain(self) -> RetrainResult:
        from tradeforge.agents.registry import PolicyRegistry
        from tradeforge.experiment.config import load_experiment
        from tradeforge.experiment.retrain import retrain
        from tradeforge.governance.lifecycle import open_audit

        job = self.job
        config = load_experiment(Path(job.config))
        tracking = config.tracking
        registry = PolicyRegistry(job.registry_uri or (tracking.registry_uri if tracking else None))
        out_dir = None
        if job.out_dir is not None:
            out_dir = Path(job.out_dir) / f"{config.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        with open_audit(job.audit, registry.registry_uri) as audit:
            return retrain(config, actor=job.actor, model=job.model, registry=registry,
                           audit=audit, approver=job.approver, gate_config=job.gates,
                           out_dir=out_dir, runner=self._runner)  # fmt: skip

    def _tell(self, alert: Alert) -> None:
        if self._notify is None:
            return
        try:
            self._notify(alert)
        except Exception:
            _LOG.exception("notify failed for %s", alert.key)
