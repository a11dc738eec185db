"""JobLedger: each (job, key) claimed once, durable across a reopen, safe across threads."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tradeforge.serve.jobs import JobLedger, LedgerError


class _Ticks:
    """A clock that moves one second per call, so claim order is visible in the timestamps."""

    def __init__(self) -> None:
        self.now = datetime(2024, 11, 29, 18, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def test_claim_once_finish_and_get(tmp_path: Path) -> None:
    with JobLedger(tmp_path / "jobs.db", clock=_Ticks()) as ledger:
        assert ledger.claim("bar:ppo", "ppo|2024-11-29T18:00:00+00:00")
        assert not ledger.claim("bar:ppo", "ppo|2024-11-29T18:00:00+00:00")
        run = ledger.get("bar:ppo", "ppo|2024-11-29T18:00:00+00:00")
        assert run is not None
        assert (run.status, run.finished) == ("running", False)
        assert run.claimed_at == datetime(2024, 11, 29, 18, 0, 1, tzinfo=UTC)
        ledger.finish("bar:ppo", "ppo|2024-11-29T18:00:00+00:00", "ok", "3 orders")
        done = ledger.get("bar:ppo", "ppo|2024-11-29T18:00:00+00:00")
        assert done is not None
        assert (done.status, done.detail) == ("ok", "3 orders")
        # ticks: 1 = claim, 2 = the refused claim, 3 = finish
        assert done.finished_at == datetime(2024, 11, 29, 18, 0, 3, tzinfo=UTC)
        # a finished key still cannot be claimed again
        assert not ledger.claim("bar:ppo", "ppo|2024-11-29T18:00:00+00:00")
        assert ledger.get("bar:ppo", "other") is None
        # the same key under another job is a different run
        assert ledger.claim("daily_report", "ppo|2024-11-29T18:00:00+00:00")


def test_claims_survive_a_restart_and_unfinished_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "state" / "jobs.db"
    first = JobLedger(path)
    assert first.claim("bar:ppo", "k1")
    first.finish("bar:ppo", "k1", "ok")
    assert first.claim("bar:ppo", "k2")  # "crash" before finishing k2
    first.close()
    second = JobLedger(path)
    assert not second.claim("bar:ppo", "k1")
    assert not second.claim("bar:ppo", "k2")
    assert [(r.job, r.key, r.status) for r in second.unfinished()] == [("bar:ppo", "k2", "running")]
    second.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_runs_newest_first_with_filter_and_limit(tmp_path: Path) -> None:
    with JobLedger(tmp_path / "jobs.db", clock=_Ticks()) as ledger:
        for key in ("a", "b", "c"):
            ledger.claim("bar:ppo", key)
            ledger.finish("bar:ppo", key, "error" if key == "b" else "ok", f"detail {key}")
        ledger.claim("drift", "2024-11-29")
        assert [r.key for r in ledger.runs()] == ["2024-11-29", "c", "b", "a"]
        assert [r.key for r in ledger.runs("bar:ppo", limit=2)] == ["c", "b"]
        errored = ledger.runs("bar:ppo")[1]
        assert (errored.status, errored.detail) == ("error", "detail b")
        assert ledger.last_key("bar:ppo") == "c"
        assert ledger.last_key("nothing") is None
        assert [r.job for r in ledger.unfinished()] == ["drift"]


def test_skip_records_a_finished_run_once(tmp_path: Path) -> None:
    with JobLedger(tmp_path / "jobs.db") as ledger:
        assert ledger.skip("bar:ppo", "k", "missed")
        assert not ledger.skip("bar:ppo", "k", "again")
        assert not ledger.claim("bar:ppo", "k")
        run = ledger.get("bar:ppo", "k")
        assert run is not None
        assert (run.status, run.detail, run.finished) == ("skipped", "missed", True)
        assert ledger.unfinished() == []
        assert ledger.skip_many("bar:ppo", ["k", "k2", "k3"], "outage") == 2
        assert ledger.skip_many("bar:ppo", []) == 0
        assert [r.status for r in ledger.runs("bar:ppo")] == ["skipped"] * 3


def test_misuse_is_an_error_naming_the_run(tmp_path: Path) -> None:
    with JobLedger(tmp_path / "jobs.db") as ledger:
        with pytest.raises(LedgerError, match=r"job 'j' key 'k'; expected 'ok' or 'error'"):
            ledger.finish("j", "k", "done")  # type: ignore[arg-type]
        with pytest.raises(LedgerError, match=r"never claimed"):
            ledger.finish("j", "k", "ok")
        ledger.claim("j", "k")
        ledger.finish("j", "k", "ok")
        with pytest.raises(LedgerError, match=r"already ok"):
            ledger.finish("j", "k", "error")
        with pytest.raises(LedgerError, match=r"limit = 0"):
            ledger.runs(limit=0)
    with pytest.raises(LedgerError, match=r"is a directory"):
        JobLedger(tmp_path)


def test_concurrent_claims_have_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    ledgers = [JobLedger(path), JobLedger(path)]  # two "processes" on one file
    wins: list[tuple[int, str]] = []
    barrier = threading.Barrier(8)

    def worker(index: int) -> None:
        ledger = ledgers[index % 2]
        barrier.wait()
        for n in range(25):
            key = f"k{n}"
            if ledger.claim("bar:ppo", key):
                wins.append((index, key))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(key for _, key in wins) == sorted(f"k{n}" for n in range(25))
    for ledger in ledgers:
        ledger.close()
