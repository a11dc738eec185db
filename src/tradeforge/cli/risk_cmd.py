"""``tradeforge kill``, ``tradeforge resume`` and ``tradeforge risk status`` on a state directory.

Thin wiring of :mod:`tradeforge.risk.killswitch`: ``kill`` writes the flag file ``DIR/KILL`` and
latches HALTED in ``DIR/state.db`` (audited, reason required); the trading node's risk engine
sees it on its next check and cancels every open order. ``resume`` removes the flag and clears
the latch (audited, reason required). Both refresh ``DIR/audit.anchor``.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import typer
from rich.markup import escape

from tradeforge.audit import AuditLog
from tradeforge.cli.output import console, emit_json
from tradeforge.risk import (
    StatePaths,
    StateRecord,
    TradingState,
    kill_state_dir,
    read_state_dir,
    resume_state_dir,
)

STATE_OPTION = typer.Option(
    ..., "--state", help="State directory of the trading node (holds state.db, KILL).",
    file_okay=False,
)  # fmt: skip
REASON_OPTION = typer.Option(..., "--reason", help="Why (required; written to the audit log).")
JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output on stdout.")

risk_app = typer.Typer(help="Trading state and risk limits of a state directory.",
                       no_args_is_help=True)  # fmt: skip


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


def _record_json(record: StateRecord, state_dir: Path, flag: bool) -> dict[str, object]:
    return {
        "state_dir": str(state_dir), "state": record.state.value, "killed": record.killed,
        "reason": record.reason, "kill_reason": record.kill_reason, "source": record.source,
        "changed_at": record.changed_at, "version": record.version, "kill_flag": flag,
    }  # fmt: skip


def kill_cmd(state: Path = STATE_OPTION, reason: str = REASON_OPTION,
             as_json: bool = JSON_OPTION) -> None:  # fmt: skip
    """Latch HALTED (kill switch): no new orders until `tradeforge resume`; open orders are
    canceled by the running node."""
    record = kill_state_dir(state, reason, source="cli", operator=_operator())
    if as_json:
        emit_json(_record_json(record, state, True))
        return
    console.print(f"[bold red]HALTED[/] (kill switch latched) in {escape(str(state))}: "
                  f"{escape(record.kill_reason)}", soft_wrap=True)  # fmt: skip


def resume_cmd(
    state: Path = STATE_OPTION,
    reason: str = REASON_OPTION,
    to: TradingState = typer.Option(
        TradingState.ACTIVE, "--to", help="State to resume to (active or reducing)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Clear the kill latch and the flag file and resume trading (audited)."""
    record = resume_state_dir(state, reason, to=to, source="cli", operator=_operator())
    if as_json:
        emit_json(_record_json(record, state, False))
        return
    console.print(f"[bold green]{record.state.value.upper()}[/] in {escape(str(state))}: "
                  f"{escape(record.reason)}", soft_wrap=True)  # fmt: skip


@risk_app.command("status")
def status_cmd(state: Path = STATE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The trading state, the kill latch and the audit head of a state directory."""
    record, flag = read_state_dir(state)
    with AuditLog(StatePaths(state).db, create=False) as log:
        seq, digest = log.head()
    payload = {**_record_json(record, state, flag), "audit_head_seq": seq, "audit_head": digest}
    if as_json:
        emit_json(payload)
        return
    for key, value in payload.items():
        console.print(f"{key:>15}: {escape(str(value))}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Attach ``tradeforge kill``, ``tradeforge resume`` and ``tradeforge risk`` to the app."""
    app.command("kill")(kill_cmd)
    app.command("resume")(resume_cmd)
    app.add_typer(risk_app, name="risk")


__all__ = ["kill_cmd", "register", "resume_cmd", "risk_app", "status_cmd"]
