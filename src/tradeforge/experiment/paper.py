"""Paper trading as a library: a trained policy trades through the node on a venue.

::

    from tradeforge.experiment.paper import paper_trade

    result = paper_trade(None, "runs/x/policy", venue="local", start="2011-08-16",
                         end="2011-11-08")
    result.equity          # equity at each bar close (the bar after ``end`` included)
    result.summary()       # orders, fills, final equity, metrics (total_return, sharpe, ...)

Venues:

* ``local``: the local Alpaca-compatible venue (``tradeforge.execution.venue``) started in this
  process on the artifact's data and simulator, replaying ``[start, end]``, and spoken to
  through ``AlpacaBroker`` and the alpaca-py data client exactly as Alpaca would be. The
  replay equals ``tradeforge backtest --policy`` of the same period (docs/paper.md).
  ``venue_url`` connects to a venue already running instead (``tradeforge venue serve``).
* ``alpaca``: Alpaca paper (or live) with the keys in ``APCA_API_KEY_ID`` /
  ``APCA_API_SECRET_KEY``, on the wall clock.
* ``sim``: the in-process ``SimulatedBroker`` on the same panel (no HTTP; fastest).

``state_dir`` keeps the node's journal, the OMS store, the risk state and (local venue) the
venue's journal: a run killed at any point and started again with the same arguments carries on
where it stopped, without a duplicated or a lost order. None runs in a temporary directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from tradeforge.core.config import FrozenConfig, load_yaml_section
from tradeforge.core.errors import ConfigError
from tradeforge.data.panel import BarPanel
from tradeforge.execution.node import NodeConfig, NodeResult, TradingNode, as_bar_time
from tradeforge.execution.oms import Hook
from tradeforge.experiment.paper_program import TradingProgram, load_program
from tradeforge.risk import RiskConfig

VenueKind = Literal["local", "alpaca", "sim"]
KEY_ENV, SECRET_ENV = "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"


class AlpacaSettings(FrozenConfig):
    """Non-secret settings for Alpaca (keys come from ``APCA_API_KEY_ID`` /
    ``APCA_API_SECRET_KEY``): paper or live, the data feed (``iex``/``sip``), where the history
    for the features starts (default: the artifact's ``data.start``), and how long after a close
    to look for its bar."""

    paper: bool = True
    data_feed: str | None = None
    history_start: str | None = None
    settle_s: float = Field(default=60.0, ge=0.0)


class PaperConfig(FrozenConfig):
    """A paper run's settings: the node (``NodeConfig``), the risk engine (``RiskConfig``;
    None: approve every order) and Alpaca's settings. A YAML file may hold them at the top
    level or under ``paper:``."""

    node: NodeConfig = Field(default_factory=NodeConfig)
    risk: RiskConfig | None = None
    audit_checks: bool = False
    alpaca: AlpacaSettings = Field(default_factory=AlpacaSettings)


def load_paper_config(path: str | Path | None) -> PaperConfig:
    """The :class:`PaperConfig` in the YAML file ``path`` (top level or under ``paper:``);
    None gives the defaults."""
    if path is None:
        return PaperConfig()
    return load_yaml_section(path, PaperConfig, "paper")


@dataclass(frozen=True)
class PaperResult:
    """A paper run: equity and cash at each bar close from ``start`` (the bar after ``end``
    included), the strategy's orders and fills, risk denials, bars without a decision and
    why, reconciliations, and the headline metrics of the equity curve."""

    strategy_id: str
    venue: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    equity: pd.Series
    cash: pd.Series
    orders: int
    fills: int
    denied: dict[str, str]
    skipped: list[tuple[datetime, str]]
    halted: bool
    reconciliations: list[str]
    metrics: dict[str, float]
    state_dir: Path | None
    restore_mismatches: int = 0
    node: NodeResult | None = field(default=None, repr=False)

    @property
    def final_equity(self) -> float:
        return float(self.equity.iloc[-1]) if len(self.equity) else float("nan")

    def summary(self) -> dict[str, Any]:
        """JSON-ready: every field but the node result, equity as ``[{timestamp, equity}]``."""

        def finite(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {
            "strategy_id": self.strategy_id, "venue": self.venue,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "orders": self.orders, "fills": self.fills, "denied": self.denied,
            "final_equity": finite(self.final_equity),
            "metrics": {k: finite(v) for k, v in self.metrics.items()},
            "halted": self.halted, "reconciliations": self.reconciliations,
            "skipped": [[ts.isoformat(), why] for ts, why in self.skipped],
            "restore_mismatches": self.restore_mismatches,
            "shortfall": None if self.node is None else self.node.shortfall_summary(),
            "state_dir": None if self.state_dir is None else str(self.state_dir),
            "equity": [{"timestamp": ts.isoformat(), "equity": float(v)}
                       for ts, v in zip(self.equity.index, self.equity.to_numpy(), strict=True)],
        }  # fmt: skip


def paper_trade(
    config: PaperConfig | str | Path | None,
    policy: str | Path | TradingProgram,
    *,
    venue: VenueKind = "local",
    venue_url: str | None = None,
    start: Any = None,
    end: Any = None,
    state_dir: str | Path | None = None,
    hook: Hook | None = None,
) -> PaperResult:
    """Trade ``policy`` (an artifact directory or a :class:`TradingProgram`) on ``venue`` over
    ``[start, end]`` (replay venues default to the artifact's test window). See the module
    docstring."""
    cfg = config if isinstance(config, PaperConfig) else load_paper_config(config)
    program = policy if isinstance(policy, TradingProgram) else load_program(Path(policy))
    if venue not in ("local", "alpaca", "sim"):
        raise ConfigError(f"venue = {venue!r}; expected 'local', 'alpaca' or 'sim'")
    if venue_url is not None and venue != "local":
        raise ConfigError(f"venue_url is for the local venue; got venue = {venue!r}")
    first, last = replay_period(program, venue, start, end)
    with contextlib.ExitStack() as stack:
        state = (
            Path(state_dir)
            if state_dir is not None
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tf-paper-")))
        )
        node = open_node(stack, cfg, program, venue=venue, venue_url=venue_url, first=first,
                         state=state, durable=state_dir is not None, hook=hook,
                         artifact=None if isinstance(policy, TradingProgram) else Path(policy))  # fmt: skip
        outcome = node.run(None if first is None else first.to_pydatetime(),
                           None if last is None else last.to_pydatetime())  # fmt: skip
        return _result(outcome, program, venue, first, last, state if state_dir else None)


def replay_period(
    program: TradingProgram, venue: VenueKind, start: Any, end: Any
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``[start, end]`` as bar times; replay venues default to the artifact's test window."""
    replay = venue != "alpaca"
    lo = start if start is not None or not replay else program.test_window[0]
    hi = end if end is not None or not replay else program.test_window[1]
    first = None if lo is None else pd.Timestamp(as_bar_time(lo))
    last = None if hi is None else pd.Timestamp(as_bar_time(hi))
    if first is not None and last is not None and last < first:
        raise ConfigError(f"end = {last.date()} is before start = {first.date()}")
    return first, last


Wrap = Callable[[dict[str, Any]], dict[str, Any]]


def open_node(
    stack: contextlib.ExitStack, cfg: PaperConfig, program: TradingProgram, *,
    venue: VenueKind, venue_url: str | None, first: pd.Timestamp | None, state: Path,
    durable: bool, hook: Hook | None = None, wrap: Wrap | None = None,
    artifact: Path | None = None,
) -> TradingNode:  # fmt: skip
    """The trading node ``paper_trade`` runs (its venue, broker, clock and feed closed by
    ``stack``). ``wrap`` may replace parts before the node is built (the service gates the
    clock and records the feed's bars); ``durable`` keeps the local venue's journal. With
    ``node.explain_decisions`` the node journals an explanation per decision
    (:func:`decision_explainer`; ``artifact``: the directory whose training profile gives
    the baseline)."""
    node_cfg = cfg.node.model_copy(
        update={"strategy_id": cfg.node.strategy_id or strategy_id_for(program)}
    )
    parts = _venue(stack, program, venue, venue_url, first, state, cfg, durable)
    parts = {"policy": program.policy, "observer": program.observation_builder(), **parts}
    if wrap is not None:
        parts = wrap(parts)
    node = TradingNode(
        node_cfg, features=program.pipeline,
        sim=program.env.sim, state_dir=state, fingerprint=_fingerprint(program, node_cfg),
        risk_factory=_risk(cfg, state), hook=hook,
        explainer=decision_explainer(program, node_cfg.explain_top_k, artifact)
        if node_cfg.explain_decisions else None, **parts,
    )  # fmt: skip
    stack.callback(node.close)
    return node


def decision_explainer(program: TradingProgram, k: int, artifact: Path | None = None) -> Any:
    """A :class:`~tradeforge.monitor.explain.DecisionExplainer` (Integrated Gradients, top
    ``k`` entries) of the program's first SB3 member: its deterministic action (a discrete
    policy: its action probabilities), the artifact's normalizer applied. The baseline is
    the training feature means of ``artifact``'s profile when there is one, else zeros (the
    scaled features' centre), with a flat account (zeros)."""
    from tradeforge.experiment.explain import PolicyOutput, _baseline, _members, _torch_policy
    from tradeforge.monitor.explain import DecisionExplainer, ObservationLayout

    inner = getattr(program.policy, "policy", program.policy)
    members = [(n, m) for n, m in _members(inner).items() if _torch_policy(m) is not None]
    if not members:
        raise ConfigError(
            f"node.explain_decisions = true but {program.name} has no torch (SB3) policy "
            "member; expected a PPO/SAC/TD3/A2C/DQN artifact (or set it false)"
        )
    name, member = members[0]
    sb3 = _torch_policy(member)
    sb3.set_training_mode(False)  # type: ignore[union-attr,operator]
    layout = ObservationLayout(program.env.window, program.symbols, tuple(program.pipeline.names))
    discrete = type(getattr(member, "action_space", None)).__name__ == "Discrete"
    forward = PolicyOutput(sb3, getattr(member, "normalizer", None), layout,  # type: ignore[arg-type]
                           program.env.dict_obs, "probs" if discrete else "action")  # fmt: skip
    flat = np.zeros((1, layout.size))
    baseline = flat[0] if artifact is None else _baseline(Path(artifact), layout, flat)[0]
    n_out = int(np.prod(member.action_space.shape)) if not discrete else None
    outputs = None
    if n_out == len(layout.symbols):
        outputs = [f"{name}:action[{s}]" for s in layout.symbols]
    return DecisionExplainer(forward, layout, baseline, k=k, outputs=outputs)


def strategy_id_for(program: TradingProgram) -> str:
    """The default strategy id of ``program``: its name and fingerprint."""
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in program.name)[:40] or "policy"
    return f"{name}-{program.fingerprint[:8]}"


def _fingerprint(program: TradingProgram, node: NodeConfig) -> str:
    payload = {"program": program.fingerprint, "sizing": node.sizing.model_dump(mode="json"),
               "sim": program.env.sim.model_dump(mode="json")}  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _risk(cfg: PaperConfig, state: Path) -> Any:
    if cfg.risk is None:
        return None
    from tradeforge.risk import RiskEngine

    risk = cfg.risk

    def factory(target: Any, clock: Any) -> Any:
        return RiskEngine.open(state / "risk", risk, clock=clock, kill_target=target,
                               audit_checks=cfg.audit_checks)  # fmt: skip

    return factory


def _panel(program: TradingProgram) -> BarPanel:
    from tradeforge.data.ingest import load_panel

    return load_panel(program.data.model_copy(update={"start": None, "end": None}))


def _keys() -> tuple[str, str]:
    return os.environ.get(KEY_ENV, "paper-node"), os.environ.get(SECRET_ENV, "paper-node")


def _venue(
    stack: contextlib.ExitStack, program: TradingProgram, venue: VenueKind,
    url: str | None, first: pd.Timestamp | None, state: Path, cfg: PaperConfig, keep: bool,
) -> dict[str, Any]:  # fmt: skip
    """The broker, clock and bar feed of ``venue`` (closed by ``stack``)."""
    symbols, freq = program.symbols, program.data.frequency
    if venue == "sim":
        from tradeforge.execution.brokers.simulated import SimulatedBroker
        from tradeforge.execution.node_feed import PanelFeed, SimBarClock

        panel = _panel(program)
        begin = 0 if first is None else int(panel.index.searchsorted(first, side="left"))
        sim_broker = SimulatedBroker.from_panel(
            panel, program.env.sim, start=min(begin, panel.n_bars - 2)
        )
        return {"broker": sim_broker, "clock": SimBarClock(sim_broker), "feed": PanelFeed(panel)}
    from tradeforge.execution.brokers.alpaca import AlpacaBroker, AlpacaBrokerConfig
    from tradeforge.execution.node_alpaca import AlpacaBarFeed, VenueBarClock, WallBarClock

    key, secret = _keys()
    if venue == "alpaca":
        if KEY_ENV not in os.environ or SECRET_ENV not in os.environ:
            raise ConfigError(
                f"venue = 'alpaca' needs the keys in ${KEY_ENV} and ${SECRET_ENV}; expected "
                "both set (paper keys start with PK)"
            )
        since = cfg.alpaca.history_start or program.data.start
        if since is None:
            raise ConfigError("alpaca.history_start = None and the artifact's data.start is None; "
                              "expected the date the feature history starts")  # fmt: skip
        live = stack.enter_context(AlpacaBroker(AlpacaBrokerConfig(
            api_key=key, secret_key=secret, paper=cfg.alpaca.paper)))  # fmt: skip
        feed = AlpacaBarFeed(symbols, freq, as_bar_time(since), api_key=key, secret_key=secret,
                             data_feed=cfg.alpaca.data_feed)  # fmt: skip
        stack.callback(feed.close)
        wall = WallBarClock(live, feed, settle_s=cfg.alpaca.settle_s)
        from tradeforge.core.clock import LiveClock

        return {"broker": live, "clock": wall, "feed": feed, "wall_clock": LiveClock()}
    if url is None:
        from tradeforge.execution.venue import VenueConfig, VenueEngine, VenueServer

        panel = _panel(program)
        replay_start = None if first is None else first.date()
        venue_cfg = VenueConfig(data=program.data.model_copy(update={"start": None, "end": None}),
                                sim=program.env.sim, replay_start=replay_start)  # fmt: skip
        durable = state / "venue" if keep else None  # a throw-away run needs no venue journal
        engine = VenueEngine(venue_cfg, panel=panel, state_dir=durable)
        server = stack.enter_context(VenueServer(engine))
        url, since = server.url, panel.index[0]
    else:
        since = pd.Timestamp("1970-01-01", tz="UTC")
    broker = stack.enter_context(AlpacaBroker(AlpacaBrokerConfig(
        api_key=key, secret_key=secret, base_url=url, requests_per_minute=10_000,
    )))  # fmt: skip
    feed = AlpacaBarFeed(symbols, freq, since, api_key=key, secret_key=secret, url=url)
    stack.callback(feed.close)
    clock = VenueBarClock(url, broker)
    stack.callback(clock.close)
    return {"broker": broker, "clock": clock, "feed": feed}


def _result(
    node: NodeResult, program: TradingProgram, venue: str, first: pd.Timestamp | None,
    last: pd.Timestamp | None, state: Path | None,
) -> PaperResult:  # fmt: skip
    from tradeforge.backtest.metrics import compute_metrics

    marks = [m for m in node.marks if first is None or m.bar_time >= first]
    index = pd.DatetimeIndex([pd.Timestamp(m.bar_time) for m in marks], name="timestamp")
    equity = pd.Series([float(m.equity) for m in marks], index=index, name="equity")
    cash = pd.Series([float(m.cash) for m in marks], index=index, name="cash")
    metrics: dict[str, float] = {}
    if len(equity) > 1:
        ppy = program.env.sim.periods_for(program.data.frequency)
        metrics = compute_metrics(equity.pct_change().dropna(), periods_per_year=ppy,
                                  initial_equity=float(equity.iloc[0]))  # fmt: skip
    metrics["n_orders"] = float(len(node.orders))
    metrics["n_fills"] = float(len(node.fills))
    return PaperResult(
        strategy_id=node.strategy_id, venue=venue, start=first, end=last, equity=equity,
        cash=cash, orders=len(node.orders), fills=len(node.fills), denied=node.denied,
        skipped=list(node.skipped), halted=node.halted, reconciliations=node.reconciliations,
        metrics=metrics, state_dir=state, restore_mismatches=node.restore_mismatches, node=node,
    )  # fmt: skip


__all__ = [
    "AlpacaSettings",
    "PaperConfig",
    "PaperResult",
    "VenueKind",
    "load_paper_config",
    "open_node",
    "paper_trade",
    "replay_period",
    "strategy_id_for",
]
