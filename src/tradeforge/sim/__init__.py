"""The market simulator shared by the envs, the backtester and the paper venue.

Pure functions over float64 arrays with a batch axis B: ``step(state, targets, market, t,
config) -> (new_state, StepResult)``. Targets decided at close[t] fill at bar t+1 (open by
default; ``SimConfig.delay_bars`` later with latency, see ``sim.latency``), positions are marked
at close[t+1]; see ``tradeforge.sim.step`` for the exact rules. Bars per year come from the data
frequency and the calendar unless set (``sim.annualization``).
"""

from tradeforge.sim.annualization import Calendar, calendar_for, periods_per_year
from tradeforge.sim.config import DEFAULT_MARGIN_SPREAD, CostConfig, FillPrice, SimConfig
from tradeforge.sim.costs import CarryCosts, TradeCosts, carry_costs, trade_costs
from tradeforge.sim.latency import delay_targets
from tradeforge.sim.market import (
    MarketArrays,
    PanelLike,
    forward_fill,
    rolling_mean_volume,
    rolling_volatility,
)
from tradeforge.sim.state import AccountState, equity, holding_values, initial_state, reset_rows
from tradeforge.sim.step import StepResult, clip_targets, step

__all__ = [
    "DEFAULT_MARGIN_SPREAD",
    "AccountState",
    "Calendar",
    "CarryCosts",
    "CostConfig",
    "FillPrice",
    "MarketArrays",
    "PanelLike",
    "SimConfig",
    "StepResult",
    "TradeCosts",
    "calendar_for",
    "carry_costs",
    "clip_targets",
    "delay_targets",
    "equity",
    "forward_fill",
    "holding_values",
    "initial_state",
    "periods_per_year",
    "reset_rows",
    "rolling_mean_volume",
    "rolling_volatility",
    "step",
    "trade_costs",
]
