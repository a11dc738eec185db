"""tradeforge.audit: the hash chain, same-transaction writes, group commits, and verify catching
every kind of tampering (edit, delete, reorder, truncate, rewritten head) with the first bad
seq; the anchor file; Parquet export."""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import tradeforge.audit
from tradeforge.audit import (
    GENESIS_HASH,
    AuditError,
    AuditLog,
    Problem,
    append_entry,
    canonical_json,
    entry_hash,
    export_parquet,
    read_anchor,
    verify_chain,
    write_anchor,
)
from tradeforge.core.clock import TestClock
from tradeforge.core.errors import TradeforgeError

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    clock = TestClock(T0)
    out = AuditLog(tmp_path / "state.db", clock=clock)
    for i in range(10):
        out.append("order.submitted", {"i": i, "qty": Decimal("1.5")}, f"cid-{i}")
        clock.advance(timedelta(seconds=1))
    yield out
    out.close()


_OPEN: list[sqlite3.Connection] = []


@pytest.fixture(autouse=True)
def _close_raw() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def raw(path: Path) -> sqlite3.Connection:
    """A second connection that tampers like an attacker: triggers dropped first."""
    conn = sqlite3.connect(path, isolation_level=None)
    _OPEN.append(conn)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    return conn


def test_entries_chain_by_hash_over_canonical_fields(log: AuditLog) -> None:
    entries = log.entries()
    assert [e.seq for e in entries] == list(range(1, 11))
    first = entries[0]
    assert first.prev_hash == GENESIS_HASH
    assert first.ts == "2024-01-02T14:30:00.000000Z"
    assert first.payload == '{"i":0,"qty":"1.5"}'
    text = "\x1f".join(["1", first.ts, "order.submitted", "cid-0", first.payload, GENESIS_HASH])
    assert first.hash == hashlib.sha256(text.encode()).hexdigest()
    assert first.hash == entry_hash(1, first.ts, first.kind, "cid-0", first.payload, GENESIS_HASH)
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    assert log.head() == (10, entries[-1].hash)
    report = verify_chain(log.connection)
    assert report.ok
    assert report.entries == 10
    assert report.first_bad_seq is None


def test_canonical_json_is_sorted_ascii_and_refuses_nan() -> None:
    assert canonical_json({"b": 1, "a": "é\x1f", "t": T0}) == (
        '{"a":"\\u00e9\\u001f","b":1,"t":"2024-01-02T14:30:00+00:00"}'
    )
    with pytest.raises(AuditError, match="expected JSON values"):
        canonical_json({"x": float("nan")})
    with pytest.raises(AuditError, match="expected a mapping"):
        canonical_json([1, 2])  # type: ignore[arg-type]


def test_bad_kind_and_correlation_id_are_refused(log: AuditLog) -> None:
    with pytest.raises(AuditError, match=r"audit kind = 'Bad Kind'; expected 1 to 64"):
        log.append("Bad Kind", {})
    with pytest.raises(AuditError, match=r"correlation_id = 'a\\x1fb'; expected at most 128"):
        log.append("ok.kind", {}, "a\x1fb")
    assert log.head()[0] == 10  # nothing written
    assert issubclass(AuditError, TradeforgeError)


def test_triggers_refuse_update_and_delete(log: AuditLog) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        log.connection.execute("UPDATE audit_log SET kind = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        log.connection.execute("DELETE FROM audit_log WHERE seq = 10")


def test_entry_commits_with_the_callers_change_or_not_at_all(log: AuditLog) -> None:
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
    ids = [r[0] for r in log.connection.execute("SELECT id FROM orders")]
    assert ids == ["o1"]
    assert [e.correlation_id for e in log.entries(kind="order.submitted", last=1)] == ["o1"]
    assert log.head()[0] == 11
    assert verify_chain(log.connection).ok


def test_append_outside_a_transaction_is_refused(log: AuditLog) -> None:
    cur = log.connection.cursor()
    with pytest.raises(AuditError, match="outside a transaction"):
        append_entry(cur, "x.y", {}, ts=T0)


def test_group_commit_writes_a_batch_in_one_transaction(log: AuditLog) -> None:
    out = log.append_batch([("risk.check", {"n": n}, f"b{n}") for n in range(5)])
    assert [e.seq for e in out] == [11, 12, 13, 14, 15]
    assert log.head() == (15, out[-1].hash)
    with pytest.raises(AuditError):
        log.append_batch([("risk.check", {"n": 1}, ""), ("BAD", {}, "")])
    assert log.head()[0] == 15
    assert verify_chain(log.connection).ok


def test_show_filters(log: AuditLog) -> None:
    assert [e.seq for e in log.entries(last=3)] == [8, 9, 10]
    assert [e.seq for e in log.entries(correlation_id="cid-4")] == [5]
    assert [e.seq for e in log.entries(since_seq=9)] == [9, 10]
    assert log.entries(kind="nothing") == []


def test_edited_payload_is_caught_at_its_seq(log: AuditLog) -> None:
    conn = raw(log.path)
    conn.execute('UPDATE audit_log SET payload = \'{"i":4,"qty":"9.5"}\' WHERE seq = 5')
    report = verify_chain(log.connection)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 5, Problem.EDITED)


def test_a_field_rewritten_with_another_sql_type_is_an_edit(log: AuditLog) -> None:
    raw(log.path).execute("UPDATE audit_log SET ts = 5 WHERE seq = 3")
    report = verify_chain(log.connection)
    assert (report.first_bad_seq, report.problem) == (3, Problem.EDITED)
    assert log.connection.text_factory is str  # the caller's connection is left as it was


def test_an_entry_before_seq_1_is_caught(log: AuditLog) -> None:
    raw(log.path).execute("INSERT INTO audit_log VALUES (0, 'x', 'x.y', '', '{}', 'a', 'b')")
    report = verify_chain(log.connection)
    assert (report.first_bad_seq, report.problem) == (0, Problem.EDITED)


@pytest.fixture
def big(tmp_path: Path) -> Iterator[AuditLog]:
    out = AuditLog(tmp_path / "big.db", clock=TestClock(T0))
    out.append_batch([("risk.check", {"i": i}, f"c{i}") for i in range(1, 101)])
    yield out
    out.close()


@pytest.mark.parametrize(
    ("statements", "bad", "problem"),
    [
        ([], None, None),
        (["UPDATE audit_log SET payload = '{}' WHERE seq = 60"], 60, Problem.EDITED),
        # three workers check seq 1-34, 35-68 and 69-100
        (["DELETE FROM audit_log WHERE seq = 35"], 35, Problem.MISSING),  # a range's first row
        (["DELETE FROM audit_log WHERE seq = 34"], 34, Problem.MISSING),  # a range's last row
        (["UPDATE audit_log SET prev_hash = 'x', hash = '{h}' WHERE seq = 69"], 69,
         Problem.BROKEN_LINK),  # a forged first row: only the stitching sees it
        (["DELETE FROM audit_log WHERE seq > 90"], 91, Problem.TRUNCATED),
    ],
)  # fmt: skip
def test_parallel_verification_gives_the_same_report(
    big: AuditLog, statements: list[str], bad: int | None, problem: Problem | None
) -> None:
    conn = raw(big.path)
    for statement in statements:
        if "{h}" in statement:  # recompute the hash over the forged prev_hash
            seq, ts, kind, cid, payload, _, _ = conn.execute(
                "SELECT * FROM audit_log WHERE seq = 69"
            ).fetchone()
            statement = statement.format(h=entry_hash(seq, ts, kind, cid, payload, "x"))
        conn.execute(statement)
    one = verify_chain(big.connection)
    three = verify_chain(big.connection, workers=3, parallel_min=1)
    assert (one.first_bad_seq, one.problem) == (bad, problem)
    assert (three.first_bad_seq, three.problem, three.entries) == (bad, problem, one.entries)
    with pytest.raises(AuditError, match="verify workers = 0"):
        verify_chain(big.connection, workers=0)


def test_edit_with_recomputed_hash_breaks_the_next_link(log: AuditLog) -> None:
    conn = raw(log.path)
    seq, ts, kind, cid, _, prev, _ = conn.execute(
        "SELECT * FROM audit_log WHERE seq = 5"
    ).fetchone()
    forged = '{"i":4,"qty":"0"}'
    conn.execute(
        "UPDATE audit_log SET payload = ?, hash = ? WHERE seq = 5",
        (forged, entry_hash(seq, ts, kind, cid, forged, prev)),
    )
    report = verify_chain(log.connection)
    assert (report.first_bad_seq, report.problem) == (6, Problem.BROKEN_LINK)


def test_deleted_entry_is_caught_at_the_missing_seq(log: AuditLog) -> None:
    raw(log.path).execute("DELETE FROM audit_log WHERE seq = 4")
    report = verify_chain(log.connection)
    assert (report.first_bad_seq, report.problem) == (4, Problem.MISSING)
    assert "seq 4 is missing" in report.message


def test_reordered_entries_are_caught_at_the_first_swapped_seq(log: AuditLog) -> None:
    conn = raw(log.path)
    conn.execute("UPDATE audit_log SET seq = -1 WHERE seq = 3")
    conn.execute("UPDATE audit_log SET seq = 3 WHERE seq = 7")
    conn.execute("UPDATE audit_log SET seq = 7 WHERE seq = -1")
    report = verify_chain(log.connection)
    assert (report.first_bad_seq, report.problem) == (3, Problem.EDITED)


def test_truncated_tail_is_caught_by_the_head_record(log: AuditLog) -> None:
    raw(log.path).execute("DELETE FROM audit_log WHERE seq >= 8")
    report = verify_chain(log.connection)
    assert (report.first_bad_seq, report.problem) == (8, Problem.TRUNCATED)
    assert report.last_seq == 7
    assert report.head_seq == 10


def test_truncation_with_a_rewritten_head_is_caught_by_the_anchor(
    log: AuditLog, tmp_path: Path
) -> None:
    anchor_path = tmp_path / "audit.anchor"
    anchor = write_anchor(log, anchor_path)
    assert (anchor.seq, read_anchor(anchor_path)) == (10, anchor)
    conn = raw(log.path)
    conn.execute("DELETE FROM audit_log WHERE seq >= 9")
    h8 = conn.execute("SELECT hash FROM audit_log WHERE seq = 8").fetchone()[0]
    conn.execute("UPDATE audit_head SET seq = 8, hash = ?", (h8,))
    assert verify_chain(log.connection).ok  # the database alone looks consistent
    report = verify_chain(log.connection, read_anchor(anchor_path))
    assert (report.first_bad_seq, report.problem) == (9, Problem.TRUNCATED)


def test_rewritten_history_is_caught_by_the_anchor(log: AuditLog, tmp_path: Path) -> None:
    anchor = write_anchor(log, tmp_path / "audit.anchor")
    conn = raw(log.path)  # rebuild the whole chain from seq 2 with a forged entry
    rows = conn.execute("SELECT * FROM audit_log ORDER BY seq").fetchall()
    prev = rows[0][6]
    for seq, ts, kind, cid, payload, _, _ in rows[1:]:
        payload = '{"forged":true}' if seq == 2 else payload
        digest = entry_hash(seq, ts, kind, cid, payload, prev)
        conn.execute(
            "UPDATE audit_log SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (payload, prev, digest, seq),
        )
        prev = digest
    conn.execute("UPDATE audit_head SET hash = ?", (prev,))
    assert verify_chain(log.connection).ok
    report = verify_chain(log.connection, anchor)
    assert (report.first_bad_seq, report.problem) == (10, Problem.ANCHOR_MISMATCH)


def test_entries_appended_behind_the_heads_back_are_caught(log: AuditLog) -> None:
    conn = raw(log.path)
    prev = conn.execute("SELECT hash FROM audit_log WHERE seq = 10").fetchone()[0]
    digest = entry_hash(11, "2024-01-02T15:00:00.000000Z", "x.y", "", "{}", prev)
    conn.execute(
        "INSERT INTO audit_log VALUES (11, '2024-01-02T15:00:00.000000Z', 'x.y', '', '{}', ?, ?)",
        (prev, digest),
    )
    report = verify_chain(log.connection)
    assert (report.first_bad_seq, report.problem) == (11, Problem.HEAD_MISMATCH)


def test_an_anchor_behind_the_head_is_normal(log: AuditLog, tmp_path: Path) -> None:
    anchor = write_anchor(log, tmp_path / "a")
    log.append("x.y", {})
    report = verify_chain(log.connection, anchor)
    assert report.ok
    assert report.anchor_seq == 10
    assert report.head_seq == 11


def test_reopen_continues_the_chain_and_read_only_open_writes_nothing(
    log: AuditLog, tmp_path: Path
) -> None:
    log.close()
    again = AuditLog(log.path, clock=TestClock(T0))
    assert again.append("x.y", {}).seq == 11
    again.close()
    with AuditLog(log.path, create=False) as ro:
        assert ro.head()[0] == 11
    with pytest.raises(AuditError, match="does not exist"):
        AuditLog(tmp_path / "missing.db", create=False)
    raw_other = sqlite3.connect(tmp_path / "other.db")
    raw_other.execute("CREATE TABLE t (x)")
    raw_other.close()
    with pytest.raises(AuditError, match="holds no audit log"):
        AuditLog(tmp_path / "other.db", create=False)


def test_durability_pragmas(log: AuditLog) -> None:
    conn = log.connection
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_export_parquet_round_trips_every_column(log: AuditLog, tmp_path: Path) -> None:
    out = tmp_path / "x" / "audit.parquet"
    assert export_parquet(log.connection, out) == 10
    table = pq.read_table(out)
    assert table.column_names == [
        "seq", "ts", "kind", "correlation_id", "payload", "prev_hash", "hash",
    ]  # fmt: skip
    rows = table.to_pylist()
    entries = log.entries()
    assert [r["seq"] for r in rows] == list(range(1, 11))
    assert rows[3]["ts"] == T0 + timedelta(seconds=3)
    assert [r["hash"] for r in rows] == [e.hash for e in entries]
    assert rows[0]["payload"] == entries[0].payload
    assert export_parquet(log.connection, tmp_path / "tail.parquet", since_seq=9) == 2
    with AuditLog(tmp_path / "empty.db") as empty:
        assert export_parquet(empty.connection, tmp_path / "e.pq") == 0
    assert pq.read_table(tmp_path / "e.pq").num_rows == 0


def test_public_api() -> None:
    for name in tradeforge.audit.__all__:
        obj = getattr(tradeforge.audit, name)
        assert isinstance(obj, str) or obj.__module__.startswith("tradeforge.audit.")
