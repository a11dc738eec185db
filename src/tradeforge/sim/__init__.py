"""The market simulator shared by the envs, the backtester and the paper venue.

Pure functions over float64 arrays with a batch axis B: ``step(state, targets, market, t,
config) -> (new_state, StepResult)``. Targets decided at close[t] fill at bar t+1 (open by
default), positions are marked at close[t+1]; see ``tradeforge.sim.step`` for the exact rules.
"""

from tradeforge.sim.config import CostConfig, FillPrice, SimConfig
from tradeforge.sim.costs import TradeCosts, carry_costs, trade_costs
from tradeforge.sim.market import MarketArrays, PanelLike, forward_fill, rolling_volatility
from tradeforge.sim.state import AccountState, equity, holding_values, initial_state, reset_rows
from tradeforge.sim.step import StepResult, clip_targets, step

__all__ = [
    "AccountState",
    "CostConfig",
    "FillPrice",
    "MarketArrays",
    "PanelLike",
    "SimConfig",
    "StepResult",
    "TradeCosts",
    "carry_costs",
    "clip_targets",
    "equity",
    "forward_fill",
    "holding_values",
    "initial_state",
    "reset_rows",
    "rolling_volatility",
    "step",
    "trade_costs",
]
