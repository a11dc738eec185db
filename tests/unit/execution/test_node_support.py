"""Shared helpers for the trading node's unit tests (no tests here).

The node runs on the in-process ``SimulatedBroker`` over the bundled AAPL/IBM/MSFT bars, with a
real fitted ``FeaturePipeline`` and small deterministic numpy policies.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.data.panel import BarPanel
from tradeforge.execution.brokers.simulated import SimulatedBroker
from tradeforge.execution.node import NodeConfig, TradingNode
from tradeforge.execution.node_feed import PanelFeed, SimBarClock
from tradeforge.execution.node_policy import AccountVector
from tradeforge.features.pipeline import FeaturePipeline
from tradeforge.features.spec import FeatureSpec
from tradeforge.sim import SimConfig
from tradeforge.testing.sim import EVERY_COST

INDICATORS = ["logret_1", "logret_5", "rsi_14"]
#: every trading cost on; carry off (the simulated broker does not model carry yet)
COSTS = EVERY_COST.model_copy(
    update={"borrow_bps_annual": 0.0, "cash_rate_annual": 0.0, "margin_spread_annual": 0.0}
)
SIM = SimConfig(costs=COSTS)
START = "2010-01-04"


def pipeline(panel: BarPanel) -> FeaturePipeline:
    return FeaturePipeline(FeatureSpec(indicators=INDICATORS)).fit(panel, None, "2009-12-31")


class FlatBuilder:
    """The last feature row and the account vector, flattened (a stand-in observation)."""

    def __init__(self, window: int = 3) -> None:
        self._window = window

    @property
    def window(self) -> int:
        return self._window

    def __call__(self, features: np.ndarray, account: AccountVector) -> np.ndarray:
        return np.concatenate([features[-1].ravel(), np.asarray(account.as_tuple())])


class TiltPolicy:
    """Weights tilted by each symbol's first feature and by what is held (deterministic)."""

    def __init__(self, n: int, n_features: int = len(INDICATORS)) -> None:
        self.n, self.f = n, n_features

    def act(self, observation: np.ndarray) -> np.ndarray:
        feats = observation[: self.n * self.f].reshape(self.n, self.f)[:, 0]
        held = observation[self.n * self.f : self.n * self.f + self.n]
        w = (0.5 + 0.5 * np.tanh(20.0 * feats)) / self.n + 0.05 * held
        return np.clip(w, 0.0, 1.0 / self.n)


class TrendPolicy:
    """Stateful like a ``trade``-mode discrete policy: each decision moves its previous target
    by a step toward the sign of the first feature; ``reset`` starts flat."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.previous = np.zeros(n)
        self.calls = 0

    def reset(self) -> None:
        self.previous = np.zeros(self.n)
        self.calls = 0

    def act(self, observation: np.ndarray) -> np.ndarray:
        step = np.sign(observation[: self.n * len(INDICATORS)].reshape(self.n, -1)[:, 0])
        self.previous = np.clip(self.previous + 0.1 * step, 0.0, 1.0 / self.n)
        self.calls += 1
        return self.previous.copy()


def broker(panel: BarPanel, start: str = START, sim: SimConfig = SIM) -> SimulatedBroker:
    first = int(panel.index.searchsorted(pd.Timestamp(start, tz="UTC")))
    return SimulatedBroker.from_panel(panel, sim, start=first)


def make_node(
    state: Path,
    panel: BarPanel,
    venue: SimulatedBroker,
    *,
    policy: Any = None,
    sim: SimConfig = SIM,
    features: FeaturePipeline | None = None,
    window: int = 3,
    **kwargs: Any,
) -> TradingNode:
    config = kwargs.pop("config", None) or NodeConfig(strategy_id="unit", reconcile_every=3)
    return TradingNode(
        config,
        policy=policy if policy is not None else TiltPolicy(panel.n_symbols),
        observer=FlatBuilder(window),
        features=features if features is not None else pipeline(panel),
        broker=venue,
        clock=SimBarClock(venue),
        feed=PanelFeed(panel),
        sim=sim,
        state_dir=state,
        fingerprint="unit-test",
        **kwargs,
    )


def bar_time(panel: BarPanel, row: int) -> datetime:
    out: datetime = panel.index[row].to_pydatetime()
    return out
