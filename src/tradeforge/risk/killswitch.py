"""The kill switch outside the trading process: latch HALTED in a state directory, and resume.

``tradeforge kill --state DIR --reason TEXT`` (and, later, the service's API) calls
:func:`kill_state_dir`: it writes the flag file ``DIR/KILL`` (first: a plain file that any
engine watching the directory sees even when the database is busy), then latches HALTED in
``DIR/state.db`` with one audit entry, then refreshes ``DIR/audit.anchor``. A running
:class:`~tradeforge.risk.engine.RiskEngine` sees the flag or the latch on its next
``validate``/``poll`` and cancels every open order through its :class:`KillTarget` (the OMS),
flattening positions too when ``flatten_on_kill`` is set. The latch stays across restarts until
:func:`resume_state_dir` (``tradeforge resume --state DIR --reason TEXT``) removes the flag and
clears it, again with an audit entry. ``touch DIR/KILL`` alone also kills (its text, if any, is
the reason).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tradeforge.audit import write_anchor
from tradeforge.core.clock import Clock
from tradeforge.core.errors import RiskError
from tradeforge.risk.state import RiskStateStore, StatePaths, StateRecord, TradingState

if TYPE_CHECKING:
    from tradeforge.risk.controls import ExitIntent

_FLAG_REASON_CHARS = 500


class KillTarget(Protocol):
    """What the kill switch needs from the order manager."""

    def cancel_all_orders(self, reason: str) -> int:
        """Request the cancel of every open order; returns how many were asked."""
        ...

    def flatten(self, exits: Sequence[ExitIntent], reason: str) -> None:
        """Place the closing orders ``exits`` (they bypass the HALTED state: the kill switch
        itself asks for them)."""
        ...


def check_reason(reason: str, what: str) -> str:
    """``reason`` stripped; raises :class:`RiskError` when it is empty."""
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise RiskError(f"{what}: reason = {reason!r}; expected a non-empty reason")
    return text


def write_kill_flag(path: Path, reason: str) -> None:
    """Write the flag file durably (temporary file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(reason + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise RiskError(f"kill flag path = {str(path)!r}: cannot write it ({exc})") from exc


def read_kill_flag(path: Path) -> str:
    """The reason written in the flag file (a default when it is empty or unreadable)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:_FLAG_REASON_CHARS].strip()
    except OSError:
        text = ""
    return text or f"kill flag file {path.name} present"


def kill_state_dir(
    state_dir: str | Path,
    reason: str,
    *,
    source: str = "cli",
    operator: str = "",
    clock: Clock | None = None,
) -> StateRecord:
    """Latch HALTED in ``state_dir`` (creating the store if needed); returns the record."""
    text = check_reason(reason, "kill")
    paths = StatePaths(Path(state_dir))
    # The latch first, then the flag: a running engine that sees the flag finds the kill
    # already recorded (with this caller's source and clock) instead of recording its own.
    store = RiskStateStore(paths.db, clock=clock)
    try:
        record, _ = store.move("kill", TradingState.HALTED, reason=text, source=source,
                               details={"operator": operator})  # fmt: skip
        write_anchor(store.log, paths.anchor)
    finally:
        store.close()
        write_kill_flag(paths.kill_flag, text)
    return record


def resume_state_dir(
    state_dir: str | Path,
    reason: str,
    *,
    to: TradingState = TradingState.ACTIVE,
    source: str = "cli",
    operator: str = "",
    clock: Clock | None = None,
) -> StateRecord:
    """Remove the flag file, then clear the latch and move to ``to`` (audited)."""
    text = check_reason(reason, "resume")
    if to is TradingState.HALTED:
        raise RiskError("resume: to = 'halted'; expected 'active' or 'reducing'")
    paths = StatePaths(Path(state_dir))
    if not paths.db.is_file():
        raise RiskError(f"resume: state = {str(paths.root)!r} holds no {paths.db.name}; "
                        "expected a state directory that an engine or kill created")  # fmt: skip
    store = RiskStateStore(paths.db, clock=clock, create=False)
    try:
        paths.kill_flag.unlink(missing_ok=True)
        record, _ = store.move("resume", to, reason=text, source=source,
                               details={"operator": operator})  # fmt: skip
        write_anchor(store.log, paths.anchor)
    finally:
        store.close()
    return record


def read_state_dir(state_dir: str | Path) -> tuple[StateRecord, bool]:
    """The stored record and whether the flag file is present (nothing is written)."""
    paths = StatePaths(Path(state_dir))
    if not paths.db.is_file():
        raise RiskError(f"state = {str(paths.root)!r} holds no {paths.db.name}; expected a "
                        "state directory")  # fmt: skip
    store = RiskStateStore(paths.db, create=False)
    try:
        return store.load(), paths.kill_flag.exists()
    finally:
        store.close()


__all__ = [
    "KillTarget",
    "check_reason",
    "kill_state_dir",
    "read_kill_flag",
    "read_state_dir",
    "resume_state_dir",
    "write_kill_flag",
]
