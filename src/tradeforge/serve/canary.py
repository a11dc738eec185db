"""The canary sleeve inside the service: the registry's ``canary`` version trading a share of the
account beside the policy, with its own ledger, limits and automatic rollback.

* **Ledger.** The sleeve is a virtual sub-ledger of the one broker account: cash allocated to it
  (``share`` x the account's equity when it starts, more at each ramp step) plus the fills of
  its own orders, which carry the strategy id ``<policy strategy>-canary``
  (:func:`sleeve_strategy_id`). The policy's node sees the account *minus* the sleeve
  (:class:`ChampionOms` wraps its order manager), so neither ever nets the other's orders.
* **Orders.** Each bar the policy decided, the canary decides on the same features (its own
  account vector); target quantities are cut so the sleeve's gross notional is at most
  ``cap = share x account equity`` (:func:`capped_targets`), then each order passes the
  sleeve's own :class:`~tradeforge.risk.RiskEngine` (``canary.limits``, fractions of the sleeve's
  equity) and goes out through the account's order manager.
* **Rollback.** Each bar :class:`~tradeforge.governance.canary.CanaryMonitor` gets the sleeve's
  value per unit (so a ramp's fresh cash is no return), its return, the drift check's PSI, the
  canary's errors, orders the broker has not acknowledged and its decision latency. On a
  :class:`~tradeforge.governance.canary.RollbackDecision` the sleeve's open orders are canceled
  and its positions closed in the same bar (flat after that bar's fills),
  :func:`~tradeforge.governance.canary.rollback` moves the alias back (one audit event, one
  alert through ``notify``) and the canary stops trading.
* **Ramp.** At each new session the paper gate (:func:`~tradeforge.governance.gates.paper_gate`)
  judges the sleeve's record at its current step; after ``ramp_after_sessions`` passing sessions
  in a row the share moves to the next step of ``ramp`` (never above the last).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import numpy as np

from tradeforge.core.errors import ConfigError, RiskError
from tradeforge.domain import (
    ClientOrderId,
    Instrument,
    Order,
    OrderFilled,
    OrderSide,
    OrderStatus,
    OrderSubmitted,
    OrderType,
    Portfolio,
    StrategyId,
    SubmitOrder,
    Symbol,
    TimeInForce,
)
from tradeforge.execution.ids import client_order_id
from tradeforge.governance.canary import CanaryBar, CanaryMonitor, CanaryReference, RollbackDecision
from tradeforge.governance.gates import GateResult, PaperEvidence, paper_gate
from tradeforge.risk import PortfolioView

logger = logging.getLogger(__name__)
SLEEVE_SUFFIX = "-canary"
_FRACTIONAL_STEP = Decimal("1e-9")
_ZERO = Decimal(0)


def sleeve_strategy_id(strategy_id: str) -> str:
    """The strategy id the canary sleeve's orders carry."""
    return f"{strategy_id}{SLEEVE_SUFFIX}"


def _toward_zero(quantity: Decimal, lot: Decimal | None) -> Decimal:
    step = lot if lot is not None and lot > 0 else _FRACTIONAL_STEP
    return (quantity / step).to_integral_value(rounding=ROUND_DOWN) * step


def gross_notional(
    quantities: Mapping[Symbol, Decimal], marks: Mapping[Symbol, Decimal]
) -> Decimal:
    """Sum of ``|quantity| x mark`` (a symbol without a mark counts 0: it cannot be valued)."""
    return sum((abs(q) * marks[s] for s, q in quantities.items() if q != 0 and s in marks), _ZERO)


def capped_targets(
    targets: Mapping[Symbol, Decimal], marks: Mapping[Symbol, Decimal], cap: Decimal,
    lot: Decimal | None = None,
) -> dict[Symbol, Decimal]:  # fmt: skip
    """``targets`` scaled down (each toward zero, to whole ``lot`` multiples) so that their gross
    notional at ``marks`` is at most ``cap``; unchanged when it already is."""
    if cap < 0:
        raise RiskError(f"notional cap = {cap}; expected >= 0")
    gross = gross_notional(targets, marks)
    if gross <= cap:
        return dict(targets)
    scale = cap / gross
    return {s: _toward_zero(q * scale, lot) for s, q in targets.items()}


def champion_portfolio(account: Portfolio, sleeve: Portfolio) -> Portfolio:
    """The account without the sleeve: cash, quantities, realised P&L and fees minus the
    sleeve's (the average price stays the account's; it only shapes unrealised P&L)."""
    positions = []
    for pos in account.positions:
        own = sleeve.position(pos.symbol)
        quantity = pos.quantity - own.quantity
        positions.append(pos.model_copy(update={
            "quantity": quantity, "avg_price": pos.avg_price if quantity != 0 else _ZERO,
            "realized_pnl": pos.realized_pnl - own.realized_pnl, "fees": pos.fees - own.fees,
        }))  # fmt: skip
    return account.model_copy(update={"cash": account.cash - sleeve.cash,
                                      "positions": tuple(positions)})  # fmt: skip


class SleeveLedger:
    """The sleeve's virtual sub-ledger (module docstring): allocated cash plus its own fills,
    each applied once; ``units`` turn its equity into a value per unit that a ramp's new cash
    does not move."""

    def __init__(self, strategy_id: str, allocation: Decimal = _ZERO) -> None:
        self.strategy_id = StrategyId(strategy_id)
        self.allocation = allocation
        self.portfolio = Portfolio(cash=allocation)
        self.units = Decimal(1)
        self.cids: set[ClientOrderId] = set()
        self.fill_ids: set[str] = set()
        self.n_fills = 0
        self.filled_notional = _ZERO
        self.fees = _ZERO

    def allocate(self, amount: Decimal, marks: Mapping[Symbol, Decimal]) -> None:
        """Move ``amount`` of the account's cash into the sleeve (units at the current value)."""
        equity = self.portfolio.equity(marks)
        if self.allocation > 0 and equity > 0:
            self.units += amount * self.units / equity
        self.allocation += amount
        self.portfolio = self.portfolio.model_copy(update={"cash": self.portfolio.cash + amount})

    def release(self) -> None:
        """Give the sleeve's cash back to the account (a retired, flat sleeve)."""
        cash = self.portfolio.cash
        self.allocation -= cash
        self.portfolio = self.portfolio.model_copy(update={"cash": _ZERO})

    def owns(self, order: Order | SubmitOrder) -> bool:
        return order.strategy_id == self.strategy_id or order.client_order_id in self.cids

    def apply(self, fill: OrderFilled) -> bool:
        """Apply one of the sleeve's fills; False when already applied or not the sleeve's."""
        if fill.client_order_id not in self.cids or fill.fill_id in self.fill_ids:
            return False
        self.fill_ids.add(fill.fill_id)
        self.portfolio = self.portfolio.apply_fill(fill)
        self.n_fills += 1
        self.filled_notional += abs(fill.signed_quantity) * fill.price
        self.fees += fill.fee
        return True

    def sync(self, fills: Iterable[OrderFilled]) -> int:
        return sum(1 for f in fills if self.apply(f))

    def equity(self, marks: Mapping[Symbol, Decimal]) -> Decimal:
        return self.portfolio.equity(marks)

    def unit_value(self, marks: Mapping[Symbol, Decimal]) -> float:
        return float(self.equity(marks) / self.units) if self.units > 0 else math.nan

    @property
    def flat(self) -> bool:
        return not self.portfolio.quantities()


class ChampionOms:
    """The policy node's view of the account's order manager: the portfolio, open orders and
    events without the sleeve's (everything else is the manager itself). Fills of the sleeve
    reach its ledger here, the moment the manager applies them."""

    def __init__(self, inner: Any, ledger: SleeveLedger) -> None:
        self.inner, self.ledger = inner, ledger

    @property
    def portfolio(self) -> Portfolio:
        return champion_portfolio(self.inner.portfolio, self.ledger.portfolio)

    def open_orders(self) -> list[Order]:
        return [o for o in self.inner.open_orders() if not self.ledger.owns(o)]

    def process_events(self) -> list[Any]:
        events = self.inner.process_events()
        mine = [e for e in events if e.client_order_id in self.ledger.cids]
        self.ledger.sync(e for e in mine if isinstance(e, OrderFilled))
        return [e for e in events if e.client_order_id not in self.ledger.cids]

    def reconcile(self) -> Any:
        report = self.inner.reconcile()
        self.ledger.sync(self.inner.store.fills())
        return report

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class SleeveRamp:
    """The sleeve's share: ``steps[index]``; :meth:`on_session` counts passing sessions in a row
    and moves one step up after ``after_sessions`` of them (never above the last step)."""

    def __init__(self, steps: Sequence[float], after_sessions: int, index: int = 0,
                 passing: int = 0) -> None:  # fmt: skip
        if not steps:
            raise ConfigError("canary.ramp = []; expected at least one share")
        self.steps, self.after = tuple(steps), after_sessions
        self.index = min(max(index, 0), len(self.steps) - 1)
        self.passing = passing

    @property
    def share(self) -> float:
        return self.steps[self.index]

    @property
    def at_top(self) -> bool:
        return self.index >= len(self.steps) - 1

    def on_session(self, passed: bool) -> float | None:
        """Count one session's gate outcome; the new share when the sleeve steps up, else None."""
        if self.at_top:
            self.passing = 0
            return None
        self.passing = self.passing + 1 if passed else 0
        if self.passing < self.after:
            return None
        self.index += 1
        self.passing = 0
        return self.share


@dataclass
class StepRecord:
    """What the paper gate judges at the current ramp step."""

    values: list[float]
    commands: int = 0
    denied: int = 0
    fills: int = 0
    unknown: int = 0
    cost: Decimal = _ZERO
    notional: Decimal = _ZERO

    def evidence(self) -> PaperEvidence:
        cost_bps = float(self.cost / self.notional * 10_000) if self.notional > 0 else None
        return PaperEvidence(equity=tuple(self.values), n_commands=self.commands,
                             n_denied=self.denied, n_fills=self.fills,
                             reconciliation_mismatches=self.unknown, cost_bps=cost_bps)  # fmt: skip


Notify = Callable[[dict[str, Any]], Any]
Rollback = Callable[[RollbackDecision], dict[str, Any]]


class CanarySleeve:
    """The canary inside the service (module docstring). ``program`` is the canary's
    :class:`~tradeforge.experiment.paper_program.TradingProgram`; ``rollback`` acts on a decision
    (the service binds :func:`~tradeforge.governance.canary.rollback` to its registry, audit log
    and alert manager); ``psi`` returns the drift check's latest PSI per feature (or None).
    :meth:`attach` wires it to the policy's node, :meth:`step` runs in the node thread at
    every bar close after the policy's orders."""

    def __init__(
        self, config: Any, program: Any, *, strategy_id: str, model: str, version: int | None,
        state_dir: Path, rollback: Rollback, psi: Callable[[], Mapping[str, float] | None]
        | None = None, reference: CanaryReference | None = None,
    ) -> None:  # fmt: skip
        self.config, self.program = config, program
        self.model, self.version = model, version
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ledger = SleeveLedger(sleeve_strategy_id(strategy_id))
        self.ramp = SleeveRamp(config.steps, config.ramp_after_sessions)
        self.monitor = CanaryMonitor(config.monitor, reference)
        self.policy = program.policy
        self.observer = program.observation_builder()
        self._rollback, self._psi = rollback, psi
        self.risk: Any = None
        self.inner: Any = None
        self.record = StepRecord([])
        self.arrival: dict[ClientOrderId, Decimal] = {}
        self.session: date | None = None
        self.last_gate: GateResult | None = None
        self.decision: RollbackDecision | None = None
        self.rolled_back = False
        self.rollback_bar: datetime | None = None
        self.flat_at: datetime | None = None
        self.bars_to_flat: int | None = None
        self.alert: dict[str, Any] | None = None
        self.error: str | None = None
        self.bars = 0
        self._rollback_index = 0
        self.step_ms: float | None = None
        self.ramp_log: list[dict[str, Any]] = []
        self.target_notional: float | None = None
        self.released: float | None = None
        self.rollback_ms: float | None = None
        self.last_weights: dict[str, float] = {}
        self.latency_s: float | None = None
        self.equity: float | None = None
        self.cap: float | None = None
        self._bar_time: datetime | None = None
        self._restore()

    def _restore(self) -> None:
        """After a restart: the allocation, units and ramp step of the same canary version
        (``STATE/canary/sleeve.json``); its positions come back from its fills."""
        path = self.state_dir / "sleeve.json"
        if not path.is_file():
            return
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("canary %s: %s unreadable (%s); starting afresh", self.model, path, exc)
            return
        if saved.get("version") != self.version or saved.get("rolled_back"):
            return
        allocation = Decimal(str(saved.get("allocation_exact") or 0))
        if allocation > 0:
            self.ledger.allocation = allocation
            self.ledger.portfolio = Portfolio(cash=allocation)
            self.ledger.units = Decimal(str(saved.get("units") or 1))
        self.ramp = SleeveRamp(self.config.steps, self.config.ramp_after_sessions,
                               int(saved.get("ramp_step") or 0),
                               int(saved.get("passing_sessions") or 0))  # fmt: skip

    # -- wiring ---------------------------------------------------------------------------------
    def attach(self, node: Any) -> None:
        """Put the sleeve between ``node`` and its order manager and open the sleeve's risk
        engine (its own state under ``STATE/canary/risk``)."""
        from tradeforge.execution.node_risk import OmsKillTarget
        from tradeforge.risk import RiskEngine

        if tuple(self.program.symbols) != tuple(str(s) for s in node.symbols):
            raise ConfigError(f"canary {self.model} v{self.version} trades "
                             f"{list(self.program.symbols)}; expected the policy's symbols "
                             f"{[str(s) for s in node.symbols]}")  # fmt: skip
        self.inner = node.oms
        for order in self.inner.store.load_orders():  # a restart: the sleeve's own orders
            if order.strategy_id == self.ledger.strategy_id:
                self.ledger.cids.add(order.client_order_id)
        self.ledger.sync(self.inner.store.fills())  # before the policy's first decision
        node.oms = ChampionOms(self.inner, self.ledger)
        target = OmsKillTarget(self.inner, self.ledger.strategy_id, self._now)
        self.risk = RiskEngine.open(self.state_dir / "risk", self.config.limits,
                                    clock=_Clock(self), kill_target=target)  # fmt: skip

    def close(self) -> None:
        close = getattr(self.risk, "close", None)
        if callable(close):
            close()

    def _now(self) -> datetime:
        return self._bar_time or datetime.now().astimezone()

    # -- the bar --------------------------------------------------------------------------------
    def step(self, node: Any, ts: datetime, *, decided: bool, halted: bool = False) -> None:
        """One bar close of the policy's node (module docstring); ``decided``: the policy
        decided this bar; ``halted``: the account's trading is halted (kill switch)."""
        self._bar_time = ts
        started = time.perf_counter()
        try:
            self._step(node, ts, decided=decided, halted=halted)
        finally:
            self.step_ms = (time.perf_counter() - started) * 1000.0
            self._save()

    def _step(self, node: Any, ts: datetime, *, decided: bool, halted: bool) -> None:
        marks: dict[Symbol, Decimal] = dict(node._marks)
        inner = self.inner
        self.ledger.sync(inner.store.fills())
        account = inner.portfolio.equity(marks)
        if self.ledger.allocation == 0 and not self.rolled_back:
            self.ledger.allocate(Decimal(repr(self.ramp.share)) * account, marks)
        if self.rolled_back:
            if self.flat_at is None and self.ledger.flat:
                self.flat_at = ts
                self.bars_to_flat = self.bars - self._rollback_index
            if self.ledger.flat and self.released is None:  # the sleeve's cash goes back
                self.released = float(self.ledger.portfolio.cash)
                self.ledger.release()
            self.bars += 1
            self.equity = float(self.ledger.equity(marks))
            return
        self._new_session(ts, marks, account)
        self.cap = float(account) * self.ramp.share
        self.equity = float(self.ledger.equity(marks))
        unknown = sum(1 for o in inner.open_orders()
                      if self.ledger.owns(o) and o.status is OrderStatus.NEW)  # fmt: skip
        errors, weights = 0, None
        if decided and not halted:
            try:
                weights = self._decide(node, marks)
            except Exception as exc:  # a canary that cannot decide is a rollback trigger
                errors += 1
                self.error = f"{type(exc).__name__}: {exc}"
                logger.warning("canary %s: %s", self.model, self.error)
        value = self.ledger.unit_value(marks)
        self.record.values.append(value)
        self.record.unknown += unknown
        decision = self.monitor.update(CanaryBar(
            timestamp=ts, equity=value, psi=self._psi() if self._psi else None, errors=errors,
            unknown_orders=unknown, latency_s=self.latency_s if weights is not None else None,
        ))  # fmt: skip
        if decision is not None:
            self._roll_back(ts, decision, marks)
        elif weights is not None:
            self._trade(node, ts, weights, marks, Decimal(repr(self.cap)))
        self.bars += 1

    def _decide(self, node: Any, marks: Mapping[Symbol, Decimal]) -> Any:
        from tradeforge.execution.node_policy import account_vector, target_weights

        if not node.window.ready:
            return None
        account = account_vector(self.ledger.portfolio, marks, node.symbols)
        started = time.perf_counter()
        weights = target_weights(self.policy, self.observer(node.window.values(), account),
                                 len(node.symbols))  # fmt: skip
        self.latency_s = time.perf_counter() - started
        self.last_weights = {str(s): float(w) for s, w in zip(node.symbols, weights, strict=True)}
        return weights

    def _trade(self, node: Any, ts: datetime, weights: Any, marks: Mapping[Symbol, Decimal],
               cap: Decimal) -> None:  # fmt: skip
        if any(self.ledger.owns(o) for o in self.inner.open_orders()):
            logger.info("canary %s: orders still open at %s; no new orders", self.model, ts)
            return
        commands = sleeve_orders(
            weights, self.ledger.portfolio, marks, node.symbols, node.instruments, node.sim,
            cap, self.ledger.strategy_id, ts,
        )  # fmt: skip
        after = dict(self.ledger.portfolio.quantities())
        for command in commands:
            sign = 1 if command.side is OrderSide.BUY else -1
            after[command.symbol] = after.get(command.symbol, _ZERO) + sign * command.quantity
        self.target_notional = float(gross_notional(after, marks))
        approved: list[SubmitOrder] = []
        pending: list[Order] = []
        for command in commands:
            view = PortfolioView(portfolio=self.ledger.portfolio, last_prices=dict(marks),
                                 open_orders=pending, instruments=node.instruments)  # fmt: skip
            denied = self.risk.validate(command, view)
            self.record.commands += 1
            if denied is not None:
                self.record.denied += 1
                logger.warning("canary risk denied %s: %s", command.symbol, denied.message)
                continue
            pending.append(Order.create(OrderSubmitted(client_order_id=command.client_order_id,
                                                       ts=ts, command=command)))  # fmt: skip
            approved.append(command)
        self._send(approved, marks)

    def _send(self, commands: list[SubmitOrder], marks: Mapping[Symbol, Decimal]) -> None:
        if not commands:
            return
        for command in commands:
            self.ledger.cids.add(command.client_order_id)
            self.arrival[command.client_order_id] = marks[command.symbol]
        self.inner.submit_many(commands)

    def _roll_back(self, ts: datetime, decision: RollbackDecision,
                   marks: Mapping[Symbol, Decimal]) -> None:  # fmt: skip
        self.decision, self.rolled_back, self.rollback_bar = decision, True, ts
        started = time.perf_counter()
        self._rollback_index = self.bars
        for order in self.inner.open_orders():
            if self.ledger.owns(order):
                self.inner.cancel(order.client_order_id)
        closing = [
            SubmitOrder(client_order_id=client_order_id(self.ledger.strategy_id, ts, f"flat:{s}"),
                        strategy_id=self.ledger.strategy_id, symbol=s,
                        side=OrderSide.SELL if q > 0 else OrderSide.BUY, quantity=abs(q),
                        order_type=OrderType.MARKET, time_in_force=TimeInForce.DAY)
            for s, q in sorted(self.ledger.portfolio.quantities().items())
        ]  # fmt: skip
        try:
            self._send(closing, marks)
        except Exception as exc:  # the alias still goes back; the operator must close by hand
            self.error = f"closing the sleeve failed: {type(exc).__name__}: {exc}"
            logger.exception("canary %s: closing the sleeve", self.model)
        if not closing:
            self.flat_at, self.bars_to_flat = ts, 0
        try:
            self.alert = self._rollback(decision)
        except Exception as exc:
            self.error = f"rollback failed: {type(exc).__name__}: {exc}"
            logger.exception("canary %s: rollback", self.model)
        self.rollback_ms = (time.perf_counter() - started) * 1000.0

    def _new_session(self, ts: datetime, marks: Mapping[Symbol, Decimal], account: Decimal) -> None:
        """At the first bar of a new session: the paper gate on the step's record, the ramp."""
        day = ts.date()
        if self.session is None or day == self.session:
            self.session = day
            return
        self.session = day
        fills = [f for f in self.inner.store.fills() if f.client_order_id in self.arrival]
        self.record.fills = len(fills)
        self.record.notional = sum((abs(f.signed_quantity) * f.price for f in fills), _ZERO)
        self.record.cost = sum((abs(f.signed_quantity) * abs(f.price - self.arrival[f.client_order_id])
                                + f.fee for f in fills), _ZERO)  # fmt: skip
        self.last_gate = paper_gate(self.record.evidence(),
                                    modelled_cost_bps=self.config.modelled_cost_bps,
                                    config=self.config.gate)  # fmt: skip
        before = self.ramp.share
        share = self.ramp.on_session(self.last_gate.passed)
        if share is not None:
            extra = Decimal(repr(share - before)) * account
            self.ledger.allocate(extra, marks)
            self.ramp_log.append({"bar": ts.isoformat(), "from": before, "to": share,
                                  "added": float(extra)})  # fmt: skip
            logger.warning("canary %s: sleeve share %.2f%% -> %.2f%%", self.model, before * 100,
                           share * 100)  # fmt: skip
            self.record = StepRecord([])
            self.arrival = {}

    # -- what the operator sees -----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        decision = self.decision
        return {
            "model": self.model, "version": self.version,
            "strategy_id": str(self.ledger.strategy_id), "share": self.ramp.share,
            "ramp_step": self.ramp.index, "ramp": list(self.ramp.steps),
            "passing_sessions": self.ramp.passing, "ramp_log": list(self.ramp_log),
            "allocation": float(self.ledger.allocation), "equity": self.equity,
            "allocation_exact": str(self.ledger.allocation), "units": str(self.ledger.units),
            "notional_cap": self.cap, "target_notional": self.target_notional, "bars": self.bars, "fills": self.ledger.n_fills,
            "positions": {str(s): float(q) for s, q in self.ledger.portfolio.quantities().items()},
            "last_weights": dict(self.last_weights),
            "decision_latency_ms": None if self.latency_s is None else self.latency_s * 1000.0,
            "last_gate": None if self.last_gate is None else
            {"passed": self.last_gate.passed, "failed": [c.name for c in self.last_gate.checks
                                                         if not c.passed]},
            "last_decision": None if decision is None else decision.to_dict(),
            "rolled_back": self.rolled_back,
            "reason": None if decision is None else ", ".join(decision.reasons),
            "rollback_bar": None if self.rollback_bar is None else self.rollback_bar.isoformat(),
            "flat_at": None if self.flat_at is None else self.flat_at.isoformat(),
            "bars_to_flat": self.bars_to_flat, "error": self.error,
            "step_ms": self.step_ms, "rollback_ms": self.rollback_ms,
            "released_cash": self.released,
        }  # fmt: skip

    def _save(self) -> None:
        path = self.state_dir / "sleeve.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state(), indent=1), encoding="utf-8")
        tmp.replace(path)


class _Clock:
    def __init__(self, sleeve: CanarySleeve) -> None:
        self._sleeve = sleeve

    def now(self) -> datetime:
        return self._sleeve._now()


def sleeve_orders(
    weights: Any, portfolio: Portfolio, marks: Mapping[Symbol, Decimal],
    symbols: Sequence[Symbol], instruments: Mapping[Symbol, Instrument], sim: Any,
    cap: Decimal, strategy_id: StrategyId, bar_time: datetime,
) -> list[SubmitOrder]:  # fmt: skip
    """Market day orders (sells first) that move ``portfolio`` to ``weights`` of its equity
    (NaN: hold; negative weights are 0 unless ``sim.allow_short``), with the targets cut to
    gross notional ``cap`` (:func:`capped_targets`); orders worth less than
    ``sim.min_trade_value`` are skipped unless they close a position."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    equity = max(portfolio.equity(marks), _ZERO)
    held = portfolio.quantities()
    lot = _lot(instruments, symbols, sim)
    targets: dict[Symbol, Decimal] = {}
    for j, symbol in enumerate(symbols):
        current = held.get(symbol, _ZERO)
        mark = marks.get(symbol)
        if not math.isfinite(w[j]) or mark is None or mark <= 0:
            targets[symbol] = current
            continue
        weight = w[j] if (w[j] >= 0 or sim.allow_short) else 0.0
        targets[symbol] = _toward_zero(Decimal(repr(float(weight))) * equity / mark, lot)
    targets = capped_targets(targets, marks, cap, lot)
    minimum = Decimal(repr(float(getattr(sim, "min_trade_value", 0.0) or 0.0)))
    orders: list[SubmitOrder] = []
    for symbol, target in targets.items():
        delta = target - held.get(symbol, _ZERO)
        if delta == 0:
            continue
        if abs(delta) * marks.get(symbol, _ZERO) < minimum and target != 0:
            continue
        orders.append(SubmitOrder(
            client_order_id=client_order_id(strategy_id, bar_time, str(symbol)),
            strategy_id=strategy_id, symbol=symbol,
            side=OrderSide.BUY if delta > 0 else OrderSide.SELL, quantity=abs(delta),
            order_type=OrderType.MARKET, time_in_force=TimeInForce.DAY,
        ))  # fmt: skip
    return sorted(orders, key=lambda o: o.side is OrderSide.BUY)


def _lot(
    instruments: Mapping[Symbol, Instrument], symbols: Sequence[Symbol], sim: Any
) -> Decimal | None:
    if getattr(sim, "fractional", False):
        return None
    lots = {instruments[s].lot_size for s in symbols if s in instruments}
    return max(lots) if lots else Decimal(1)


__all__ = [
    "SLEEVE_SUFFIX",
    "CanarySleeve",
    "ChampionOms",
    "SleeveLedger",
    "SleeveRamp",
    "capped_targets",
    "champion_portfolio",
    "gross_notional",
    "sleeve_orders",
    "sleeve_strategy_id",
]
