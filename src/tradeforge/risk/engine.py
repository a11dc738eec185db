"""``RiskEngine``: the one risk engine of backtests, paper and live trading.

* :meth:`RiskEngine.validate` runs the pre-trade checks (:func:`~tradeforge.risk.checks.check_order`,
  then the duplicate window and the rate throttle) on every order and returns a
  :class:`~tradeforge.risk.checks.Denied` or None; approved orders count toward the throttle.
* :meth:`RiskEngine.update` marks the portfolio: breakers (daily loss, drawdown) may escalate
  the state; stop-loss and trailing stops come back as exit intents. :meth:`RiskEngine.on_fill`
  counts closing trades into the loss streak.
* :meth:`RiskEngine.kill` latches HALTED, cancels every open order through the
  :class:`~tradeforge.risk.killswitch.KillTarget` and, with ``flatten_on_kill``, closes every
  position; :meth:`RiskEngine.resume` (reason required) clears the latch.
* :meth:`RiskEngine.tighten` changes limits at run time, only ever tighter.

Without a store (backtests, envs) everything lives in memory. With one
(:meth:`RiskEngine.open` on a state directory), each state move and its audit entry commit
together, the control memory survives restarts, every check is audited (``risk.check``, the
correlation id being the client order id) unless ``audit_checks=False``, and the engine watches
the flag file ``DIR/KILL`` and the stored latch on every ``validate``, ``update`` and ``poll``
(the trading node calls :meth:`RiskEngine.poll` at least once a second).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradeforge.audit import format_ts, write_anchor
from tradeforge.core.clock import Clock, LiveClock
from tradeforge.core.errors import RiskError
from tradeforge.domain import OrderFilled, Position, SubmitOrder
from tradeforge.risk.checks import Denied, DenyReason, PortfolioView, check_order
from tradeforge.risk.config import RiskConfig
from tradeforge.risk.controls import (
    ControlMemory,
    ExitIntent,
    Trip,
    flatten_exits,
    mark_equity,
    stop_exits,
    trade_pnl,
    update_breakers,
    update_streak,
)
from tradeforge.risk.killswitch import KillTarget, check_reason, read_kill_flag
from tradeforge.risk.state import (
    Action,
    RiskStateStore,
    StatePaths,
    StateRecord,
    TradingState,
    next_record,
)
from tradeforge.risk.throttle import DuplicateWindow, OrderThrottle

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControlReport:
    """What one :meth:`RiskEngine.update` found."""

    state: TradingState
    equity: Decimal
    exits: tuple[ExitIntent, ...] = ()
    trips: tuple[Trip, ...] = ()


@dataclass(frozen=True)
class KillReport:
    """What the kill switch did: the record, orders asked to cancel, exits sent to flatten."""

    record: StateRecord
    canceled: int
    flattened: tuple[ExitIntent, ...] = ()


@dataclass
class RiskStats:
    """Counts for reports and metrics: approvals, denials by reason, exits by reason, breaker
    trips, and seconds spent in each state (up to the last state change)."""

    approved: int = 0
    denied: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)
    trips: Counter[str] = field(default_factory=Counter)
    state_seconds: dict[str, float] = field(default_factory=dict)


class RiskEngine:
    """See the module docstring. ``kill_flag``: the flag file to watch (``open`` sets it)."""

    def __init__(
        self,
        config: RiskConfig,
        *,
        clock: Clock | None = None,
        store: RiskStateStore | None = None,
        kill_target: KillTarget | None = None,
        kill_flag: Path | None = None,
        anchor: Path | None = None,
        audit_checks: bool = True,
        check_batch: int = 1,
    ) -> None:
        self._config = config
        self.clock: Clock = clock or (store.clock if store is not None else LiveClock())
        self.store = store
        self.kill_target = kill_target
        self.kill_flag = kill_flag
        self.anchor = anchor
        self.audit_checks = audit_checks and store is not None
        if not isinstance(check_batch, int) or check_batch < 1:
            raise RiskError(f"check_batch = {check_batch!r}; expected an int >= 1")
        self.check_batch = check_batch
        self._pending: list[tuple[str, dict[str, Any], str]] = []
        now = self.clock.now()
        self._record = store.load() if store is not None else StateRecord(changed_at=format_ts(now))
        raw = store.load_memory() if store is not None else None
        self._memory = ControlMemory() if raw is None else ControlMemory.from_json(raw)
        self._throttle = OrderThrottle(config.max_orders_per_second, config.max_orders_per_minute)
        self._dupes = DuplicateWindow(config.duplicate_window_s)
        self._kill_handled: int | None = None
        self._since = now
        self.stats = RiskStats()
        if store is not None:
            store.log.append("risk.engine_started", {
                "config": config.model_dump(mode="json"), "state": self._record.state,
                "killed": self._record.killed})  # fmt: skip

    @classmethod
    def open(
        cls,
        state_dir: str | Path,
        config: RiskConfig,
        *,
        clock: Clock | None = None,
        kill_target: KillTarget | None = None,
        audit_checks: bool = True,
        check_batch: int = 1,
    ) -> RiskEngine:
        """An engine persisted in ``state_dir``. A kill latched before the restart is acted
        on at once: every open order is asked to cancel again. ``check_batch`` > 1 writes
        the ``risk.check`` entries as group commits (see :meth:`flush_audit`)."""
        paths = StatePaths(Path(state_dir))
        store = RiskStateStore(paths.db, clock=clock)
        engine = cls(config, clock=store.clock, store=store, kill_target=kill_target,
                     kill_flag=paths.kill_flag, anchor=paths.anchor,
                     audit_checks=audit_checks, check_batch=check_batch)  # fmt: skip
        engine.poll()
        return engine

    def close(self) -> None:
        """Write pending check entries and close the store."""
        if self.store is not None:
            self.flush_audit()
            self.store.close()

    def flush_audit(self) -> int:
        """Write the pending ``risk.check`` entries in one durable transaction (a group
        commit); returns how many. With ``check_batch`` = 1 nothing is ever pending. Called by
        :meth:`update`, :meth:`poll`, :meth:`kill` and :meth:`close`, and whenever
        ``check_batch`` entries wait; a crash loses at most the entries not yet flushed
        (each carries its ``checked_at`` time)."""
        if not self._pending or self.store is None:
            return 0
        batch, self._pending = self._pending, []
        self.store.log.append_batch(batch)
        return len(batch)

    # -- state ------------------------------------------------------------------------------
    @property
    def config(self) -> RiskConfig:
        return self._config

    @property
    def record(self) -> StateRecord:
        return self._record

    @property
    def state(self) -> TradingState:
        return self._record.state

    @property
    def memory(self) -> ControlMemory:
        return self._memory

    def time_in_state(self) -> dict[str, float]:
        """Seconds spent in each state so far (the current one up to now)."""
        out = {s.value: self.stats.state_seconds.get(s.value, 0.0) for s in TradingState}
        out[self._record.state.value] += (self.clock.now() - self._since).total_seconds()
        return out

    def _set_record(self, record: StateRecord) -> None:
        if record.state is not self._record.state:
            now = self.clock.now()
            old = self._record.state.value
            spent = (now - self._since).total_seconds()
            self.stats.state_seconds[old] = self.stats.state_seconds.get(old, 0.0) + spent
            self._since = now
            logger.warning("trading state %s -> %s: %s", self._record.state.value,
                           record.state.value, record.reason)  # fmt: skip
        self._record = record

    def _move(
        self, action: Action, to: TradingState, *, reason: str, source: str,
        details: dict[str, Any] | None = None,
    ) -> bool:  # fmt: skip
        if self.store is not None:
            record, changed = self.store.move(action, to, reason=reason, source=source,
                                              details=details)  # fmt: skip
        else:
            new = next_record(self._record, action, to, reason=reason, source=source,
                              now=self.clock.now())  # fmt: skip
            record, changed = (self._record, False) if new is None else (new, True)
        self._set_record(record)
        return changed

    def _refresh(self) -> None:
        """Pick up a flag file or a move another process stored (``tradeforge kill``)."""
        if self.kill_flag is not None and not self._record.killed and self.kill_flag.exists():
            self._move("kill", TradingState.HALTED, reason=read_kill_flag(self.kill_flag),
                       source="flag")  # fmt: skip
        elif self.store is not None:
            stored = self.store.load()
            if stored.version != self._record.version:
                self._set_record(stored)

    def _save_memory(self, memory: ControlMemory) -> None:
        if memory != self._memory and self.store is not None:
            self.store.save_memory(memory.to_json())
        self._memory = memory

    # -- orders -------------------------------------------------------------------------------
    def validate(self, order: SubmitOrder, view: PortfolioView) -> Denied | None:
        """None when ``order`` may be sent (it then counts toward the throttle), else why not."""
        self._refresh()
        now = self.clock.now()
        denied = check_order(order, view, self._config, self._record.state)
        if denied is None:
            denied = self._memory_denial(order, now)
        if denied is None:
            self._throttle.record(now)
            self._dupes.record(order, now)
            self.stats.approved += 1
        else:
            self.stats.denied[denied.reason.value] += 1
        if self.audit_checks:
            self._pending.append(("risk.check", {
                "approved": denied is None, "reason": None if denied is None else denied.reason,
                "message": "" if denied is None else denied.message, "state": self.state,
                "checked_at": now, "order": order.model_dump(mode="json")},
                order.client_order_id))  # fmt: skip
            if len(self._pending) >= self.check_batch:
                self.flush_audit()
        return denied

    def _memory_denial(self, order: SubmitOrder, now: datetime) -> Denied | None:
        seen = self._dupes.previous(order, now)
        if seen is not None:
            return Denied(DenyReason.DUPLICATE_ORDER,
                          f"the same order was approved at {seen.isoformat()}, within "
                          f"duplicate_window_s {self._config.duplicate_window_s}",
                          order.client_order_id)  # fmt: skip
        window = self._throttle.exceeded(now)
        if window is not None:
            reason = (DenyReason.RATE_LIMIT_PER_SECOND if window == "second"
                      else DenyReason.RATE_LIMIT_PER_MINUTE)  # fmt: skip
            limit = (self._config.max_orders_per_second if window == "second"
                     else self._config.max_orders_per_minute)  # fmt: skip
            return Denied(reason, f"{limit} orders already approved in the last {window}",
                          order.client_order_id)  # fmt: skip
        return None

    # -- portfolio controls ---------------------------------------------------------------------
    def update(self, view: PortfolioView) -> ControlReport:
        """Mark ``view``: fire breakers, move trailing peaks, return stop exits."""
        self.flush_audit()
        self._refresh()
        equity = mark_equity(view)
        memory, trips = update_breakers(self._memory, equity, self.clock.now(), self._config)
        exits: list[ExitIntent] = []
        if self._config.stop_loss is not None or self._config.trailing_stop is not None:
            memory, exits = stop_exits(view, memory, self._config)
        self._save_memory(memory)
        fired = tuple(t for t in trips if self._trip(t, equity))
        for intent in exits:
            self.stats.exits[intent.reason.value] += 1
        if exits and self.store is not None:
            self.store.log.append_batch(
                ("risk.stop", {"symbol": e.symbol, "side": e.side, "quantity": e.quantity,
                               "reason": e.reason, "price": e.reference_price,
                               "message": e.message}, "")
                for e in exits
            )  # fmt: skip
        return ControlReport(self.state, equity, tuple(exits), fired)

    def _trip(self, trip: Trip, equity: Decimal | None = None) -> bool:
        details = {"breaker": trip.breaker, "equity": equity}
        changed = self._move("escalate", trip.action, reason=trip.message,
                             source=f"breaker.{trip.breaker.value}", details=details)  # fmt: skip
        if changed:
            self.stats.trips[trip.breaker.value] += 1
        return changed

    def on_fill(self, fill: OrderFilled, position_before: Position) -> Trip | None:
        """Count a fill that closes (part of) ``position_before`` into the loss streak."""
        pnl = trade_pnl(fill, position_before)
        if pnl is None:
            return None
        memory, trip = update_streak(self._memory, pnl, self._config)
        self._save_memory(memory)
        return trip if trip is not None and self._trip(trip) else None

    # -- kill switch, resume, manual moves, tightening -----------------------------------------
    def kill(
        self, reason: str, *, source: str = "api", view: PortfolioView | None = None
    ) -> KillReport:
        """Latch HALTED (audited), cancel every open order, flatten when configured and a
        ``view`` is given. Runs the cancel even when already killed."""
        self.flush_audit()
        self._move("kill", TradingState.HALTED, reason=check_reason(reason, "kill"),
                   source=source)  # fmt: skip
        return self._kill_actions(view)

    def poll(self, view: PortfolioView | None = None) -> KillReport | None:
        """Pick up kills from elsewhere (flag file, ``tradeforge kill``) and act on each once;
        writes pending check entries."""
        self.flush_audit()
        self._refresh()
        if self._record.killed and self._kill_handled != self._record.version:
            return self._kill_actions(view)
        return None

    def _kill_actions(self, view: PortfolioView | None) -> KillReport:
        reason = self._record.kill_reason or self._record.reason
        canceled = 0
        exits: list[ExitIntent] = []
        if self.kill_target is None:
            logger.error("kill switch: no kill target; open orders were NOT canceled")
        else:
            canceled = self.kill_target.cancel_all_orders(reason)
            if self._config.flatten_on_kill and view is not None:
                exits = flatten_exits(view)
                if exits:
                    self.kill_target.flatten(exits, reason)
        self._kill_handled = self._record.version
        if self.store is not None:
            self.store.log.append("risk.kill_actions", {
                "canceled": canceled, "flattened": [[e.symbol, e.side, e.quantity] for e in exits],
                "version": self._record.version, "has_target": self.kill_target is not None})  # fmt: skip
            if self.anchor is not None:
                write_anchor(self.store.log, self.anchor)
        return KillReport(self._record, canceled, tuple(exits))

    def resume(
        self, reason: str, *, to: TradingState = TradingState.ACTIVE, source: str = "api"
    ) -> StateRecord:
        """Clear the kill latch and the flag file and move to ``to`` (audited); the breakers
        start afresh (peak and day-start equity from the next update, loss streak 0)."""
        text = check_reason(reason, "resume")
        if to is TradingState.HALTED:
            raise RiskError("resume: to = 'halted'; expected 'active' or 'reducing'")
        if self.kill_flag is not None:
            self.kill_flag.unlink(missing_ok=True)
        self._move("resume", to, reason=text, source=source)
        self._save_memory(replace(self._memory, peak_equity=None, day_start_equity=None,
                                  loss_streak=0))  # fmt: skip
        if self.store is not None and self.anchor is not None:
            write_anchor(self.store.log, self.anchor)
        return self._record

    def escalate(self, to: TradingState, reason: str, *, source: str = "api") -> StateRecord:
        """Move up to REDUCING or HALTED by hand (a lower state changes nothing)."""
        self._move("escalate", to, reason=check_reason(reason, "escalate"), source=source)
        return self._record

    def tighten(self, reason: str, **changes: Any) -> RiskConfig:
        """Apply tighter limits now (audited ``risk.config_tightened``); looser ones raise
        :class:`~tradeforge.core.errors.RiskError` and change nothing."""
        text = check_reason(reason, "tighten")
        new = self._config.tighten(**changes)
        if self.store is not None:
            self.store.log.append("risk.config_tightened", {
                "reason": text, "changes": {k: getattr(new, k) for k in changes},
                "before": {k: getattr(self._config, k) for k in changes}})  # fmt: skip
        self._config = new
        self._throttle.per_second = new.max_orders_per_second
        self._throttle.per_minute = new.max_orders_per_minute
        self._dupes.window_s = new.duplicate_window_s
        return new


__all__ = ["ControlReport", "KillReport", "RiskEngine", "RiskStats"]
