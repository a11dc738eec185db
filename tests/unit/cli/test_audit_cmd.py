"""``tradeforge audit verify|show|export --state DIR`` through the real entry point: an intact
log verifies (exit 0), each tampering exits 1 naming the first bad seq, entries show and export
to Parquet."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tradeforge.audit import AuditLog, write_anchor
from tradeforge.risk import StatePaths
from tradeforge.testing.cli import run_cli as run


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state dir with 20 entries (orders o-0..o-19) and an anchor at the head."""
    paths = StatePaths(tmp_path / "node")
    with AuditLog(paths.db) as log:
        for i in range(20):
            log.append("order.submitted", {"i": i}, f"o-{i}")
        write_anchor(log, paths.anchor)
    return paths.root


def tamper(state: Path, *statements: str) -> None:
    conn = sqlite3.connect(StatePaths(state).db, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    for statement in statements:
        conn.execute(statement)
    conn.close()


def verify(capsys: pytest.CaptureFixture[str], state: Path) -> tuple[int, dict[str, object]]:
    code, out, _ = run(capsys, "audit", "verify", "--state", str(state), "--json")
    return code, dict(json.loads(out))


def test_an_intact_log_verifies(capsys: pytest.CaptureFixture[str], state: Path) -> None:
    code, out, _ = run(capsys, "audit", "verify", "--state", str(state))
    assert code == 0
    assert "20 entries verified" in out
    code, got = verify(capsys, state)
    assert (code, got["ok"], got["entries"], got["anchor_seq"]) == (0, True, 20, 20)


@pytest.mark.parametrize(
    ("statements", "bad", "problem"),
    [
        (["UPDATE audit_log SET payload = '{\"i\":99}' WHERE seq = 7"], 7, "edited"),
        (["DELETE FROM audit_log WHERE seq = 12"], 12, "missing"),
        (["UPDATE audit_log SET seq = -1 WHERE seq = 4", "UPDATE audit_log SET seq = 4 WHERE "
          "seq = 5", "UPDATE audit_log SET seq = 5 WHERE seq = -1"], 4, "edited"),
        (["DELETE FROM audit_log WHERE seq > 17"], 18, "truncated"),
        (["DELETE FROM audit_log WHERE seq > 17",
          "UPDATE audit_head SET seq = 17, hash = (SELECT hash FROM audit_log WHERE seq = 17)"],
         18, "truncated"),
    ],
    ids=["edited", "deleted", "reordered", "truncated", "truncated-head-rewritten"],
)  # fmt: skip
def test_each_tampering_exits_1_naming_the_first_bad_seq(
    capsys: pytest.CaptureFixture[str], state: Path, statements: list[str], bad: int,
    problem: str,
) -> None:  # fmt: skip
    tamper(state, *statements)
    code, got = verify(capsys, state)
    assert (code, got["ok"], got["first_bad_seq"], got["problem"]) == (1, False, bad, problem)
    code, out, _ = run(capsys, "audit", "verify", "--state", str(state))
    assert code == 1
    assert f"TAMPERED: first bad seq {bad}" in out


def test_without_the_anchor_a_rewritten_head_hides_truncation(
    capsys: pytest.CaptureFixture[str], state: Path
) -> None:
    tamper(state, "DELETE FROM audit_log WHERE seq > 17",
           "UPDATE audit_head SET seq = 17, hash = (SELECT hash FROM audit_log WHERE seq = 17)")  # fmt: skip
    code, _, _ = run(capsys, "audit", "verify", "--state", str(state), "--no-anchor")
    assert code == 0


def test_show_filters_and_json(capsys: pytest.CaptureFixture[str], state: Path) -> None:
    code, out, _ = run(capsys, "audit", "show", "--state", str(state), "--last", "2", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["seq"], r["correlation_id"], r["payload"]) for r in rows] == [
        (19, "o-18", {"i": 18}), (20, "o-19", {"i": 19}),
    ]  # fmt: skip
    code, out, _ = run(capsys, "audit", "show", "--state", str(state), "--correlation-id", "o-3")
    assert code == 0
    assert "order.submitted" in out
    assert '{"i":3}' in out
    code, out, _ = run(capsys, "audit", "show", "--state", str(state), "--kind", "risk.kill")
    assert (code, out.strip()) == (0, "no matching entries")


def test_export_writes_parquet(capsys: pytest.CaptureFixture[str], state: Path,
                               tmp_path: Path) -> None:  # fmt: skip
    out_file = tmp_path / "audit.parquet"
    code, out, _ = run(capsys, "audit", "export", "--state", str(state), "--out", str(out_file),
                       "--since-seq", "11", "--json")  # fmt: skip
    assert (code, json.loads(out)) == (0, {"out": str(out_file), "rows": 10})
    table = pq.read_table(out_file)
    assert table.column("seq").to_pylist() == list(range(11, 21))


def test_missing_state_dir_is_a_one_line_error(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:  # fmt: skip
    code, _, err = run(capsys, "audit", "verify", "--state", str(tmp_path / "none"))
    assert code == 2
    assert err.count("\n") == 1
    assert "does not exist" in err
