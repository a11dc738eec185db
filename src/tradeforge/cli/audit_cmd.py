"""``tradeforge audit verify|show|export --state DIR``: the hash-chained audit log.

``verify`` checks every entry, the head record and ``DIR/audit.anchor`` (when present); it
exits 1 and names the first bad sequence number when anything was edited, deleted, reordered or
truncated. ``show`` lists entries; ``export`` writes them to Parquet (for DuckDB).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from tradeforge.audit import AuditLog, export_parquet, read_anchor, verify_chain
from tradeforge.cli.output import console, emit_json
from tradeforge.risk import StatePaths

STATE_OPTION = typer.Option(
    ..., "--state", help="State directory (holds state.db and audit.anchor).", file_okay=False
)
JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output on stdout.")

audit_app = typer.Typer(help="Verify, show and export the audit log.", no_args_is_help=True)


def _open(state: Path) -> AuditLog:
    return AuditLog(StatePaths(state).db, create=False)


@audit_app.command("verify")
def verify_cmd(
    state: Path = STATE_OPTION,
    no_anchor: bool = typer.Option(False, "--no-anchor", help="Ignore DIR/audit.anchor."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Processes that verify seq ranges (logs of 200k+ entries)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check the whole chain; exit 1 and name the first bad seq when it was tampered with."""
    anchor = None if no_anchor else read_anchor(StatePaths(state).anchor)
    with _open(state) as log:
        report = verify_chain(log.connection, anchor, workers=workers)
    if as_json:
        emit_json({
            "ok": report.ok, "entries": report.entries, "last_seq": report.last_seq,
            "head_seq": report.head_seq, "anchor_seq": report.anchor_seq,
            "first_bad_seq": report.first_bad_seq,
            "problem": None if report.problem is None else report.problem.value,
            "message": report.message, "seconds": round(report.seconds, 6),
        })  # fmt: skip
    elif report.ok:
        console.print(
            f"[green]ok[/]: {escape(report.message)} ({report.seconds:.3f} s)", soft_wrap=True
        )
    else:
        console.print(f"[bold red]TAMPERED[/]: first bad seq {report.first_bad_seq} "
                      f"({report.problem}): {escape(report.message)}", soft_wrap=True)  # fmt: skip
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("show")
def show_cmd(
    state: Path = STATE_OPTION,
    last: int = typer.Option(20, "--last", min=0, help="Show the last N matching entries."),
    kind: str | None = typer.Option(None, "--kind", help="Only this kind (risk.check, ...)."),
    correlation_id: str | None = typer.Option(None, "--correlation-id", help="Only this id."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The last entries (optionally of one kind or one correlation id), oldest first."""
    with _open(state) as log:
        entries = log.entries(kind=kind, correlation_id=correlation_id, last=last)
    if as_json:
        emit_json([{"seq": e.seq, "ts": e.ts, "kind": e.kind, "correlation_id": e.correlation_id,
                    "payload": e.data, "hash": e.hash} for e in entries])  # fmt: skip
        return
    if not entries:
        console.print("no matching entries")
        return
    table = Table(title=f"audit log ({escape(str(StatePaths(state).db))})")
    for col in ("seq", "ts", "kind", "correlation_id", "payload"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(str(e.seq), e.ts, e.kind, escape(e.correlation_id), escape(e.payload))
    console.print(table)


@audit_app.command("export")
def export_cmd(
    state: Path = STATE_OPTION,
    out: Path = typer.Option(..., "--out", help="Parquet file to write.", dir_okay=False),
    since_seq: int | None = typer.Option(None, "--since-seq", min=1, help="First seq."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write the entries to a Parquet file (seq, ts, kind, correlation_id, payload, hashes)."""
    with _open(state) as log:
        rows = export_parquet(log.connection, out, since_seq=since_seq)
    if as_json:
        emit_json({"out": str(out), "rows": rows})
        return
    console.print(f"wrote {rows} entries to {escape(str(out))}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Attach ``tradeforge audit ...`` to the root app."""
    app.add_typer(audit_app, name="audit")


__all__ = ["audit_app", "export_cmd", "register", "show_cmd", "verify_cmd"]
