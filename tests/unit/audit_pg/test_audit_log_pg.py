"""tradeforge.audit on a REAL PostgreSQL server: the same hash chain as on SQLite (identical
hashes for identical entries), append-only triggers (UPDATE, DELETE, TRUNCATE refused),
same-transaction writes, concurrent appenders, and verify naming the first bad seq after
tampering done with the triggers disabled (as the table owner could).

PostgreSQL comes from ``tradeforge.testing.postgres`` (TRADEFORGE_TEST_POSTGRES_URL or a
throwaway local cluster; skipped with the reason when neither exists); each test gets a fresh
database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tradeforge.audit import (
    GENESIS_HASH,
    AuditError,
    AuditLog,
    Problem,
    append_entry,
    entry_hash,
    verify_chain,
    write_anchor,
)
from tradeforge.audit.log import AuditLogBase, open_audit_log
from tradeforge.audit.pg import PgAuditLog, redact
from tradeforge.core.clock import TestClock
from tradeforge.testing.postgres import fresh_database, require_postgres

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database(require_postgres()) as url:
        yield url


def fill(log: AuditLogBase, clock: TestClock, n: int = 10) -> None:
    for i in range(n):
        log.append("order.submitted", {"i": i, "qty": Decimal("1.5"), "name": "é"}, f"cid-{i}")
        clock.advance(timedelta(seconds=1))


@pytest.fixture
def log(pg_url: str) -> Iterator[PgAuditLog]:
    clock = TestClock(T0)
    out = PgAuditLog(pg_url, clock=clock)
    fill(out, clock)
    yield out
    out.close()


_OPEN: list[psycopg.Connection[Any]] = []


@pytest.fixture(autouse=True)
def _close_raw() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def attacker(url: str) -> psycopg.Connection[Any]:
    """A second connection that tampers as the table owner can: triggers disabled first."""
    conn = psycopg.connect(url, autocommit=True)
    _OPEN.append(conn)
    conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
    return conn


def test_the_chain_is_the_same_as_on_sqlite(log: PgAuditLog, tmp_path: Path) -> None:
    clock = TestClock(T0)
    with AuditLog(tmp_path / "state.db", clock=clock) as lite:
        fill(lite, clock)
        assert log.entries() == lite.entries()  # every field, every hash
        assert log.head() == lite.head()
    entries = log.entries()
    assert [e.seq for e in entries] == list(range(1, 11))
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[0].payload == '{"i":0,"name":"\\u00e9","qty":"1.5"}'
    assert entries[3].ts == "2024-01-02T14:30:03.000000Z"
    assert entries[0].hash == entry_hash(1, entries[0].ts, "order.submitted", "cid-0",
                                         entries[0].payload, GENESIS_HASH)  # fmt: skip
    assert [e.seq for e in log.entries(last=3)] == [8, 9, 10]
    assert [e.seq for e in log.entries(correlation_id="cid-4")] == [5]
    assert [e.seq for e in log.entries(since_seq=9, kind="order.submitted")] == [9, 10]
    report = verify_chain(log.connection)
    assert (report.ok, report.entries, report.head_seq) == (True, 10, 10)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET kind = 'x' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 10",
        "TRUNCATE audit_log",
    ],
)
def test_triggers_refuse_update_delete_and_truncate(log: PgAuditLog, statement: str) -> None:
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
        log.connection.execute(statement)
    assert log.head()[0] == 10
    assert len(log.entries()) == 10
    assert verify_chain(log.connection).ok


def test_entry_commits_with_the_callers_change_or_not_at_all(log: PgAuditLog) -> None:
    log.connection.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
    with log.transaction() as cur:
        cur.execute("INSERT INTO orders VALUES ('o1')")
        append_entry(cur, "order.submitted", {"id": "o1"}, ts=T0, correlation_id="o1")

    def failing_write() -> None:
        with log.transaction() as cur:
            cur.execute("INSERT INTO orders VALUES ('o2')")
            append_entry(cur, "order.submitted", {"id": "o2"}, ts=T0, correlation_id="o2")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_write()
    assert [r[0] for r in log.connection.execute("SELECT id FROM orders")] == ["o1"]
    assert [e.correlation_id for e in log.entries(last=1)] == ["o1"]
    assert log.head()[0] == 11
    with (
        pytest.raises(AuditError, match=r"write failed: .*duplicate key"),
        log.transaction() as cur,
    ):
        cur.execute("INSERT INTO orders VALUES ('o1')")
    assert log.append("x.y", {}).seq == 12  # the connection is usable after a failed write
    assert verify_chain(log.connection).ok


def test_append_outside_a_transaction_is_refused(log: PgAuditLog) -> None:
    with log.connection.cursor() as cur, pytest.raises(AuditError, match="outside a transaction"):
        append_entry(cur, "x.y", {}, ts=T0)


def test_group_commit_is_all_or_nothing(log: PgAuditLog) -> None:
    out = log.append_batch([("risk.check", {"n": n}, f"b{n}") for n in range(5)])
    assert [e.seq for e in out] == [11, 12, 13, 14, 15]
    with pytest.raises(AuditError, match="audit kind = 'BAD'"):
        log.append_batch([("risk.check", {"n": 1}, ""), ("BAD", {}, "")])
    assert log.head() == (15, out[-1].hash)
    assert verify_chain(log.connection).ok


def test_concurrent_appenders_queue_on_the_head(pg_url: str) -> None:
    """Four connections append 25 entries each at once: one chain 1..100, nothing lost."""
    PgAuditLog(pg_url).close()
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(k: int) -> None:
        try:
            with PgAuditLog(pg_url) as mine:
                start.wait(10)
                for i in range(25):
                    mine.append("risk.check", {"k": k, "i": i}, f"w{k}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with PgAuditLog(pg_url, create=False) as log:
        entries = log.entries()
        assert [e.seq for e in entries] == list(range(1, 101))
        assert sorted(e.correlation_id for e in entries) == sorted([f"w{k}" for k in range(4)] * 25)
        report = verify_chain(log.connection)
        assert (report.ok, report.entries) == (True, 100)


def test_edited_payload_is_caught_at_its_seq(log: PgAuditLog) -> None:
    attacker(log.url).execute("UPDATE audit_log SET payload = '{\"i\":4}' WHERE seq = 5")
    report = verify_chain(log.connection)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 5, Problem.EDITED)
    assert report.entries == 4


def test_edit_with_recomputed_hash_breaks_the_next_link(log: PgAuditLog) -> None:
    conn = attacker(log.url)
    row = conn.execute("SELECT seq, ts, kind, correlation_id, prev_hash FROM audit_log "
                       "WHERE seq = 5").fetchone()  # fmt: skip
    assert row is not None
    seq, ts, kind, cid, prev = row
    forged = '{"i":4,"qty":"0"}'
    conn.execute(
        "UPDATE audit_log SET payload = %s, hash = %s WHERE seq = 5",
        (forged, entry_hash(seq, ts, kind, cid, forged, prev)),
    )
    report = verify_chain(log.connection)
    assert (report.first_bad_seq, report.problem) == (6, Problem.BROKEN_LINK)


def test_deleted_entry_and_dropped_tail_are_caught(log: PgAuditLog) -> None:
    conn = attacker(log.url)
    conn.execute("DELETE FROM audit_log WHERE seq >= 8")
    report = verify_chain(log.connection)
    assert (report.first_bad_seq, report.problem, report.last_seq) == (8, Problem.TRUNCATED, 7)
    conn.execute("DELETE FROM audit_log WHERE seq = 4")
    report = verify_chain(log.connection)
    assert (report.first_bad_seq, report.problem) == (4, Problem.MISSING)
    assert "seq 4 is missing" in report.message


def test_reordered_entries_are_caught_at_the_first_swapped_seq(log: PgAuditLog) -> None:
    conn = attacker(log.url)
    conn.execute("UPDATE audit_log SET seq = -1 WHERE seq = 3")
    conn.execute("UPDATE audit_log SET seq = 3 WHERE seq = 7")
    conn.execute("UPDATE audit_log SET seq = 7 WHERE seq = -1")
    report = verify_chain(log.connection)
    assert (report.first_bad_seq, report.problem) == (3, Problem.EDITED)


def test_truncation_with_a_rewritten_head_is_caught_by_the_anchor(
    log: PgAuditLog, tmp_path: Path
) -> None:
    anchor = write_anchor(log, tmp_path / "audit.anchor")
    assert (anchor.seq, anchor.hash) == log.head()
    conn = attacker(log.url)
    conn.execute("DELETE FROM audit_log WHERE seq >= 9")
    conn.execute("UPDATE audit_head SET seq = 8, hash = (SELECT hash FROM audit_log "
                 "WHERE seq = 8)")  # fmt: skip
    assert verify_chain(log.connection).ok  # the database alone looks consistent
    report = verify_chain(log.connection, anchor)
    assert (report.first_bad_seq, report.problem) == (9, Problem.TRUNCATED)


def test_verify_reads_one_snapshot_inside_the_callers_transaction(log: PgAuditLog) -> None:
    with log.transaction():
        report = verify_chain(log.connection)  # the caller's open transaction is left open
        assert log.connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert report.ok
    assert log.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_reopen_continues_the_chain_and_read_only_open_writes_nothing(pg_url: str) -> None:
    with pytest.raises(AuditError, match="holds no audit log"):
        PgAuditLog(pg_url, create=False)
    with open_audit_log(pg_url, clock=TestClock(T0)) as log:
        assert isinstance(log, PgAuditLog)
        assert log.append("x.y", {}).seq == 1
    with open_audit_log(pg_url, clock=TestClock(T0)) as log:
        assert log.append("x.y", {"b": 2}).seq == 2
    with open_audit_log(pg_url, create=False) as log:
        assert log.head()[0] == 2
        assert verify_chain(log.connection).ok  # type: ignore[attr-defined]


def test_open_audit_log_takes_a_path_or_a_url(tmp_path: Path) -> None:
    with open_audit_log(tmp_path / "a.db") as lite:
        assert isinstance(lite, AuditLog)
    with open_audit_log(str(tmp_path / "b.db")) as lite:
        assert isinstance(lite, AuditLog)
    bad = "postgresql://u:secret@127.0.0.1:1/db"
    with pytest.raises(AuditError, match="cannot connect") as info:
        open_audit_log(bad)
    assert "secret" not in str(info.value)
    assert redact(bad) == "postgresql://u:***@127.0.0.1:1/db"
    with pytest.raises(AuditError, match="expected an sqlite3 or psycopg connection"):
        verify_chain(object())  # type: ignore[arg-type]
