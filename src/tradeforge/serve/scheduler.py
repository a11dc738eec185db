"""The service's scheduler: one job per bar of each strategy, plus periodic non-trading jobs.

:class:`ServiceScheduler` wraps an APScheduler 3.x ``BackgroundScheduler`` (UTC, ``coalesce``,
``max_instances=1`` and a generous ``misfire_grace_time``: a small grace silently drops late
runs). APScheduler persists schedules, not executions, so every run first claims a key in the
:class:`~tradeforge.serve.jobs.JobLedger`; a key claimed before (by this process or by the one
that crashed) is never run again.

Bar jobs are scheduled one ``DateTrigger`` at a time from a :class:`BarCalendar`: when a bar's
run ends, the next bar is scheduled. On start-up the bars whose run time passed while the service
was down are settled: only the latest one is run (``catch_up``), older ones are recorded as
``skipped``. Exceptions in any job are recorded as ``error``, passed to ``on_error`` (the service
alerts) and never stop the scheduler.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import Field, field_validator, model_validator

from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import ConfigError, DataError
from tradeforge.serve.calendar import BarAnchor, BarCalendar, parse_frequency, require_aware
from tradeforge.serve.jobs import JobLedger, JobRun, RetrainJobConfig

__all__ = [
    "ErrorCallback",
    "JobCalendar",
    "RetrainJobConfig",
    "ScheduleConfig",
    "ServiceScheduler",
    "bar_key",
    "period_key",
]

_LOG = logging.getLogger(__name__)
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_CRON_LOOKAHEAD = 32  # fire times tried when looking for the next one on a trading day
_LOOKBACK_DAYS = (7, 40)  # how far back the latest past bar is searched when nothing is ledgered

ErrorCallback = Callable[[str, str, BaseException], None]
"""``on_error(job, key, exc)``: told about every job that raised (the service alerts)."""


class JobCalendar(Protocol):
    """What the scheduler needs of a calendar (:class:`BarCalendar` is the real one)."""

    @property
    def offset(self) -> timedelta: ...

    def next_job_time(self, after: datetime) -> tuple[datetime, datetime]: ...

    def jobs_between(self, after: datetime, until: datetime) -> list[tuple[datetime, datetime]]: ...


def _hhmm(value: str | None, name: str) -> str | None:
    if value is not None and not _HHMM.match(value):
        raise ValueError(f"{name} = {value!r} is not a time of day; expected 'HH:MM' (24 h)")
    return value


class ScheduleConfig(FrozenConfig):
    """When the service runs its jobs; embedded in the service config.

    Times of day are exchange-local (``America/New_York`` for XNYS) and run on trading days only.
    ``retrain_every_days`` alone makes the retrain job alert that retraining is due; with
    ``retrain`` (:class:`~tradeforge.serve.jobs.RetrainJobConfig`) it retrains
    (:class:`~tradeforge.serve.jobs.RetrainWorker`).
    """

    exchange: str = "XNYS"
    frequency: str = "1d"
    bar_anchor: BarAnchor = "open"
    offset_s: float = Field(default=60.0, ge=0, lt=86400, description="bar close to bar job delay")
    catch_up: bool = True
    misfire_grace_s: float = Field(default=3600.0, gt=0)
    daily_report_at: str | None = "17:30"
    drift_check_at: str | None = "17:45"
    retrain_every_days: int | None = Field(default=None, ge=1)
    retrain_at: str = "18:00"
    retrain: RetrainJobConfig | None = None

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, value: str) -> str:
        parse_frequency(value)  # ConfigError is a ValueError: pydantic reports it on the field
        return value

    @field_validator("daily_report_at", "drift_check_at", "retrain_at")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        return _hhmm(value, "time")

    @model_validator(mode="after")
    def _retrain_cadence(self) -> ScheduleConfig:
        if self.retrain is not None and self.retrain_every_days is None:
            raise ValueError(
                "retrain is set but retrain_every_days = None; expected a cadence in days "
                "(e.g. retrain_every_days: 7) for the retraining job"
            )
        return self

    def retrain_key(self, moment: datetime) -> str:
        """The cadence slot of ``moment`` (the retrain job's ledger key), exchange-local."""
        if self.retrain_every_days is None:
            raise ConfigError("retrain_every_days = None; expected a cadence to key retrains by")
        return period_key(self.retrain_every_days, str(self.calendar().tz))(moment)

    def calendar(self) -> BarCalendar:
        """The bar calendar this config describes."""
        return BarCalendar(self.exchange, self.frequency, self.offset_s, self.bar_anchor)


def bar_key(strategy: str, bar_close: datetime) -> str:
    """The ledger key of one bar of one strategy: ``"<strategy>|<UTC ISO close>"``."""
    return f"{strategy}|{require_aware(bar_close, 'bar_close').isoformat()}"


def period_key(days: int, tz: str = "UTC") -> Callable[[datetime], str]:
    """A ``key_fn`` that is constant over blocks of ``days`` local days (a job runs once per block)."""
    if days < 1:
        raise ConfigError(f"days = {days!r}; expected a period of at least one day")
    zone = ZoneInfo(tz)

    def key(moment: datetime) -> str:
        index = (moment.astimezone(zone).date() - date(1970, 1, 1)).days // days
        return f"every{days}d:{index}"

    return key


def _date_key(tz: ZoneInfo) -> Callable[[datetime], str]:
    def key(moment: datetime) -> str:
        return moment.astimezone(tz).date().isoformat()

    return key


def _wall_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _BarSpec:
    strategy: str
    calendar: JobCalendar
    fn: Callable[[datetime], None]
    catch_up: bool
    next_bar: tuple[datetime, datetime] | None = None
    pending: dict[str, datetime] = field(default_factory=dict)  # APScheduler id -> bar close

    @property
    def name(self) -> str:
        return f"bar:{self.strategy}"


@dataclass
class _PeriodicSpec:
    name: str
    trigger: BaseTrigger
    fn: Callable[[datetime], None]
    key_fn: Callable[[datetime], str] | None
    calendar: BarCalendar | None = None


class ServiceScheduler:
    """Runs bar jobs and periodic jobs, each key at most once (ledgered), never dying of a job's error.

    ``clock`` is the service's notion of now (tests inject one); APScheduler fires on the wall
    clock, so a run time ``t`` on ``clock`` fires after ``t - clock()`` of wall time.
    """

    def __init__(
        self,
        ledger: JobLedger,
        *,
        clock: Callable[[], datetime] | None = None,
        on_error: ErrorCallback | None = None,
        catch_up: bool = True,
        misfire_grace_s: float = 3600.0,
        max_workers: int = 4,
    ) -> None:
        if misfire_grace_s <= 0:
            raise ConfigError(
                f"misfire_grace_s = {misfire_grace_s!r}; expected a positive number of seconds "
                "(a small grace silently drops late runs; use e.g. 3600)"
            )
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ConfigError(f"max_workers = {max_workers!r}; expected at least one worker thread")
        self.ledger = ledger
        self._clock = clock or _wall_now
        self._on_error = on_error
        self._catch_up = catch_up
        self._grace = timedelta(seconds=misfire_grace_s)
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": {"type": "threadpool", "max_workers": max_workers}},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(1, round(misfire_grace_s)),
            },
        )
        self._scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self._lock = threading.RLock()
        self._bars: dict[str, _BarSpec] = {}
        self._periodic: dict[str, _PeriodicSpec] = {}
        self._ids = itertools.count(1)
        self._started = False
        self._stopping = False

    # ------------------------------------------------------------------ time

    def now(self) -> datetime:
        """The scheduler's current time (UTC, from the injected clock)."""
        return require_aware(self._clock(), "clock()")

    def _to_wall(self, moment: datetime) -> datetime:
        return _wall_now() + (moment - self.now())

    def _from_wall(self, moment: datetime) -> datetime:
        return moment.astimezone(UTC) + (self.now() - _wall_now())

    # ------------------------------------------------------------------ registration

    def _check_name(self, name: str) -> None:
        if not name or not isinstance(name, str):
            raise ConfigError(f"job name = {name!r}; expected a non-empty string")
        if name in self._periodic or name in {s.name for s in self._bars.values()}:
            raise ConfigError(f"job name = {name!r} is already scheduled; expected a unique name")

    def add_bar_job(
        self,
        strategy: str,
        calendar: JobCalendar,
        fn: Callable[[datetime], None],
        *,
        catch_up: bool | None = None,
    ) -> str:
        """Run ``fn(bar_close)`` at every bar job time of ``calendar``; returns the job name.

        Each bar is ledgered under ``bar_key(strategy, bar_close)`` and runs at most once.
        ``catch_up`` (default: the scheduler's) runs the latest bar missed while the service was
        down once at start-up; older missed bars are recorded as skipped.
        """
        if not strategy or "|" in strategy:
            raise ConfigError(f"strategy = {strategy!r}; expected a non-empty name without '|'")
        spec = _BarSpec(strategy, calendar, fn, self._catch_up if catch_up is None else catch_up)
        with self._lock:
            self._check_name(spec.name)
            self._bars[spec.name] = spec
            if self._started:
                self._settle(spec, self._last_close(spec), startup=True)
        return spec.name

    def add_interval_job(
        self,
        name: str,
        seconds: float,
        fn: Callable[[], None],
        *,
        key_fn: Callable[[datetime], str] | None = None,
    ) -> str:
        """Run ``fn()`` every ``seconds`` (replay stepping, heartbeats).

        Not ledgered unless ``key_fn`` maps the run time to a key; errors are always caught.
        """
        if not seconds > 0:
            raise ConfigError(
                f"seconds = {seconds!r} for job {name!r}; expected a positive interval"
            )
        trigger = IntervalTrigger(seconds=seconds, timezone=UTC)
        self._add_periodic(_PeriodicSpec(name, trigger, lambda _moment: fn(), key_fn))
        return name

    def add_cron_job(
        self,
        name: str,
        cron: dict[str, Any] | str,
        fn: Callable[[datetime], None],
        key_fn: Callable[[datetime], str] | None = None,
        *,
        timezone: str = "UTC",
        calendar: BarCalendar | None = None,
    ) -> str:
        """Run ``fn(now)`` on a cron schedule, once per ``key_fn(now)`` period, across restarts.

        ``cron`` is a crontab line (``"30 17 * * mon-fri"``) or APScheduler ``CronTrigger``
        fields (``{"hour": 17, "minute": 30}``), read in ``timezone``. ``key_fn`` defaults to the
        local date, so a daily job runs once a day. With ``calendar``, non-trading days are passed.
        """
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"timezone = {timezone!r} for job {name!r}; expected an IANA zone such as "
                "'America/New_York'"
            ) from None
        try:
            trigger = (
                CronTrigger.from_crontab(cron, timezone=zone)
                if isinstance(cron, str)
                else CronTrigger(timezone=zone, **cron)
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"cron = {cron!r} for job {name!r} is invalid ({exc}); expected a crontab line "
                "'m h dom mon dow' or CronTrigger fields such as {'hour': 17, 'minute': 30}"
            ) from None
        self._add_periodic(_PeriodicSpec(name, trigger, fn, key_fn or _date_key(zone), calendar))
        return name

    def add_schedule_jobs(
        self,
        config: ScheduleConfig,
        calendar: BarCalendar,
        *,
        daily_report: Callable[[datetime], None] | None = None,
        drift_check: Callable[[datetime], None] | None = None,
        retrain: Callable[[datetime], None] | None = None,
    ) -> list[str]:
        """Add the non-trading jobs ``config`` asks for, at exchange-local times on trading days."""
        tz = str(calendar.tz)
        names: list[str] = []
        for name, at, fn, key_fn in (
            ("daily_report", config.daily_report_at, daily_report, None),
            ("drift_check", config.drift_check_at, drift_check, None),
            (
                "retrain",
                config.retrain_at if config.retrain_every_days else None,
                retrain,
                period_key(config.retrain_every_days, tz) if config.retrain_every_days else None,
            ),
        ):
            if at is None or fn is None:
                continue
            hour, minute = (int(part) for part in at.split(":"))
            cron = {"day_of_week": "mon-fri", "hour": hour, "minute": minute}
            names.append(self.add_cron_job(name, cron, fn, key_fn, timezone=tz, calendar=calendar))
        return names

    def _add_periodic(self, spec: _PeriodicSpec) -> None:
        with self._lock:
            self._check_name(spec.name)
            self._periodic[spec.name] = spec
            self._scheduler.add_job(
                self._run_periodic, spec.trigger, args=(spec.name,), id=spec.name, name=spec.name
            )

    # ------------------------------------------------------------------ lifetime

    def start(self) -> list[JobRun]:
        """Start firing jobs; settle missed bars. Returns the runs a crash left unfinished."""
        with self._lock:
            if self._started:
                raise ConfigError("ServiceScheduler.start() called twice; expected one start")
            self._started = True
            leftovers = self.ledger.unfinished()
            for run in leftovers:
                _LOG.warning(
                    "job %s key %s was claimed at %s and never finished (crash?); not rerun",
                    run.job,
                    run.key,
                    run.claimed_at.isoformat(),
                )
            self._scheduler.start()
            for spec in self._bars.values():
                self._settle(spec, self._last_close(spec), startup=True)
        return leftovers

    def shutdown(self, wait: bool = False) -> None:
        """Stop scheduling; with ``wait=False`` return at once and let a running job finish alone."""
        with self._lock:  # released before waiting: a finishing job takes it to settle
            self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    @property
    def running(self) -> bool:
        """Whether the scheduler is started and not shut down."""
        return bool(self._scheduler.running) and not self._stopping

    def next_runs(self) -> dict[str, datetime | None]:
        """Job name -> next run time (scheduler clock, UTC), None when nothing is scheduled."""
        out: dict[str, datetime | None] = {}
        with self._lock:
            for spec in self._bars.values():
                out[spec.name] = spec.next_bar[1] if spec.next_bar else None
            for name, periodic in self._periodic.items():
                out[name] = self._next_periodic(periodic)
        return out

    def _next_periodic(self, spec: _PeriodicSpec) -> datetime | None:
        if isinstance(spec.trigger, CronTrigger):
            # a time of day: evaluated on the scheduler's clock, trading days only if asked
            moment: datetime | None = self.now()
            previous: datetime | None = None
            for _ in range(_CRON_LOOKAHEAD):
                moment = spec.trigger.get_next_fire_time(previous, moment)
                if moment is None:
                    return None
                if spec.calendar is None or spec.calendar.is_trading_day(moment):
                    return moment.astimezone(UTC)
                previous = moment
                moment = moment + timedelta(seconds=1)
            return None
        # a relative period: APScheduler's wall-clock time, moved onto the scheduler's clock
        job = self._scheduler.get_job(spec.name)
        fire = getattr(job, "next_run_time", None) if job is not None else None
        return self._from_wall(fire) if fire is not None else None

    def next_bar(self, strategy: str) -> tuple[datetime, datetime] | None:
        """``(bar_close, run_at)`` of the next bar scheduled for ``strategy``, if any."""
        spec = self._bars.get(f"bar:{strategy}")
        return spec.next_bar if spec else None

    # ------------------------------------------------------------------ bar jobs

    def _last_close(self, spec: _BarSpec) -> datetime | None:
        key = self.ledger.last_key(spec.name)
        if key is None:
            return None
        try:
            return datetime.fromisoformat(key.split("|", 1)[1])
        except (IndexError, ValueError):
            _LOG.warning("ledger key %r of %s is not a bar key; ignored", key, spec.name)
            return None

    def _past_bars(
        self, spec: _BarSpec, after_close: datetime | None, now: datetime
    ) -> list[tuple[datetime, datetime]]:
        cal = spec.calendar
        if after_close is not None:
            return cal.jobs_between(after_close + cal.offset, now)
        for days in _LOOKBACK_DAYS:  # nothing ledgered: only the latest past bar matters
            found = cal.jobs_between(now - timedelta(days=days), now)
            if found:
                return found[-1:]
        return []

    def _settle(self, spec: _BarSpec, after_close: datetime | None, *, startup: bool) -> None:
        """Deal with bars after ``after_close`` whose time has passed, then schedule the next one.

        All but the latest past bar are recorded as skipped. The latest runs now when catching up
        at start-up (``catch_up``) or, later on, when it is late by less than the misfire grace.
        """
        with self._lock:
            if self._stopping:
                return
            now = self.now()
            try:
                past = self._past_bars(spec, after_close, now)
                if len(past) > 1:
                    skipped = self.ledger.skip_many(
                        spec.name,
                        [bar_key(spec.strategy, close) for close, _ in past[:-1]],
                        "missed: a later bar was already due when this one could run",
                    )
                    _LOG.warning(
                        "%s: %d missed bar(s) from %s to %s recorded as skipped",
                        spec.name,
                        skipped,
                        past[0][0].isoformat(),
                        past[-2][0].isoformat(),
                    )
                if past:
                    close, run_at = past[-1]
                    run_now = spec.catch_up if startup else now - run_at <= self._grace
                    if (
                        run_now
                        and self.ledger.get(spec.name, bar_key(spec.strategy, close)) is None
                    ):
                        self._schedule_bar(spec, close, now)
                        return
                    reason = "catch_up is off" if startup else "later than misfire_grace_s"
                    self.ledger.skip(spec.name, bar_key(spec.strategy, close), f"missed: {reason}")
                close, run_at = spec.calendar.next_job_time(now)
            except (DataError, ConfigError) as exc:
                spec.next_bar = None
                _LOG.error("cannot schedule the next bar of %s: %s", spec.strategy, exc)
                self._report(spec.name, "", exc)
                return
            self._schedule_bar(spec, close, run_at)

    def _schedule_bar(self, spec: _BarSpec, close: datetime, run_at: datetime) -> None:
        job_id = f"{spec.name}#{next(self._ids)}"
        spec.pending[job_id] = close
        spec.next_bar = (close, run_at)
        self._scheduler.add_job(
            self._run_bar,
            DateTrigger(run_date=self._to_wall(run_at), timezone=UTC),
            args=(spec.name, job_id, close),
            id=job_id,
            name=spec.name,
        )

    def _run_bar(self, name: str, job_id: str, close: datetime) -> None:
        spec = self._bars[name]
        with self._lock:
            spec.pending.pop(job_id, None)
            if spec.next_bar is not None and spec.next_bar[0] == close:
                spec.next_bar = None
        try:
            self._execute(name, bar_key(spec.strategy, close), lambda: spec.fn(close))
        finally:
            self._settle(spec, close, startup=False)

    def _on_missed(self, event: JobExecutionEvent) -> None:
        """APScheduler woke too late for a bar (beyond the grace): record it, move on."""
        name = str(event.job_id).split("#", 1)[0]
        spec = self._bars.get(name)
        if spec is None:
            _LOG.warning("job %s missed its run at %s", event.job_id, event.scheduled_run_time)
            return
        with self._lock:
            close = spec.pending.pop(event.job_id, None)
        if close is None:
            return
        self.ledger.skip(name, bar_key(spec.strategy, close), "missed: the process woke too late")
        self._settle(spec, close, startup=False)

    # ------------------------------------------------------------------ running

    def _run_periodic(self, name: str) -> None:
        spec = self._periodic[name]
        now = self.now()
        try:
            if spec.calendar is not None and not spec.calendar.is_trading_day(now):
                _LOG.debug("job %s: %s is not a trading day; passed", name, now.date())
                return
            key = spec.key_fn(now) if spec.key_fn is not None else None
        except Exception as exc:
            _LOG.exception("job %s: cannot decide whether or under which key to run", name)
            self._report(name, "", exc)
            return
        self._execute(name, key, lambda: spec.fn(now))

    def _execute(self, job: str, key: str | None, call: Callable[[], None]) -> None:
        """Claim ``(job, key)``, run, record the outcome; a claimed key is not run again."""
        if key is not None and not self.ledger.claim(job, key):
            _LOG.info("job %s key %s was claimed before; not run again", job, key)
            return
        try:
            call()
        except Exception as exc:
            _LOG.exception("job %s key %s failed", job, key)
            if key is not None:
                self.ledger.finish(job, key, "error", f"{type(exc).__name__}: {exc}")
            self._report(job, key or "", exc)
            return
        if key is not None:
            self.ledger.finish(job, key, "ok")

    def _report(self, job: str, key: str, exc: BaseException) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(job, key, exc)
        except Exception:
            _LOG.exception("on_error callback failed for job %s key %s", job, key)
