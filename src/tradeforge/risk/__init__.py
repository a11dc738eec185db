"""tradeforge.risk: the one risk engine of training, backtests, paper and live trading.

* Target weights (pure numpy): :class:`RiskLimits` and its exact projection, for one decision
  (:func:`project_weights`) or a whole ``(T, N)`` weights path (:func:`project_path`), and
  :func:`violations` to count what a raw target breaks.
* Orders: :class:`RiskConfig` (the experiment's ``risk:`` section, tightenable at run time),
  :class:`RiskEngine` with ``validate(order, view) -> Denied | None`` (reasons from the closed
  enum :class:`DenyReason`), stops and breakers (:class:`ExitIntent`, :class:`Trip`), the trading
  state ACTIVE/REDUCING/HALTED (:class:`TradingState`) persisted with the audit log
  (:class:`RiskStateStore`), and the kill switch (:func:`kill_state_dir`,
  :func:`resume_state_dir`, :class:`KillTarget`). See ``docs/risk.md``.
* Bars (backtests and envs): :class:`BarRisk` runs the engine on a simulated account one bar at
  a time, counting what it did in a :class:`RiskTally`; :func:`gate_orders` checks a bar's
  orders in turn (the trading node's gate too); :func:`needs_engine` tells whether a config
  needs the engine at all.
"""

from tradeforge.risk.bars import BarFill, BarRisk, RiskTally, needs_engine
from tradeforge.risk.checks import (
    Denied,
    DenyReason,
    PortfolioView,
    check_order,
    is_risk_reducing,
)
from tradeforge.risk.config import RiskConfig
from tradeforge.risk.controls import Breaker, ControlMemory, ExitIntent, ExitReason, Trip
from tradeforge.risk.engine import ControlReport, KillReport, RiskEngine, RiskStats
from tradeforge.risk.gate import GateResult, exit_orders, gate_orders
from tradeforge.risk.killswitch import (
    KillTarget,
    kill_state_dir,
    read_state_dir,
    resume_state_dir,
)
from tradeforge.risk.limits import (
    RiskError,
    RiskLimits,
    project_path,
    project_weights,
    violations,
)
from tradeforge.risk.state import RiskStateStore, StatePaths, StateRecord, TradingState

__all__ = [
    "BarFill",
    "BarRisk",
    "Breaker",
    "ControlMemory",
    "ControlReport",
    "Denied",
    "DenyReason",
    "ExitIntent",
    "ExitReason",
    "GateResult",
    "KillReport",
    "KillTarget",
    "PortfolioView",
    "RiskConfig",
    "RiskEngine",
    "RiskError",
    "RiskLimits",
    "RiskStateStore",
    "RiskStats",
    "RiskTally",
    "StatePaths",
    "StateRecord",
    "TradingState",
    "Trip",
    "check_order",
    "exit_orders",
    "gate_orders",
    "is_risk_reducing",
    "kill_state_dir",
    "needs_engine",
    "project_path",
    "project_weights",
    "read_state_dir",
    "resume_state_dir",
    "violations",
]
