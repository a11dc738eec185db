"""A torch-free :class:`TradingProgram` on bundled data, for node, paper and service tests.

:class:`SwingPolicy` is deterministic: it keeps 10 % in cash and spreads the rest over the
symbols by a softmax of their last one-bar log return, so every bar rebalances and trades.
:func:`numpy_program` fits the feature pipeline on AAPL/IBM/MSFT up to 2009-12-31 (real bundled
prices) and wraps the policy; it starts in well under a second, unlike a trained SB3 artifact.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from tradeforge.data.config import DataConfig
from tradeforge.data.panel import BarPanel
from tradeforge.envs.config import EnvConfig
from tradeforge.experiment.paper_program import TradingProgram
from tradeforge.features.pipeline import FeaturePipeline
from tradeforge.features.spec import FeatureSpec
from tradeforge.sim import SimConfig
from tradeforge.testing.sim import EVERY_COST

SYMBOLS = ["AAPL", "IBM", "MSFT"]
COSTS = EVERY_COST.model_copy(
    update={"borrow_bps_annual": 0.0, "cash_rate_annual": 0.0, "margin_spread_annual": 0.0}
)
SIM = SimConfig(costs=COSTS)
INDICATORS = ["logret_1", "logret_5", "rsi_14"]


class SwingPolicy:
    """Module docstring: 10 % cash, the rest by a softmax of the last one-bar log return."""

    def __init__(self, n_assets: int, n_features: int, window: int) -> None:
        self.n, self.f, self.window = n_assets, n_features, window

    def act(self, observation: np.ndarray) -> np.ndarray:
        rows = observation[: self.window * self.n * self.f].reshape(self.window, self.n, self.f)
        score = np.exp(40.0 * rows[-1, :, 0])
        out: np.ndarray = 0.9 * score / score.sum()
        return out


@cache
def bundled_panel() -> BarPanel:
    """AAPL, IBM and MSFT daily bars from the bundled data (cached)."""
    from tradeforge.data.bundled import load_bundled_panel

    return load_bundled_panel(SYMBOLS)


def numpy_program(name: str = "swing") -> TradingProgram:
    """The torch-free program (module docstring)."""
    panel = bundled_panel()
    pipeline = FeaturePipeline(FeatureSpec(indicators=INDICATORS)).fit(panel, None, "2009-12-31")
    env = EnvConfig(action="weights", window=3, sim=SIM)
    data = DataConfig(source="bundled", symbols=SYMBOLS)
    return TradingProgram(
        policy=SwingPolicy(len(SYMBOLS), len(INDICATORS), env.window),
        pipeline=pipeline, env=env, data=data, name=name, fingerprint=f"{name}-v1",
    )  # fmt: skip


__all__ = ["COSTS", "INDICATORS", "SIM", "SYMBOLS", "SwingPolicy", "bundled_panel", "numpy_program"]
