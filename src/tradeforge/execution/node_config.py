"""The trading node's configuration (:class:`NodeConfig`) and what a run returns
(:class:`NodeResult`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from tradeforge.core.clock import Clock
from tradeforge.core.config import FrozenConfig
from tradeforge.domain import Order, OrderFilled
from tradeforge.execution.algos import ExecAlgoConfig
from tradeforge.execution.node_journal import BarDecision, BarMark, ParentSchedule
from tradeforge.execution.node_risk import RiskHook
from tradeforge.execution.shortfall import Arrival, shortfall_summary, shortfall_table
from tradeforge.execution.sizing import SizingConfig
from tradeforge.risk import KillTarget

RiskFactory = Callable[[KillTarget, Clock], RiskHook]


class NodeConfig(FrozenConfig):
    """How the trading node runs.

    * ``strategy_id``: names the strategy in every client order id (deterministic, so a
      restarted node derives the same ids); None lets the caller fill it in.
    * ``reconcile_every``: reconcile with the broker every this many bars (0: at start-up only).
    * ``fill_timeout_s``: on a replay venue, how long to wait for the fills of a bar after the
      clock moved before asking the broker over REST; ``poll_interval_s`` between looks.
    * ``bar_timeout_s``: how long to wait for the bar the clock reports as closed.
    * ``max_bar_age_s``: on a wall-clock venue, a bar older than this gets no new orders.
    * ``features``: ``update`` (online, O(1) per bar) or ``transform`` (the whole history
      again at every bar); the node's tests check that both give the backtest's values.
    * ``sizing``: order type, time in force and the rest of ``plan_orders``' settings (its
      ``allow_short`` and ``min_trade_value`` come from the simulator config).
    * ``price_increment``: the tick that limit prices are rounded to.
    * ``buying_power``: what buys may spend: ``local`` (the OMS cash less open buys, what the
      local venue reports; no round trip) or ``broker`` (``Broker.account()`` at every bar).
    * ``exec_algo``: slicing of large orders over the next bars (TWAP/VWAP,
      :class:`~tradeforge.execution.algos.ExecAlgoConfig`); ``kind: none`` (the default)
      sends every order whole at its decision bar.
    * ``explain_decisions``: journal with every decision why the policy chose it (Integrated
      Gradients attributions of its outputs, the ``explain_top_k`` largest per output; see
      docs/explain.md); off by default (it costs a few ms a bar and never changes a decision).
    """

    strategy_id: str | None = Field(default=None, min_length=1, max_length=64)
    reconcile_every: int = Field(default=20, ge=0)
    fill_timeout_s: float = Field(default=5.0, gt=0.0, le=600.0)
    poll_interval_s: float = Field(default=0.001, gt=0.0, le=10.0)
    bar_timeout_s: float = Field(default=5.0, ge=0.0, le=3600.0)
    max_bar_age_s: float | None = Field(default=None, gt=0.0)
    features: Literal["update", "transform"] = "update"
    sizing: SizingConfig = Field(default_factory=SizingConfig)
    price_increment: Decimal = Field(default=Decimal("0.01"), gt=0)
    buying_power: Literal["local", "broker"] = "local"
    exec_algo: ExecAlgoConfig = Field(default_factory=ExecAlgoConfig)
    explain_decisions: bool = False
    explain_top_k: int = Field(default=5, ge=1, le=1000)


@dataclass
class NodeResult:
    """What a run left: equity marks (from the journal: also bars before a restart), the
    strategy's orders and fills, denials, bars skipped and why, reconciliations, latencies."""

    strategy_id: str
    marks: list[BarMark]
    decisions: list[BarDecision]
    orders: list[Order]
    fills: list[OrderFilled]
    halted: bool
    reconciliations: list[str] = field(default_factory=list)
    skipped: list[tuple[datetime, str]] = field(default_factory=list)
    restore_mismatches: int = 0
    decide_latency_s: list[float] = field(default_factory=list)
    submit_latency_s: list[float] = field(default_factory=list)
    parents: list[ParentSchedule] = field(default_factory=list)

    @property
    def denied(self) -> dict[str, str]:
        return {cid: why for d in self.decisions for cid, why in d.denied.items()}

    def arrivals(self) -> list[Arrival]:
        """Every order the policy decided, as a parent with its arrival price (the decision
        bar's close) and the children handed to the order manager (risk exits not included)."""
        return [
            Arrival(p.parent_id, p.symbol, p.side, p.quantity, p.arrival_price, p.arrival_time,
                    tuple(c for c, q in zip(p.client_order_ids[: p.sent], p.children, strict=False)
                          if q > 0), p.algo)
            for p in self.parents
        ]  # fmt: skip

    def shortfall(self) -> pd.DataFrame:
        """Implementation shortfall per parent (:func:`~tradeforge.execution.shortfall.shortfall_table`)."""
        return shortfall_table(self.orders, self.fills, self.arrivals())

    def shortfall_summary(self) -> dict[str, Any]:
        """JSON-ready totals of :meth:`shortfall` (total, mean bps, by symbol)."""
        return shortfall_summary(self.shortfall())


__all__ = ["NodeConfig", "NodeResult", "RiskFactory"]
