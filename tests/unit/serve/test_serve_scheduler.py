"""ServiceScheduler: bar jobs fire once per bar, survive restarts, catch up, and outlive errors.

Timing tests use a tiny calendar whose bars close a fraction of a second apart (real exchange
bars are hours apart); catch-up tests use the real XNYS calendar with an injected clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tradeforge.core.config import validate_config
from tradeforge.core.errors import ConfigError
from tradeforge.serve.calendar import BarCalendar
from tradeforge.serve.jobs import JobLedger
from tradeforge.serve.scheduler import ScheduleConfig, ServiceScheduler, bar_key, period_key

FAR = datetime(2100, 1, 1, tzinfo=UTC)


class _Bars:
    """A calendar of ``count`` bars ``step_s`` apart from ``first``; then one bar far away."""

    def __init__(
        self,
        first: datetime,
        step_s: float,
        count: int,
        offset_s: float = 0.02,
        gaps: dict[int, float] | None = None,
    ) -> None:
        starts, moment = [], first
        for index in range(count):
            moment += timedelta(seconds=(gaps or {}).get(index, step_s if index else 0.0))
            starts.append(moment)
        self.closes = [*starts, FAR]
        self.offset = timedelta(seconds=offset_s)

    def next_job_time(self, after: datetime) -> tuple[datetime, datetime]:
        close = next(c for c in self.closes if c + self.offset > after)
        return close, close + self.offset

    def jobs_between(self, after: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
        return [(c, c + self.offset) for c in self.closes if after < c + self.offset <= until]


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[JobLedger]:
    with JobLedger(tmp_path / "jobs.db") as opened:
        yield opened


def _soon(seconds: float = 0.3) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_bar_job_fires_once_per_bar_on_time(ledger: JobLedger) -> None:
    bars = _Bars(_soon(), step_s=0.25, count=4)
    seen: list[tuple[datetime, datetime]] = []
    scheduler = ServiceScheduler(ledger)
    scheduler.add_bar_job("ppo", bars, lambda close: seen.append((close, datetime.now(UTC))))
    scheduler.start()
    try:
        assert _wait_for(lambda: len(seen) == 4)
        time.sleep(0.1)
    finally:
        scheduler.shutdown()
    assert [close for close, _ in seen] == bars.closes[:4]
    for close, fired in seen:
        assert close + bars.offset <= fired < close + bars.offset + timedelta(seconds=1)
    runs = ledger.runs("bar:ppo")
    assert sorted(r.key for r in runs) == sorted(bar_key("ppo", c) for c in bars.closes[:4])
    assert {r.status for r in runs} == {"ok"}


def test_restart_does_not_rerun_a_claimed_bar(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    bars = _Bars(_soon(0.2), step_s=0.4, count=2)
    first_calls: list[datetime] = []
    with JobLedger(path) as ledger:
        first = ServiceScheduler(ledger)
        first.add_bar_job("ppo", bars, first_calls.append)
        first.start()
        assert _wait_for(lambda: len(first_calls) == 1)
        first.shutdown()
    # the restarted service finds bar 0 as the latest past bar: claimed, so not run again
    second_calls: list[datetime] = []
    with JobLedger(path) as ledger:
        second = ServiceScheduler(ledger, catch_up=True)
        second.add_bar_job("ppo", bars, second_calls.append)
        second.start()
        try:
            assert _wait_for(lambda: len(second_calls) == 1)
            time.sleep(0.1)
        finally:
            second.shutdown()
        assert first_calls == [bars.closes[0]]
        assert second_calls == [bars.closes[1]]
        assert [r.status for r in ledger.runs("bar:ppo")] == ["ok", "ok"]


def test_two_schedulers_on_one_ledger_run_each_bar_once(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    bars = _Bars(_soon(), step_s=0.3, count=3)
    calls: list[tuple[str, datetime]] = []
    lock = threading.Lock()
    ledgers = [JobLedger(path), JobLedger(path)]
    schedulers = []
    for index, ledger in enumerate(ledgers):
        scheduler = ServiceScheduler(ledger)

        def record(close: datetime, who: str = f"s{index}") -> None:
            with lock:
                calls.append((who, close))

        scheduler.add_bar_job("ppo", bars, record)
        schedulers.append(scheduler)
    for scheduler in schedulers:
        scheduler.start()
    try:
        assert _wait_for(lambda: len(calls) >= 3)
        time.sleep(0.2)
    finally:
        for scheduler in schedulers:
            scheduler.shutdown()
        for ledger in ledgers:
            ledger.close()
    assert sorted(close for _, close in calls) == bars.closes[:3]


def test_error_is_recorded_reported_and_next_bar_runs(ledger: JobLedger) -> None:
    bars = _Bars(_soon(), step_s=0.2, count=2)
    errors: list[tuple[str, str, str]] = []
    done: list[datetime] = []

    def decide(close: datetime) -> None:
        if close == bars.closes[0]:
            raise RuntimeError("feed stale")
        done.append(close)

    scheduler = ServiceScheduler(
        ledger, on_error=lambda job, key, exc: errors.append((job, key, str(exc)))
    )
    scheduler.add_bar_job("ppo", bars, decide)
    scheduler.start()
    try:
        assert _wait_for(lambda: len(done) == 1)
    finally:
        scheduler.shutdown()
    first_key = bar_key("ppo", bars.closes[0])
    assert errors == [("bar:ppo", first_key, "feed stale")]
    failed = ledger.get("bar:ppo", first_key)
    assert failed is not None
    assert (failed.status, failed.detail) == ("error", "RuntimeError: feed stale")
    ok = ledger.get("bar:ppo", bar_key("ppo", bars.closes[1]))
    assert ok is not None
    assert ok.status == "ok"
    assert done == [bars.closes[1]]


def test_overrun_skips_bars_that_were_due_meanwhile(ledger: JobLedger) -> None:
    # bar 4 comes long after bar 3, so only bars 1 to 3 can fall due while bar 0 runs
    bars = _Bars(_soon(), step_s=0.1, count=5, gaps={4: 1.5})
    seen: list[datetime] = []

    def slow(close: datetime) -> None:
        seen.append(close)
        if close == bars.closes[0]:
            time.sleep(0.4)  # bars 1, 2 and 3 become due while bar 0 runs

    scheduler = ServiceScheduler(ledger)
    scheduler.add_bar_job("ppo", bars, slow)
    scheduler.start()
    try:
        assert _wait_for(lambda: len(seen) >= 3)
    finally:
        scheduler.shutdown()
    assert seen == [bars.closes[0], bars.closes[3], bars.closes[4]]
    status = {r.key: r.status for r in ledger.runs("bar:ppo")}
    assert [status[bar_key("ppo", c)] for c in bars.closes[:5]] == [
        "ok",
        "skipped",
        "skipped",
        "ok",
        "ok",
    ]


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("catch_up", [True, False])
def test_start_up_runs_only_the_latest_missed_bar(ledger: JobLedger, catch_up: bool) -> None:
    cal = BarCalendar("XNYS", "1d", offset_s=60)
    # the service last ran the 2024-11-25 bar, then was down until Monday 2024-12-02 10:00 ET
    ledger.claim("bar:ppo", bar_key("ppo", _utc(2024, 11, 25, 21)))
    ledger.finish("bar:ppo", bar_key("ppo", _utc(2024, 11, 25, 21)), "ok")
    calls: list[datetime] = []
    scheduler = ServiceScheduler(ledger, clock=lambda: _utc(2024, 12, 2, 15), catch_up=catch_up)
    scheduler.add_bar_job("ppo", cal, calls.append)
    scheduler.start()
    try:
        if catch_up:
            assert _wait_for(lambda: len(calls) == 1)
        assert _wait_for(lambda: scheduler.next_runs()["bar:ppo"] == _utc(2024, 12, 2, 21, 1))
    finally:
        scheduler.shutdown()
    assert calls == ([_utc(2024, 11, 29, 18)] if catch_up else [])
    assert scheduler.next_bar("ppo") == (_utc(2024, 12, 2, 21), _utc(2024, 12, 2, 21, 1))
    status = {r.key: (r.status, r.detail) for r in ledger.runs("bar:ppo")}
    assert status[bar_key("ppo", _utc(2024, 11, 26, 21))][0] == "skipped"
    assert status[bar_key("ppo", _utc(2024, 11, 27, 21))][0] == "skipped"
    latest = status[bar_key("ppo", _utc(2024, 11, 29, 18))]
    assert latest == (("ok", "") if catch_up else ("skipped", "missed: catch_up is off"))
    assert len(status) == 4  # Thanksgiving (11-28) has no bar, so nothing is recorded for it


def test_start_reports_unfinished_runs_and_does_not_rerun_them(ledger: JobLedger) -> None:
    cal = BarCalendar("XNYS", "1d", offset_s=60)
    ledger.claim("bar:ppo", bar_key("ppo", _utc(2024, 11, 29, 18)))  # crashed mid-bar
    calls: list[datetime] = []
    scheduler = ServiceScheduler(ledger, clock=lambda: _utc(2024, 11, 29, 19))
    scheduler.add_bar_job("ppo", cal, calls.append)
    leftovers = scheduler.start()
    time.sleep(0.2)
    scheduler.shutdown()
    assert [(r.job, r.key) for r in leftovers] == [
        ("bar:ppo", bar_key("ppo", _utc(2024, 11, 29, 18)))
    ]
    assert calls == []
    assert scheduler.next_runs()["bar:ppo"] == _utc(2024, 12, 2, 21, 1)


def test_periodic_job_with_key_runs_once_per_period_across_restart(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    fires: list[int] = []
    runs: list[datetime] = []

    def key_fn(moment: datetime) -> str:
        fires.append(1)
        return "2024-11-29"

    for _restart in range(2):
        with JobLedger(path) as ledger:
            scheduler = ServiceScheduler(ledger)
            before = len(fires)
            scheduler.add_interval_job(
                "report", 0.05, lambda: runs.append(datetime.now(UTC)), key_fn=key_fn
            )
            scheduler.start()
            try:
                assert _wait_for(lambda before=before: len(fires) >= before + 3)
            finally:
                scheduler.shutdown()
            assert [r.status for r in ledger.runs("report")] == ["ok"]
    assert len(runs) == 1


def test_interval_errors_are_reported_and_job_keeps_firing(ledger: JobLedger) -> None:
    calls: list[int] = []
    errors: list[tuple[str, str]] = []

    def beat() -> None:
        calls.append(1)
        raise ValueError("broker down")

    scheduler = ServiceScheduler(
        ledger, on_error=lambda job, key, exc: errors.append((job, str(exc)))
    )
    scheduler.add_interval_job("heartbeat", 0.05, beat)
    scheduler.start()
    try:
        assert _wait_for(lambda: len(calls) >= 3)
    finally:
        scheduler.shutdown()
    assert errors[:3] == [("heartbeat", "broker down")] * 3
    assert ledger.runs() == []  # no key_fn: heartbeats are not ledgered


def test_cron_job_runs_once_per_key(ledger: JobLedger) -> None:
    keys: list[str] = []
    runs: list[datetime] = []

    def key_fn(moment: datetime) -> str:
        keys.append(moment.isoformat())
        return moment.date().isoformat()

    scheduler = ServiceScheduler(ledger)
    scheduler.add_cron_job("drift_check", {"second": "*"}, runs.append, key_fn)
    scheduler.start()
    try:
        assert _wait_for(lambda: len(keys) >= 2, timeout=4)
    finally:
        scheduler.shutdown()
    if len({k[:10] for k in keys}) == 1:  # not run across midnight UTC
        assert len(runs) == 1
    assert [r.status for r in ledger.runs("drift_check")] == ["ok"] * len(runs)


def test_shutdown_returns_promptly_with_a_job_running(ledger: JobLedger) -> None:
    release = threading.Event()
    started = threading.Event()

    finished = threading.Event()

    def busy(close: datetime) -> None:
        started.set()
        release.wait(5)
        finished.set()

    scheduler = ServiceScheduler(ledger)
    scheduler.add_bar_job("ppo", _Bars(_soon(0.05), 1.0, 1), busy)
    scheduler.start()
    assert started.wait(3)
    began = time.monotonic()
    scheduler.shutdown(wait=False)
    elapsed = time.monotonic() - began
    assert not scheduler.running
    release.set()
    assert finished.wait(3)
    assert elapsed < 0.5
    # the job that was running still finishes and is recorded
    assert _wait_for(lambda: [r.status for r in ledger.runs("bar:ppo")] == ["ok"])


def test_next_runs_lists_every_job(ledger: JobLedger) -> None:
    cal = BarCalendar("XNYS", "1d", offset_s=60)
    scheduler = ServiceScheduler(ledger, clock=lambda: _utc(2024, 11, 29, 18, 30))
    scheduler.add_bar_job("ppo", cal, lambda close: None, catch_up=False)
    scheduler.add_interval_job("heartbeat", 3600, lambda: None)
    config = ScheduleConfig(retrain_every_days=7)
    names = scheduler.add_schedule_jobs(
        config,
        cal,
        daily_report=lambda now: None,
        drift_check=lambda now: None,
        retrain=lambda now: None,
    )
    assert names == ["daily_report", "drift_check", "retrain"]
    scheduler.start()
    try:
        runs = scheduler.next_runs()
    finally:
        scheduler.shutdown()
    assert runs["bar:ppo"] == _utc(2024, 12, 2, 21, 1)
    assert set(runs) == {"bar:ppo", "heartbeat", "daily_report", "drift_check", "retrain"}
    # periodic jobs run on the wall clock; reported on the scheduler's clock: about an hour ahead
    heartbeat = runs["heartbeat"]
    assert heartbeat is not None
    assert abs((heartbeat - _utc(2024, 11, 29, 19, 30)).total_seconds()) < 5
    # cron jobs: exchange-local times of day, trading days only
    assert runs["daily_report"] == _utc(2024, 11, 29, 22, 30)
    assert runs["drift_check"] == _utc(2024, 11, 29, 22, 45)
    assert runs["retrain"] == _utc(2024, 11, 29, 23, 0)


def test_cron_next_run_skips_non_trading_days(ledger: JobLedger) -> None:
    cal = BarCalendar("XNYS", "1d", offset_s=60)
    # Wednesday before Thanksgiving, after the report time: next report is Friday, not Thursday
    scheduler = ServiceScheduler(ledger, clock=lambda: _utc(2024, 11, 27, 23, 0))
    scheduler.add_cron_job(
        "daily_report",
        "30 17 * * mon-fri",
        lambda now: None,
        timezone="America/New_York",
        calendar=cal,
    )
    scheduler.add_cron_job(
        "any_day", "30 17 * * mon-fri", lambda now: None, timezone="America/New_York"
    )
    runs = scheduler.next_runs()
    assert runs["daily_report"] == _utc(2024, 11, 29, 22, 30)
    assert runs["any_day"] == _utc(2024, 11, 28, 22, 30)


def test_config_and_registration_errors(ledger: JobLedger) -> None:
    with pytest.raises(ConfigError, match=r"frequency.*'7x'"):
        validate_config(ScheduleConfig, {"frequency": "7x"})
    with pytest.raises(ConfigError, match=r"daily_report_at.*'25:00'.*HH:MM"):
        validate_config(ScheduleConfig, {"daily_report_at": "25:00"})
    with pytest.raises(ConfigError, match=r"unknown key"):
        validate_config(ScheduleConfig, {"exchange": "XNYS", "jobs": {}})
    config = validate_config(ScheduleConfig, {"frequency": "1h", "offset_s": 30, "catch_up": False})
    assert config.calendar().bar_closes(date(2024, 11, 29), date(2024, 11, 29))[-1] == _utc(
        2024, 11, 29, 18
    )
    with pytest.raises(ConfigError, match=r"misfire_grace_s = 0"):
        ServiceScheduler(ledger, misfire_grace_s=0)
    with pytest.raises(ConfigError, match=r"max_workers = 0"):
        ServiceScheduler(ledger, max_workers=0)
    scheduler = ServiceScheduler(ledger)
    scheduler.add_interval_job("heartbeat", 1, lambda: None)
    with pytest.raises(ConfigError, match=r"job name = 'heartbeat' is already scheduled"):
        scheduler.add_interval_job("heartbeat", 1, lambda: None)
    with pytest.raises(ConfigError, match=r"seconds = 0 for job 'x'"):
        scheduler.add_interval_job("x", 0, lambda: None)
    with pytest.raises(ConfigError, match=r"cron = 'every day' for job 'y' is invalid"):
        scheduler.add_cron_job("y", "every day", lambda now: None)
    with pytest.raises(ConfigError, match=r"timezone = 'Mars/Base'"):
        scheduler.add_cron_job("z", {"hour": 1}, lambda now: None, timezone="Mars/Base")
    with pytest.raises(ConfigError, match=r"strategy = 'a\|b'"):
        scheduler.add_bar_job("a|b", BarCalendar(), lambda close: None)


def test_period_key_blocks_of_days() -> None:
    weekly = period_key(7)
    monday = _utc(2024, 12, 2, 12)
    # blocks of 7 days counted from 1970-01-01 (a Thursday)
    assert weekly(monday) == weekly(_utc(2024, 11, 28, 0)) == "every7d:2865"
    assert weekly(_utc(2024, 12, 4, 23, 59)) == "every7d:2865"
    assert weekly(_utc(2024, 12, 5, 0)) == "every7d:2866"
    # the day is the local one: 2024-12-05 03:00 UTC is still Dec 4th in New York
    assert period_key(7, "America/New_York")(_utc(2024, 12, 5, 3)) == "every7d:2865"
    with pytest.raises(ConfigError, match=r"days = 0"):
        period_key(0)


def test_first_start_with_empty_ledger_catches_up_only_the_latest_bar(ledger: JobLedger) -> None:
    cal = BarCalendar("XNYS", "1d", offset_s=60)
    calls: list[datetime] = []
    scheduler = ServiceScheduler(ledger, clock=lambda: _utc(2024, 11, 30, 12))  # a Saturday
    scheduler.add_bar_job("ppo", cal, calls.append)
    scheduler.start()
    try:
        assert _wait_for(lambda: len(calls) == 1)
        assert _wait_for(lambda: scheduler.next_runs()["bar:ppo"] == _utc(2024, 12, 2, 21, 1))
    finally:
        scheduler.shutdown()
    assert calls == [_utc(2024, 11, 29, 18)]
    assert [(r.key, r.status) for r in ledger.runs()] == [
        (bar_key("ppo", _utc(2024, 11, 29, 18)), "ok")
    ]


def test_bar_run_later_than_the_grace_is_skipped_and_the_next_bar_runs(ledger: JobLedger) -> None:
    # one worker: while "hog" holds it, ppo's first bar waits past the 1 s grace and is missed
    start = _soon(0.2)
    hog = _Bars(start, 1.0, 1, offset_s=0)
    bars = _Bars(start + timedelta(seconds=0.05), 1.9, 2, offset_s=0)
    calls: list[datetime] = []
    scheduler = ServiceScheduler(ledger, misfire_grace_s=1, max_workers=1)
    scheduler.add_bar_job("hog", hog, lambda close: time.sleep(1.3))
    scheduler.add_bar_job("ppo", bars, calls.append)
    scheduler.start()
    try:
        assert _wait_for(lambda: len(calls) == 1)
    finally:
        scheduler.shutdown()
    assert calls == [bars.closes[1]]
    missed = ledger.get("bar:ppo", bar_key("ppo", bars.closes[0]))
    assert missed is not None
    assert (missed.status, missed.detail) == ("skipped", "missed: the process woke too late")
