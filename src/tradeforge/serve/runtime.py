"""The running service: one trading node in its own thread, paced by the scheduler, watched.

* The node (``experiment.paper.open_node``: the same node ``tradeforge paper`` runs) is built and
  run in a thread of its own, so its SQLite connections and broker objects stay in one thread.
  Its clock is wrapped in a :class:`GatedClock`: after each bar the node waits at a
  :class:`BarGate` until the scheduler releases the next bar (a replay venue: every
  ``replay.bar_interval_s`` seconds; Alpaca: at each bar close of the exchange calendar). Each
  bar runs at most once, also across a restart: the scheduler's ledger and the node's journal
  both refuse a bar twice.
* While it waits, the node thread polls the kill latch, so a kill from the API cancels open
  orders within a fraction of a second, not at the next bar.
* A watcher thread turns changes between snapshots into Prometheus metrics and alerts (fills,
  orders, denials, trading state changes), and refreshes the gauges.
* :meth:`TradingService.snapshot`, :meth:`kill`, :meth:`resume` and :meth:`score` are what
  the API and the dashboard call.
* With ``canary.enabled`` and a ``canary`` alias in the registry, a
  :class:`~tradeforge.serve.canary.CanarySleeve` trades a share of the account beside the policy
  and rolls itself back; with ``shadow.enabled`` and a ``shadow`` alias, a
  :class:`~tradeforge.serve.shadow.ShadowRunner` decides on the same bars without orders. Both
  run in the node thread at each bar close, after the policy's orders (``GatedClock.advance``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.core.errors import ConfigError, TradeforgeError
from tradeforge.experiment.paper import open_node, replay_period, strategy_id_for
from tradeforge.experiment.paper_program import TradingProgram, load_program
from tradeforge.monitor.alert_sinks import Alert
from tradeforge.monitor.alert_store import AlertStore
from tradeforge.monitor.alerts import AlertManager
from tradeforge.monitor.drift_history import HistoryWriter
from tradeforge.monitor.logs import bind_context
from tradeforge.monitor.prometheus import TradingMetrics
from tradeforge.risk import (
    DenyReason,
    RiskConfig,
    RiskStateStore,
    StatePaths,
    TradingState,
    kill_state_dir,
    resume_state_dir,
)
from tradeforge.serve.calendar import BarCalendar, CalendarCheck, broker_sessions
from tradeforge.serve.canary import CanarySleeve
from tradeforge.serve.config import RegistryConfig, ServeConfig
from tradeforge.serve.jobs import JobLedger, RetrainWorker
from tradeforge.serve.scheduler import ServiceScheduler
from tradeforge.serve.shadow import ShadowRunner
from tradeforge.serve.snapshot import ModelRow, Snapshot
from tradeforge.serve.view import LiveFacts, StateReader

logger = logging.getLogger(__name__)
FEED, SLEEVE = "bars", "account"
CACHE_S = 0.2  # snapshots are rebuilt at most this often
WATCH_S = 0.25  # the watcher's period


class ServiceStopped(TradeforgeError):
    """Raised inside the node thread when the service stops while the node waits for a bar."""


class BarGate:
    """Lets the node through one bar per :meth:`release` (module docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._tokens = 0
        self._stopped = False

    def release(self, bars: int = 1) -> None:
        with self._cond:
            self._tokens += bars
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def wait(self, idle: Callable[[], None] | None = None, tick_s: float = 0.1) -> None:
        """Block until a bar is released (``idle`` runs every ``tick_s`` meanwhile, in the
        caller's thread); :class:`ServiceStopped` when the service stops."""
        while True:
            with self._cond:
                if self._stopped:
                    raise ServiceStopped("the service is stopping")
                if self._tokens:
                    self._tokens -= 1
                    return
                self._cond.wait(tick_s)
            if idle is not None:
                idle()


class GatedClock:
    """A node clock whose ``advance`` first reports the finished bar, then waits at the gate."""

    def __init__(self, inner: Any, gate: BarGate, service: TradingService) -> None:
        self.inner, self.gate, self.service = inner, gate, service
        self.replay = inner.replay

    def current(self) -> datetime:
        out: datetime = self.inner.current()
        return out

    def can_advance(self) -> bool:
        return bool(self.inner.can_advance())

    def advance(self) -> None:
        self.service._after_bar()
        self.service._bar_done()
        self.gate.wait(self.service._idle)
        self.inner.advance()


class RecordingFeed:
    """The node's bar feed, noting the last closes and when each bar arrived, and binding the
    bar's correlation id (``strategy|bar time``, the scheduler's bar key) to every log line the
    node thread writes while it handles that bar."""

    def __init__(self, inner: Any, facts: LiveFacts, strategy: str = "") -> None:
        self.inner, self.facts, self.strategy = inner, facts, strategy

    @property
    def symbols(self) -> tuple[str, ...]:
        out: tuple[str, ...] = tuple(self.inner.symbols)
        return out

    def history(self, end: datetime) -> Any:
        panel = self.inner.history(end)
        if panel.n_bars:
            self._note(panel.index[-1], panel.close[-1])
        return panel

    def bar(self, timestamp: datetime) -> Any:
        bind_context(strategy=self.strategy,
                     correlation_id=f"{self.strategy}|{pd.Timestamp(timestamp).isoformat()}")  # fmt: skip
        bar = self.inner.bar(timestamp)
        if bar is not None:
            self._note(bar.timestamp, bar.close)
        return bar

    def _note(self, ts: Any, close: Any) -> None:
        prices = {s: float(c) for s, c in zip(self.symbols, close, strict=True) if np.isfinite(c)}
        self.facts.last_prices = {**self.facts.last_prices, **prices}
        self.facts.last_bar_time = pd.Timestamp(ts).to_pydatetime()
        self.facts.bar_arrived_at = datetime.now(UTC)


class RecordingObserver:
    """The node's observation builder, keeping the latest bar's features (N, F: every pipeline
    feature, in order) for the drift history."""

    def __init__(self, inner: Any, facts: LiveFacts) -> None:
        self.inner, self.facts = inner, facts

    @property
    def window(self) -> int:
        out: int = self.inner.window
        return out

    def __call__(self, features: Any, account: Any) -> Any:
        self.facts.last_features = np.asarray(features, dtype=np.float64)[-1].copy()
        return self.inner(features, account)


class TimedPolicy:
    """The node's policy, timing each decision and keeping the last observation and weights."""

    def __init__(self, inner: Any, service: TradingService) -> None:
        self.inner, self.service = inner, service
        self.lock = threading.Lock()
        self.last_observation: Any = None

    def act(self, observation: Any) -> Any:
        started = time.perf_counter()
        with self.lock:
            weights = self.inner.act(observation)
        seconds = time.perf_counter() - started
        self.last_observation = observation
        self.service._decided(np.asarray(weights, dtype=float).reshape(-1), seconds)
        return weights

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TradingService:
    """The service (module docstring). ``program`` overrides ``config.policy`` (tests pass a
    torch-free program), ``canary_program`` and ``shadow_program`` the artifacts of the registry's
    ``canary`` and ``shadow`` versions (the aliases are still read from the registry);
    ``alerts`` and ``metrics`` default to ones built from the config."""

    def __init__(
        self, config: ServeConfig, program: TradingProgram | None = None, *,
        metrics: TradingMetrics | None = None, alerts: AlertManager | None = None,
        canary_program: TradingProgram | None = None,
        shadow_program: TradingProgram | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.program = program if program is not None else load_program(Path(config.policy))
        self.state_dir = Path(config.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.risk_config = config.paper.risk or RiskConfig()  # the kill switch needs an engine
        self.paper_config = config.paper.model_copy(update={"risk": self.risk_config})
        self.strategy_id = config.paper.node.strategy_id or strategy_id_for(self.program)
        self.paper_config = self.paper_config.model_copy(update={"node": config.paper.node.model_copy(
            update={"strategy_id": self.strategy_id})})  # fmt: skip
        self.symbols = tuple(self.program.symbols)
        self.facts = LiveFacts()
        self.facts.models = [self._running_model()]
        self.reader = StateReader(
            self.state_dir, strategy_id=self.strategy_id, symbols=self.symbols,
            mode=config.mode, venue=config.venue, risk=self.risk_config,
            periods_per_year=self.program.env.sim.periods_for(self.program.data.frequency),
        )  # fmt: skip
        self.metrics = metrics or TradingMetrics(
            self.symbols, [self.strategy_id], denial_reasons=[r.value for r in DenyReason],
            venues=(config.venue,), feeds=(FEED,), sleeves=(SLEEVE,),
            model_aliases=("running", "champion", "challenger", "shadow", "canary",
                           "previous_champion"),
            alert_channels=(*[w.name for w in config.alerts.webhooks],
                            *([config.alerts.email.name] if config.alerts.email else []),
                            "*", "none"),
        )  # fmt: skip
        self.metrics.set_bar_interval(FEED, self._bar_interval_s())
        self.metrics.set_market_open(FEED, True)
        self.metrics.set_trading_state("active")
        self.metrics.set_kill_switch(False)
        self.alerts = alerts or AlertManager(
            config.alerts, AlertStore(self.state_dir / "alerts.sqlite"),
            on_delivery=self.metrics.count_alert,
        )  # fmt: skip
        self.gate = BarGate()
        self.history = HistoryWriter(self.state_dir)
        self.scheduler = ServiceScheduler(
            JobLedger(self.state_dir / "jobs.sqlite"), on_error=self._job_failed,
            catch_up=config.schedule.catch_up, misfire_grace_s=config.schedule.misfire_grace_s,
        )  # fmt: skip
        self._policy: TimedPolicy | None = None
        self._node: Any = None
        self._node_thread: threading.Thread | None = None
        self._watch_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._cache: tuple[float, Snapshot] | None = None
        self._cache_lock = threading.Lock()
        self._kill_seen = False
        self._seen: dict[str, Any] = {}
        self.error: str | None = None
        self._registry: Any = None
        self._psi: dict[str, float] | None = None
        self._champion_weights: np.ndarray | None = None
        self.canary: CanarySleeve | None = None
        self.shadow: ShadowRunner | None = None
        self.canary_status: dict[str, Any] | None = None
        self.shadow_status: dict[str, Any] | None = None
        self._open_sleeves(canary_program, shadow_program)

    # -- canary and shadow ------------------------------------------------------------------------
    def _open_sleeves(self, canary: TradingProgram | None, shadow: TradingProgram | None) -> None:
        """The canary sleeve and the shadow runner for the registry's ``canary`` / ``shadow``
        versions, when enabled and the alias exists (else their status says why not)."""
        cfg = self.config
        if cfg.registry is None or not (cfg.canary.enabled or cfg.shadow.enabled):
            return
        from tradeforge.agents.registry import CANARY, PolicyRegistry

        self._registry = PolicyRegistry(cfg.registry.uri, create=False)
        aliases = self._registry.aliases(cfg.registry.model)
        model = cfg.registry.model
        if cfg.canary.enabled:
            version = aliases.get(CANARY)
            if version is None:
                self.canary_status = {"model": model, "active": False, "rolled_back": False,
                                      "reason": f"{model!r} has no alias 'canary'"}  # fmt: skip
            else:
                self.canary = CanarySleeve(
                    cfg.canary, canary or self._alias_program(CANARY, version),
                    strategy_id=self.strategy_id, model=model, version=version,
                    state_dir=self.state_dir / "canary", rollback=self._rollback,
                    psi=lambda: self._psi, reference=self._canary_reference(),
                )  # fmt: skip
                self.canary_status = {"active": True, **self.canary.state()}
        if cfg.shadow.enabled:
            version = aliases.get("shadow")
            if version is None:
                self.shadow_status = {"model": model, "active": False,
                                      "reason": f"{model!r} has no alias 'shadow'"}  # fmt: skip
            else:
                out = Path(cfg.shadow.dir) if cfg.shadow.dir else self.state_dir / "shadow"
                self.shadow = ShadowRunner(shadow or self._alias_program("shadow", version),
                                           model=model, version=version, out_dir=out)  # fmt: skip
                self.shadow_status = {"active": True, **self.shadow.state()}

    def _alias_program(self, alias: str, version: int) -> TradingProgram:
        reg = self.config.registry
        if reg is None:
            raise ConfigError(f"{alias}: registry is not set; expected registry: {{model: NAME}}")
        target = self.state_dir / alias / f"artifact-v{version}"
        local = self._registry.download(reg.model, version, target)
        return load_program(Path(local))

    def _canary_reference(self) -> Any:
        from tradeforge.governance.canary import CanaryReference

        path = self.config.canary.reference_returns
        if not self.config.canary.monitor.cusum or path is None:
            return None
        if path.endswith(".npy"):
            returns = np.load(path)
        else:
            returns = pd.read_csv(path, index_col=0).iloc[:, 0].to_numpy(dtype=float)
        return CanaryReference.from_returns(np.asarray(returns, dtype=float))

    def _rollback(self, decision: Any) -> dict[str, Any]:
        """Move the alias back (one audit event) and alert once, through the alert manager."""
        from tradeforge.governance.canary import rollback
        from tradeforge.governance.lifecycle import open_audit

        reg = self.config.registry
        if reg is None:
            raise ConfigError(
                "canary rollback: registry is not set; expected registry: {model: NAME}"
            )
        audit = open_audit(reg.audit_path, reg.uri or self._registry.uri)
        try:
            return rollback(self._registry, reg.model, decision, audit,
                            notify=self._rollback_alert, actor="serve-canary")  # fmt: skip
        finally:
            audit.close()

    def _rollback_alert(self, alert: dict[str, Any]) -> None:
        decision = alert.get("decision", {})
        details = "; ".join(
            t.get("detail", t.get("name", "")) for t in decision.get("triggers", [])
        )
        self.alerts.notify(Alert(
            key=f"canary_rollback:{alert['model']}:{alert.get('from_version')}",
            severity="critical", title=f"Canary {alert['model']} rolled back",
            text=f"{alert.get('action')}: {details}",
            fields={"model": str(alert["model"]), "from_version": str(alert.get("from_version")),
                    "reasons": ", ".join(alert.get("reasons", []))},
        ))  # fmt: skip

    def _after_bar(self) -> None:
        """In the node thread after each bar's orders: the canary's and the shadow's bar."""
        node, weights = self._node, self._champion_weights
        self._champion_weights = None
        if node is None:
            return
        ts = node._bar_time
        if self.canary is not None:
            halted = bool(node.oms.halted) or StatePaths(self.state_dir / "risk").kill_flag.exists()
            try:
                self.canary.step(node, ts, decided=weights is not None, halted=halted)
            except Exception:  # never let the canary stop the policy
                logger.exception("canary step")
            self.canary_status = {"active": not self.canary.rolled_back, **self.canary.state()}
        if self.shadow is not None:
            try:
                self.shadow.step(node, ts, weights)
            except Exception:
                logger.exception("shadow step")
            self.shadow_status = {"active": True, **self.shadow.state()}

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> TradingService:
        """Start the node thread, the scheduler and the watcher; on any failure everything
        started so far is stopped again before the error propagates."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        RiskStateStore(StatePaths(self.state_dir / "risk").db).close()
        calendar = self.config.schedule.calendar()
        if self.config.venue == "alpaca":
            self.check_calendar(calendar, _alpaca_client(self.config))
            self.scheduler.add_bar_job(self.strategy_id, calendar, lambda _bar: self.gate.release())
        else:
            self.scheduler.add_interval_job("bar", self.config.replay.bar_interval_s,
                                            self.gate.release)  # fmt: skip
        self.scheduler.add_interval_job("heartbeat", 5.0, self._heartbeat)
        self.scheduler.add_schedule_jobs(self.config.schedule, calendar,
                                         daily_report=self._daily_report,
                                         drift_check=self.drift_check,
                                         retrain=self._retrain_due)  # fmt: skip
        self._node_thread = threading.Thread(target=self._run_node, name="tradeforge-node",
                                             daemon=True)  # fmt: skip
        self._node_thread.start()
        unfinished = self.scheduler.start()
        for run in unfinished:
            self.alerts.notify(Alert(key=f"unfinished:{run.job}", severity="warning",
                                     title=f"Job {run.job} did not finish before a restart",
                                     text=f"{run.key}: not rerun automatically"))  # fmt: skip
        self._watch_thread = threading.Thread(target=self._watch, name="tradeforge-watch",
                                              daemon=True)  # fmt: skip
        self._watch_thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop everything; the node stops between bars (its state is durable)."""
        self._stop.set()
        self.gate.stop()
        with contextlib.suppress(Exception):
            self.scheduler.shutdown(wait=False)
        for thread in (self._node_thread, self._watch_thread):
            if thread is not None:
                thread.join(timeout_s)
        self.alerts.close()

    def __enter__(self) -> TradingService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_node(self) -> None:
        first, last = replay_period(self.program, self.config.venue, self.config.replay.start,
                                    self.config.replay.end)  # fmt: skip
        try:
            with contextlib.ExitStack() as stack:
                node = open_node(
                    stack, self.paper_config, self.program, venue=self.config.venue,
                    venue_url=None, first=first, state=self.state_dir, durable=True,
                    wrap=self._wrap,
                )  # fmt: skip
                if self.canary is not None:
                    self.canary.attach(node)
                    stack.callback(self.canary.close)
                self._node = node
                self.facts.broker_connected = True
                node.run(None if first is None else first.to_pydatetime(),
                         None if last is None else last.to_pydatetime())  # fmt: skip
                self._bar_done()
        except ServiceStopped:
            pass
        except Exception as exc:  # the node died: say so loudly, keep serving the state
            self.error = f"{type(exc).__name__}: {exc}"
            logger.exception("trading node stopped")
            self.alerts.notify(Alert(key="node_error", severity="critical",
                                     title="Trading node stopped", text=self.error))  # fmt: skip
        finally:
            self.facts.broker_connected = False
            self._node = None
            self._ended.set()

    def _wrap(self, parts: dict[str, Any]) -> dict[str, Any]:
        self._policy = TimedPolicy(parts["policy"], self)
        return {**parts, "policy": self._policy, "clock": GatedClock(parts["clock"], self.gate, self),
                "feed": RecordingFeed(parts["feed"], self.facts, self.strategy_id),
                "observer": RecordingObserver(parts["observer"], self.facts)}  # fmt: skip

    # -- node-thread callbacks --------------------------------------------------------------------
    def _decided(self, weights: np.ndarray, seconds: float) -> None:
        self._champion_weights = weights
        self.facts.last_weights = {s: float(w) for s, w in zip(self.symbols, weights, strict=False)}
        self.facts.last_decision_time = self.facts.last_bar_time
        self.facts.decision_latency_ms = seconds * 1000.0
        self.metrics.observe_decision(self.strategy_id, seconds)
        if self.facts.last_features is not None and self.facts.last_bar_time is not None:
            self.history.append(self.facts.last_bar_time, self.facts.last_features,
                                action=weights)  # fmt: skip

    def _bar_done(self) -> None:
        node = self._node
        if node is not None:
            self.facts.reconciled = not bool(node.oms.halted)
        self._cache = None

    def _idle(self) -> None:
        """In the node thread while it waits for a bar: act on a kill at once."""
        node = self._node
        flag = StatePaths(self.state_dir / "risk").kill_flag.exists()
        if node is None or not flag:
            self._kill_seen = False
            return
        if not self._kill_seen:
            poll = getattr(node.risk, "poll", None)
            if callable(poll):
                poll()
            self._kill_seen = True
            self._cache = None

    def _heartbeat(self) -> None:
        self.metrics.heartbeat(datetime.now(UTC))

    def check_calendar(
        self, calendar: BarCalendar, client: Any, today: date | None = None
    ) -> CalendarCheck:
        """Compare the exchange calendar with the broker's from a week back to two months ahead
        and adopt the broker's word (unscheduled closures, changed closes); a difference is
        logged and alerted."""
        day = today or datetime.now(UTC).date()
        sessions = broker_sessions(client, day - timedelta(days=7), day + timedelta(days=60))
        check = calendar.reconcile_with(sessions)
        if not check.ok:
            logger.warning("calendar: %s", check.summary())
            self.alerts.notify(Alert(key="calendar", severity="warning",
                                     title="Exchange and broker calendars differ",
                                     text=check.summary()))  # fmt: skip
        return check

    def _daily_report(self, now: datetime) -> None:
        """Write the day's snapshot to ``STATE/reports/DATE.json`` and send a summary."""
        snap = self.snapshot()
        folder = self.state_dir / "reports"
        folder.mkdir(exist_ok=True)
        day = now.date().isoformat()
        (folder / f"{day}.json").write_text(json.dumps(snap.to_dict(), indent=1), "utf-8")
        self.alerts.notify(Alert(
            key=f"daily:{day}", severity="info", title=f"Daily report {day}",
            text=f"equity {snap.equity}, day P&L {snap.day_pnl}, state {snap.trading_state}",
        ))  # fmt: skip

    def drift_check(self, now: datetime | None = None) -> Any:
        """The node's bars so far against the policy artifact's reference profile: drift values
        become metrics, a rollback reason an alert. None when there is nothing to compare."""
        from tradeforge.monitor import (
            PROFILE_FILE,
            ReferenceProfile,
            drift_metrics,
            drift_report,
            read_history,
        )

        if not (Path(self.config.policy) / PROFILE_FILE).is_file():
            logger.info("drift check: %s has no reference profile", self.config.policy)
            return None
        try:
            history = read_history(self.state_dir)
        except TradeforgeError as exc:
            logger.info("drift check: %s", exc)
            return None
        profile = ReferenceProfile.load(Path(self.config.policy))
        features = history.features if profile.n_symbols > 1 else history.features[:, 0, :]
        actions = history.actions if profile.actions else None
        report = drift_report(profile, features, actions, index=list(history.timestamps))
        self.metrics.set_drift(drift_metrics(report))
        self._psi = {c.name: float(c.psi) for c in report.features if math.isfinite(c.psi)}
        if report.rollback_reasons:
            self.alerts.notify(Alert(key="drift", severity="warning",
                                     title="Drift against the training reference",
                                     text="; ".join(report.rollback_reasons)))  # fmt: skip
        return report

    def _retrain_due(self, now: datetime) -> None:
        job = self.config.schedule.retrain
        if job is not None:  # retrain in a worker thread, once per cadence slot (serve/jobs.py)
            worker = getattr(self, "_retrainer", None)
            if worker is None:
                worker = self._retrainer = RetrainWorker(self.scheduler.ledger, job,
                                                         notify=self._notify)  # fmt: skip
            worker.submit(self.config.schedule.retrain_key(now))
            return
        self.alerts.notify(Alert(
            key=f"retrain:{now.date().isoformat()}", severity="info", title="Retraining is due",
            text=f"run `tradeforge run` on the policy's config; model {self.program.name}",
        ))  # fmt: skip

    def _notify(self, alert: Alert) -> None:
        self.alerts.notify(alert)

    def _job_failed(self, job: str, key: str, exc: BaseException) -> None:
        self.alerts.notify(Alert(key=f"job:{job}", severity="warning",
                                 title=f"Job {job} failed", text=f"{key}: {exc}"))  # fmt: skip

    # -- what the API calls -----------------------------------------------------------------------
    @property
    def registry_config(self) -> RegistryConfig | None:
        """The registry the API's alias moves act on (``serve.models``); None: not configured."""
        return self.config.registry

    def snapshot(self) -> Snapshot:
        with self._cache_lock:
            now = time.monotonic()
            if self._cache is not None and now - self._cache[0] < CACHE_S:
                return self._cache[1]
            self.facts.next_bar_time = self._next_bar()
            self.facts.problems = self._problems()
            self.facts.alerts = self._alert_rows()
            snap = self._with_sleeves(self.reader.snapshot(self.facts))
            self._cache = (now, snap)
            return snap

    def _with_sleeves(self, snap: Snapshot) -> Snapshot:
        """The canary's and the shadow's state in the snapshot (their own sections and model
        rows); the version changes with them."""
        canary, shadow = self.canary_status, self.shadow_status
        if canary is None and shadow is None:
            return snap
        rows = list(snap.models)
        if canary is not None and canary.get("version") is not None:
            rows.append(ModelRow("canary", str(canary["model"]), str(canary["version"]), {},
                                 {"share": canary.get("share"), "equity": canary.get("equity")}))  # fmt: skip
        if shadow is not None and shadow.get("version") is not None:
            rows.append(ModelRow("shadow", str(shadow["model"]), str(shadow["version"]), {},
                                 {"agreement": shadow.get("agreement"),
                                  "simulated_equity": shadow.get("simulated_equity")}))  # fmt: skip
        body = json.dumps([canary, shadow], sort_keys=True, default=str)
        digest = hashlib.sha256(body.encode()).hexdigest()[:8]
        return dataclasses.replace(snap, canary=canary, shadow=shadow, models=tuple(rows),
                                   version=f"{snap.version}-{digest}")  # fmt: skip

    def kill(self, reason: str, *, source: str = "api") -> Snapshot:
        record = kill_state_dir(self.state_dir / "risk", reason, source=source,
                                operator=_operator())  # fmt: skip
        self.alerts.notify(Alert(
            key="kill_switch", severity="critical", title="Kill switch: trading HALTED",
            text=record.kill_reason, fields={"source": source, "strategy": self.strategy_id}))  # fmt: skip
        self._cache = None
        return self.snapshot()

    def resume(self, reason: str, *, source: str = "api") -> Snapshot:
        resume_state_dir(self.state_dir / "risk", reason, to=TradingState.ACTIVE, source=source,
                         operator=_operator())  # fmt: skip
        self.alerts.notify(Alert(key="resume", severity="info", title="Trading resumed",
                                 text=reason, fields={"source": source}))  # fmt: skip
        self._cache = None
        return self.snapshot()

    def score(self, observation: Any = None, symbol: str | None = None) -> dict[str, Any]:
        """The policy's target weights for ``observation`` (a flat list of numbers in the
        env's observation layout), or for the node's latest observation when ``symbol`` names
        a traded symbol. The live node's state is not touched."""
        policy = self._policy
        if policy is None:
            raise ConfigError("score: the trading node has not started yet; retry shortly")
        if observation is None:
            if symbol is None:
                raise ConfigError("score: send 'observation' (a list of numbers) or 'symbol'")
            if symbol not in self.symbols:
                raise ConfigError(
                    f"score: symbol = {symbol!r}; expected one of {list(self.symbols)}"
                )
            if policy.last_observation is None:
                raise ConfigError("score: no bar has been decided yet; retry after the first bar")
            obs = policy.last_observation
        elif policy.last_observation is None:
            raise ConfigError("score: the observation layout is known after the first decided "
                              "bar; retry shortly")  # fmt: skip
        else:
            obs = _observation(observation, policy.last_observation)
        inner = policy.inner
        started = time.perf_counter()
        with policy.lock, np.errstate(all="ignore"):
            if hasattr(inner, "interpreter"):  # an env policy: its action, then its weights
                model = inner.policy
                raw = model.env_action(obs) if hasattr(model, "env_action") else model.act(obs)
                action = np.asarray(raw, dtype=float)
                weights = inner.interpreter.to_weights(action, np.zeros((1, len(self.symbols))))
            else:  # a policy that answers target weights directly
                action = np.asarray(inner.act(obs), dtype=float)
                weights = action
        seconds = time.perf_counter() - started
        if not (np.all(np.isfinite(action)) and np.all(np.isfinite(weights))):
            raise ConfigError("score: the policy gave non-finite values for this observation; "
                              "expected an observation in the range it was trained on")  # fmt: skip
        return {
            "model": self.program.name, "version": self.program.fingerprint,
            "action": action.reshape(-1).tolist(),
            "weights": dict(zip(self.symbols, np.asarray(weights, float).reshape(-1).tolist(),
                                strict=True)),
            "latency_ms": seconds * 1000.0,
            "bar_time": None if self.facts.last_bar_time is None
            else self.facts.last_bar_time.isoformat(),
        }  # fmt: skip

    def readiness(self) -> tuple[bool, list[str]]:
        problems = self._problems()
        return not problems, problems

    # -- internals --------------------------------------------------------------------------------
    def _problems(self) -> list[str]:
        out: list[str] = []
        if self.error:
            out.append(f"node error: {self.error}")
        elif not self.facts.broker_connected and not self._ended.is_set():
            out.append("broker not connected yet")
        if self._node is not None and not self.facts.reconciled and self.facts.last_bar_time:
            out.append("reconciliation found an unexplained difference (orders halted)")
        limit = self._freshness_limit_s()
        arrived = self.facts.bar_arrived_at
        if arrived is not None and not self._ended.is_set():
            age = (datetime.now(UTC) - arrived).total_seconds()
            if age > limit:
                out.append(f"data stale: last bar arrived {age:.0f} s ago (limit {limit:.0f} s)")
        return out

    def _bar_interval_s(self) -> float:
        """Seconds between bars as the operator sees them (daily bars: a long weekend, so
        staleness alerts do not fire on Monday mornings)."""
        if self.config.venue == "alpaca":
            return 3 * 86_400.0 if self.config.schedule.frequency == "1d" else 3_600.0
        return self.config.replay.bar_interval_s

    def _freshness_limit_s(self) -> float:
        if self.config.venue == "alpaca":
            return 4 * 86_400.0  # daily bars: a long weekend plus a day
        return max(3.0 * self.config.replay.bar_interval_s, 10.0)

    def _next_bar(self) -> datetime | None:
        runs = self.scheduler.next_runs()
        for name, when in runs.items():
            if name.startswith("bar") and when is not None:  # "bar" or "bar:<strategy>"
                return when
        return None

    def _alert_rows(self) -> list[Any]:
        from tradeforge.serve.snapshot import AlertRow

        rows = []
        for r in self.alerts.recent(50):
            rows.append(AlertRow(r.key, r.severity, r.title, r.channel, r.status, r.attempts,
                                 r.error or "", r.created_at))  # fmt: skip
        return rows

    def _running_model(self) -> ModelRow:
        backtest: dict[str, float | None] = {}
        metrics = Path(self.config.policy) / "metrics.json"
        if metrics.is_file():
            with contextlib.suppress(ValueError, OSError):
                body = json.loads(metrics.read_text(encoding="utf-8"))
                for key in ("sharpe", "total_return", "max_drawdown"):
                    value = body.get(key)
                    if isinstance(value, int | float):
                        backtest[key] = float(value)
        return ModelRow("running", self.program.name, self.program.fingerprint, backtest, {})

    # -- the watcher ------------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(WATCH_S):
            try:
                self._observe(self.snapshot())
            except Exception:  # never let the watcher die; log and carry on
                logger.exception("service watcher")

    def _observe(self, snap: Snapshot) -> None:
        m, strategy = self.metrics, self.strategy_id
        seen = self._seen
        fills = {f.fill_id: f for f in snap.fills}
        for fid, fill in fills.items():
            if fid not in seen.setdefault("fills", set()):
                seen["fills"].add(fid)
                m.count_fill(strategy, fill.side, fill.fee)
        statuses: dict[str, str] = seen.setdefault("orders", {})
        for order in snap.recent_orders:
            if statuses.get(order.client_order_id) != order.status:
                statuses[order.client_order_id] = order.status
                m.count_order(strategy, self.config.venue, order.side, _outcome(order.status))
        for denial in snap.denials:
            key = (denial.bar_time, denial.client_order_id)
            if key not in seen.setdefault("denials", set()):
                seen["denials"].add(key)
                code = _deny_code(denial.reason)
                m.count_denial(strategy, code)
                if code != DenyReason.TRADING_HALTED:  # the halt itself was alerted
                    self.alerts.notify(Alert(key=f"denial:{code}", severity="warning",
                                             title=f"Risk denial: {code}",
                                             text=f"{denial.client_order_id} at "
                                             f"{denial.bar_time}: {denial.reason}"))  # fmt: skip
        state = snap.trading_state
        if seen.get("state") not in (None, state) and state != "active" and not snap.killed:
            self.alerts.notify(Alert(key=f"state:{state}", severity="critical",
                                     title=f"Trading state {state.upper()}",
                                     text=snap.state_reason))  # fmt: skip
        seen["state"] = state
        if seen.get("reconciled", True) and not snap.reconciled and snap.last_bar_time:
            m.count_reconcile_mismatches(1)
        seen["reconciled"] = snap.reconciled
        m.set_trading_state(state)
        m.set_kill_switch(snap.killed)
        if snap.equity is not None:
            m.set_account(SLEEVE, snap.equity, snap.realized_pnl, snap.unrealized_pnl or 0.0,
                          -(snap.drawdown or 0.0))  # fmt: skip
        if snap.gross_exposure is not None:
            m.set_exposure(snap.gross_exposure, snap.net_exposure or 0.0)
        for p in snap.positions:
            m.set_position(strategy, p.symbol, p.quantity)
        if snap.last_bar_time is not None:
            for symbol in self.symbols:
                m.set_last_bar(FEED, symbol, snap.last_bar_time)
        m.set_model_info("running", self.program.name, self.program.fingerprint)
        for alias, part in (("canary", self.canary_status), ("shadow", self.shadow_status)):
            if part is not None and part.get("version") is not None and part.get("active"):
                m.set_model_info(alias, str(part["model"]), str(part["version"]))
            elif part is not None:  # rolled back, or no alias: not served
                m.clear_model_info(alias)


def _alpaca_client(config: ServeConfig) -> Any:
    import os

    from alpaca.trading.client import TradingClient

    from tradeforge.experiment.paper import KEY_ENV, SECRET_ENV

    key, secret = os.environ.get(KEY_ENV), os.environ.get(SECRET_ENV)
    if not key or not secret:
        raise ConfigError(f"venue = 'alpaca' needs ${KEY_ENV} and ${SECRET_ENV}; expected both set")
    return TradingClient(key, secret, paper=config.paper.alpaca.paper)


def _deny_code(text: str) -> str:
    """The :class:`DenyReason` of a journal denial (``"code: message"``); a halt by the
    reconciliation counts as ``trading_halted``."""
    code = text.split(":", 1)[0].strip()
    return code if code in DenyReason._value2member_map_ else DenyReason.TRADING_HALTED.value


def _outcome(status: str) -> str:
    return {"filled": "filled", "canceled": "canceled", "rejected": "rejected",
            "expired": "canceled", "accepted": "accepted", "new": "accepted",
            "partially_filled": "accepted"}.get(status, "unknown")  # fmt: skip


def _observation(values: Any, like: Any) -> Any:
    try:
        wide = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("score: observation must be a list of numbers") from None
    limit = float(np.finfo(np.float32).max)
    if not np.all(np.isfinite(wide)) or np.any(np.abs(wide) > limit):
        raise ConfigError(
            "score: observation holds NaN, infinite or out-of-range values; expected finite "
            f"numbers within +-{limit:.3g}"
        )
    obs = wide.astype(np.float32)
    if not isinstance(like, dict) and obs.shape != np.shape(like):
        raise ConfigError(
            f"score: observation has shape {list(obs.shape)}; expected "
            f"{list(np.shape(like))} (the env's observation layout)"
        )
    return obs


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


__all__ = ["BarGate", "GatedClock", "ServiceStopped", "TradingService"]
