"""The trading node: the bar loop that turns a policy's decisions into orders on a broker.

At every bar close::

    bar (BarFeed) -> checks (stale? bad values?) -> FeaturePipeline.update -> observation
      -> Policy.act -> sim limits (clip_targets) -> plan_orders -> journal (decision committed)
      -> risk hook (validate, per order) -> OrderManager.submit_many (the bar's intents written
      ahead in one transaction, then sent) -> ...
    clock.advance() -> fills (process_events) -> mark to market -> journal (equity)

The same fitted feature pipeline, the same ``sim`` limits and sizing rules as the backtest, and
fills by the same simulator on the local venue, so a paper replay of a past period reproduces
its backtest (docs/paper.md). Each (strategy, bar) is decided at most once, also across crashes
(:mod:`~tradeforge.execution.node_journal`); the order manager reconciles with the broker at
start-up and every ``reconcile_every`` bars and halts new orders on an unexplained difference
until a later reconciliation passes. After a restart the policy's own state (recurrent
memory, previous target) is rebuilt by replaying its journaled decisions on the observations it
had; a replayed decision that differs from the journal is counted (``restore_mismatches``).
The node imports no agent code: the policy, its feature pipeline and an
:class:`~tradeforge.execution.node_policy.ObservationBuilder` are handed in.

With ``NodeConfig.exec_algo`` on (TWAP/VWAP, :mod:`~tradeforge.execution.algos`), an order worth
at least ``min_parent_notional`` is sent as child orders over the next bars; the schedules live
in the journal and are committed with each bar's decision, and a later decision that changes
the symbol's weight replaces the rest of its schedule (:mod:`~tradeforge.execution.node_sizing`).
Every order the policy decided is journaled as a parent with its arrival price, so
``NodeResult.shortfall()`` measures its implementation shortfall.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from tradeforge.core.clock import Clock
from tradeforge.core.errors import ConfigError
from tradeforge.core.policy import Policy
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import BarPanel
from tradeforge.domain import (
    Instrument,
    OrderFilled,
    StrategyId,
    SubmitOrder,
    Symbol,
    TimeInForce,
)
from tradeforge.execution.algos import VolumeHistory, make_schedule
from tradeforge.execution.broker import Broker
from tradeforge.execution.errors import BrokerUnavailableError, TradingHaltedError
from tradeforge.execution.node_config import NodeConfig, NodeResult, RiskFactory
from tradeforge.execution.node_features import FeatureWindow, OnlineFeatures
from tradeforge.execution.node_feed import (
    BarClock,
    BarFeed,
    MarketBar,
    NodeDataError,
    bar_problems,
    is_stale,
)
from tradeforge.execution.node_journal import BarDecision, NodeJournal
from tradeforge.execution.node_policy import (
    DecisionExplainer,
    ObservationBuilder,
    account_vector,
    explain_observation,
    feed_back,
    replay_decisions,
    target_weights,
)
from tradeforge.execution.node_risk import (
    OmsKillTarget,
    PassThroughRisk,
    RiskHook,
    crash_hook,
    exit_commands,
)
from tradeforge.execution.node_sizing import (
    local_buying_power,
    reserved_cash,
    size_orders,
    slice_bar,
    split_active,
)
from tradeforge.execution.oms import Hook, OrderManager
from tradeforge.execution.store import OrderStore
from tradeforge.risk import PortfolioView
from tradeforge.risk.gate import gate_orders
from tradeforge.sim import SimConfig

logger = logging.getLogger(__name__)


class TradingNode:
    """The bar loop (module docstring). ``fingerprint`` names the program (a journal written
    by another program is refused); ``sim`` is the simulator config the policy was trained
    with (its limits and share rules size the orders); ``hook`` is handed to the order manager
    (None: the crash-test hook of ``TRADEFORGE_NODE_CRASH_AT`` when that is set);
    ``risk_factory`` builds the risk hook from the node's kill target and bar clock (None:
    :class:`PassThroughRisk`)."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        policy: Policy,
        observer: ObservationBuilder,
        features: OnlineFeatures,
        broker: Broker,
        clock: BarClock,
        feed: BarFeed,
        sim: SimConfig,
        state_dir: str | Path,
        fingerprint: str = "",
        risk_factory: RiskFactory | None = None,
        hook: Hook | None = None,
        wall_clock: Clock | None = None,
        explainer: DecisionExplainer | None = None,
    ) -> None:
        if config.strategy_id is None:
            raise ConfigError("NodeConfig.strategy_id = None; expected a strategy id")
        if sim.delay_bars != 0:
            raise ConfigError(
                f"sim.delay_bars = {sim.delay_bars}; the trading node sends orders at the "
                "decision bar (expected 0: latency is real on a venue)"
            )
        self.config = config
        self.strategy_id = StrategyId(config.strategy_id)
        self.policy, self.observer, self.broker = policy, observer, broker
        self.clock, self.feed, self.sim = clock, feed, sim
        self.symbols = tuple(Symbol(s) for s in feed.symbols)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.wall_clock = wall_clock
        self.explainer = explainer  # journals why each decision was taken (None: nothing)
        self.journal = NodeJournal(self.state_dir / "node.sqlite", self.strategy_id,
                                   self.symbols, fingerprint)  # fmt: skip
        self.store = OrderStore.open_sqlite(self.state_dir / "oms.sqlite")
        self.oms = OrderManager(self.store, broker, hook=hook if hook is not None else crash_hook())
        self.window = FeatureWindow(features, observer.window, config.features)
        self.sizing = config.sizing.model_copy(
            update={"allow_short": sim.allow_short, "min_trade_value": sim.min_trade_value}
        )
        self.instruments = {
            s: Instrument(symbol=s, fractionable=sim.fractional, shortable=sim.allow_short,
                          lot_size=Decimal(repr(sim.lot_size)),
                          price_increment=config.price_increment)
            for s in self.symbols
        }  # fmt: skip
        self._bar_time: datetime = clock.current()
        target = OmsKillTarget(self.oms, self.strategy_id, lambda: self._bar_time)
        self.risk: RiskHook = (
            risk_factory(target, _BarTimeClock(self)) if risk_factory else PassThroughRisk()
        )
        self._marks: dict[Symbol, Decimal] = {}
        self._close: FloatArray = np.full(len(self.symbols), np.nan)
        self._problems: list[str] = []
        self._seen_at = 0.0
        self._last: tuple[FloatArray, FloatArray] | None = None  # (weights, close) of the last
        self._advanced = False
        self._exiting: set[Symbol] = set()
        self.schedule = make_schedule(config.exec_algo)
        self.volumes = (VolumeHistory(self.symbols, config.exec_algo.lookback)
                        if self.schedule is not None else None)  # fmt: skip
        self._result = NodeResult(self.strategy_id, [], [], [], [], halted=False)

    def close(self) -> None:
        self.journal.close()
        self.store.close()
        close = getattr(self.risk, "close", None)
        if callable(close):
            close()

    # -- the loop -------------------------------------------------------------------------------
    def run(self, start: datetime | None = None, end: datetime | None = None) -> NodeResult:
        """Trade every bar close in ``[start, end]`` (None: from now / until the venue stops);
        the bar after ``end`` is still marked, so its fills count. Returns the journal's view."""
        report = self.oms.start()
        self._result.reconciliations.append(f"start-up: {report.summary()}")
        self._warm_start()
        every = self.config.reconcile_every
        bars = 0
        while True:
            ts = self.clock.current()
            self._settle()  # the previous bar's fills: they come before this bar's close
            if bars and every and bars % every == 0:
                summary = self.oms.reconcile().summary()
                self._result.reconciliations.append(f"{ts.isoformat()}: {summary}")
            if bars:
                self._ingest(ts)
            bars += 1
            if end is not None and ts > end:
                self._mark(ts)
                break
            if start is None or ts >= start:
                self._controls(ts)
                self._trade(ts)
            self._mark(ts)  # submitting changes no position: the equity is the close's
            if not self.clock.can_advance():
                break
            self.clock.advance()
            self._advanced = True
        return self.result()

    def result(self) -> NodeResult:
        r = self._result
        r.marks = self.journal.marks()
        r.decisions = self.journal.decisions()
        r.orders = [o for o in self.store.load_orders() if o.strategy_id == self.strategy_id]
        cids = {o.client_order_id for o in r.orders}
        r.fills = [f for f in self.store.fills() if f.client_order_id in cids]
        r.halted = self.oms.halted
        r.parents = self.journal.parents()
        return r

    # -- bars and features ------------------------------------------------------------------------
    def _warm_start(self) -> None:
        ts = self.clock.current()
        history = self.feed.history(ts)
        self.window.start(history)
        self._marks_from(history)
        self._volumes_from(history)
        self._bar_time = ts
        if history.index[-1] != ts:
            self._problems = [f"no bar at {ts.isoformat()} (history ends {history.index[-1]})"]
        self._seen_at = time.perf_counter()
        self._restore_policy(history)

    def _marks_from(self, history: BarPanel) -> None:
        close = history.close
        self._close = close[-1].copy()
        for j, symbol in enumerate(self.symbols):
            finite = np.flatnonzero(np.isfinite(close[:, j]))
            if finite.size:
                self._marks[symbol] = Decimal(repr(float(close[finite[-1], j])))

    def _volumes_from(self, history: BarPanel) -> None:
        """The trailing volumes the execution algorithm forecasts from (its lookback dates)."""
        if self.volumes is None or history.n_bars == 0:
            return
        dates = history.index.normalize()
        keep = dates.unique()[-(self.volumes.lookback + 1) :]
        first = int(dates.searchsorted(keep[0], side="left"))
        volume = history.volume
        for row in range(first, history.n_bars):
            self.volumes.push(history.index[row].to_pydatetime(), volume[row])

    def _ingest(self, ts: datetime) -> None:
        bar = self._wait_for_bar(ts)
        self._bar_time = ts
        self._problems = []
        if bar is None:
            self._problems = [f"no bar at {ts.isoformat()} from the feed"]
            self.window.invalidate()
            return
        self._seen_at = time.perf_counter()
        if not self.window.valid:
            self.window.start(self.feed.history(ts))
        else:
            self.window.push(bar)
        held = [s for s, q in self.oms.portfolio.quantities().items() if q != 0]
        self._problems = bar_problems(bar, self.symbols, held)
        now = self.wall_clock.now() if self.wall_clock is not None else None
        stale = is_stale(bar.timestamp, ts, now, self.config.max_bar_age_s)
        if stale:
            self._problems.append(stale)
        self._close = bar.close.copy()
        if self.volumes is not None and "volume" in bar.fields:
            self.volumes.push(ts, bar.fields["volume"])
        for j, symbol in enumerate(self.symbols):
            value = float(bar.close[j])
            if np.isfinite(value):
                self._marks[symbol] = Decimal(repr(value))

    def _wait_for_bar(self, ts: datetime) -> MarketBar | None:
        deadline = time.monotonic() + self.config.bar_timeout_s
        while True:
            try:
                bar = self.feed.bar(ts)
            except NodeDataError as exc:
                logger.warning("bar %s: %s", ts.isoformat(), exc)
                bar = None
            if bar is not None or time.monotonic() >= deadline:
                return bar
            time.sleep(max(self.config.poll_interval_s, 0.05))

    # -- orders, fills, marks ---------------------------------------------------------------------
    def _settle(self) -> None:
        """Apply the broker's events; on a replay venue whose clock this node moved, wait until
        the previous bar's day orders are done (then ask over REST if they are not)."""
        self._apply_events()
        if not (self.clock.replay and self._advanced):
            return
        self._advanced = False
        deadline = time.monotonic() + self.config.fill_timeout_s
        while any(o.time_in_force is not TimeInForce.GTC for o in self.oms.open_orders()):
            if time.monotonic() >= deadline:
                logger.warning("fills not all streamed within %.1f s; reconciling over REST",
                               self.config.fill_timeout_s)  # fmt: skip
                report = self.oms.reconcile()
                self._result.reconciliations.append(f"late fills: {report.summary()}")
                break
            time.sleep(self.config.poll_interval_s)
            self._apply_events()

    def _apply_events(self) -> None:
        running = self.oms.portfolio
        for event in self.oms.process_events():
            if isinstance(event, OrderFilled):
                self.risk.on_fill(event, running.position(event.symbol))
                running = running.apply_fill(event)

    def _view(self) -> PortfolioView:
        return PortfolioView(portfolio=self.oms.portfolio, last_prices=dict(self._marks),
                             open_orders=self.oms.open_orders(),
                             instruments=self.instruments)  # fmt: skip

    def _mark(self, ts: datetime) -> None:
        portfolio = self.oms.portfolio
        self.journal.record_mark(ts, portfolio.equity(self._marks), portfolio.cash)

    def _controls(self, ts: datetime) -> None:
        """The risk engine's kill switch, breakers and stops at this bar (exits are sent)."""
        view = self._view()
        self.risk.poll(view)
        report = self.risk.update(view)
        exits = tuple(getattr(report, "exits", ()) or ())
        self._exiting = set()
        commands = exit_commands(exits, self.strategy_id, ts, "exit")
        for command in commands:
            logger.warning("bar %s: risk exit %s %s %s", ts.isoformat(), command.side.value,
                           command.quantity, command.symbol)  # fmt: skip
            self._exiting.add(command.symbol)
        self._send_many(ts, list(commands), None)

    # -- decisions --------------------------------------------------------------------------------
    def _trade(self, ts: datetime) -> None:
        decision = self.journal.decision(ts)
        if decision is not None and decision.status == "submitted":
            return
        if decision is None:
            reason = self._why_not(ts)
            if reason is not None:
                self._result.skipped.append((ts, reason))
                logger.warning("bar %s: no decision: %s", ts.isoformat(), reason)
                return
            decision = self._decide(ts)
            self._result.decide_latency_s.append(time.perf_counter() - self._seen_at)
        commands = [c for c in decision.commands if c.client_order_id not in decision.denied]
        self._send_many(ts, commands, decision)
        self.journal.mark_submitted(ts)
        self._result.submit_latency_s.append(time.perf_counter() - self._seen_at)

    def _why_not(self, ts: datetime) -> str | None:
        if self.oms.halted:
            report = self.oms.last_report
            return f"trading halted by reconciliation ({report.summary() if report else ''})"
        if self._problems:
            return "; ".join(self._problems)
        if not self.window.ready:
            return f"features not ready (warm-up: {self.window.reason})"
        return None

    def _decide(self, ts: datetime) -> BarDecision:
        account = account_vector(self.oms.portfolio, self._marks, self.symbols)
        if self._last is not None:
            feed_back(self.policy, self._last[0], ts, self._close, self._last[1])
        obs = self.observer(self.window.values(), account)
        weights = target_weights(self.policy, obs, len(self.symbols))
        self._last = (weights, self._close.copy())
        active = self.journal.parents(active_only=True)
        going, ended = split_active(active, weights, self.symbols, frozenset(self._exiting), ts,
                                    self.config.exec_algo.replace_tolerance)  # fmt: skip
        hold = frozenset(self._exiting) | {p.symbol for p in going}
        commands = self._size(weights, ts, hold, reserved_cash(going, self._marks))
        planned = slice_bar(
            commands, going, weights=weights, symbols=self.symbols, marks=self._marks,
            instruments=self.instruments, sizing=self.sizing, schedule=self.schedule,
            min_parent_notional=Decimal(repr(self.config.exec_algo.min_parent_notional)),
            volumes=self.volumes, strategy_id=self.strategy_id, bar_time=ts,
        )  # fmt: skip
        return self.journal.record_decision(ts, weights, account.as_tuple(), planned.commands,
                                            [*ended, *planned.parents],
                                            explanation=explain_observation(self.explainer, obs))  # fmt: skip

    def _size(
        self, weights: FloatArray, ts: datetime, hold: frozenset[Symbol], reserved: Decimal
    ) -> list[SubmitOrder]:
        portfolio = self.oms.portfolio
        if self.config.buying_power == "broker":
            try:
                buying_power = self.broker.account().buying_power
            except BrokerUnavailableError as exc:
                logger.warning("account unavailable (%s); sizing with the local cash", exc)
                buying_power = local_buying_power(portfolio, self.oms.open_orders(), self._marks)
        else:
            buying_power = local_buying_power(portfolio, self.oms.open_orders(), self._marks)
        return size_orders(
            weights, portfolio=portfolio, marks=self._marks, symbols=self.symbols, sim=self.sim,
            instruments=self.instruments, sizing=self.sizing,
            buying_power=buying_power - reserved, strategy_id=self.strategy_id, bar_time=ts,
            hold=hold,
        )  # fmt: skip

    def _send_many(
        self, ts: datetime, commands: Sequence[SubmitOrder], decision: BarDecision | None
    ) -> None:
        """A bar's orders: each risk-checked in turn (``tradeforge.risk.gate.gate_orders``, the
        backtester's gate too: against the open orders plus those of this bar already approved),
        then the approved ones sent in one ``submit_many``, in order."""
        gated = gate_orders(self.risk, commands, self._view(), ts,
                            known=lambda cid: self.oms.get_order(cid) is not None)  # fmt: skip
        for command, denied in gated.denied:
            cid = command.client_order_id
            logger.warning("risk denied %s: %s %s", cid, denied.reason, denied.message)
            if decision is not None:
                self.journal.record_denial(ts, cid, f"{denied.reason}: {denied.message}")
        approved = gated.approved
        if not approved:
            return
        try:
            self.oms.submit_many(approved)
        except TradingHaltedError as exc:
            for command in approved:
                cid = command.client_order_id
                logger.error("bar %s: %s not sent: %s", ts.isoformat(), cid, exc)
                if decision is not None:
                    self.journal.record_denial(ts, cid, "trading halted by reconciliation")

    # -- restart ----------------------------------------------------------------------------------
    def _restore_policy(self, history: BarPanel) -> None:
        """``reset()``, then replay the journaled decisions so the policy's state is what it was."""
        reset = getattr(self.policy, "reset", None)
        if callable(reset):
            reset()
        try:
            self._replay_decisions(history)
        finally:
            self.window.drop_history()

    def _replay_decisions(self, history: BarPanel) -> None:
        last, mismatches = replay_decisions(
            self.policy, self.observer, self.journal.decisions(), history,
            self.window.history_window, len(self.symbols),
        )  # fmt: skip
        self._last = last
        self._result.restore_mismatches += mismatches


class _BarTimeClock:
    """The node's current bar time as a :class:`~tradeforge.core.clock.Clock` (risk breakers
    then count days in bar time, so a replay breaks exactly where the period did)."""

    def __init__(self, node: TradingNode) -> None:
        self._node = node

    def now(self) -> datetime:
        return self._node._bar_time


def as_bar_time(value: Any) -> datetime:
    """A date or time as the tz-aware UTC datetime the node compares bar times with."""
    from tradeforge.execution.node_feed import utc

    out: datetime = utc(value).to_pydatetime()
    return out


__all__ = ["NodeConfig", "NodeResult", "RiskFactory", "TradingNode", "as_bar_time"]
