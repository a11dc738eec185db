"""Execution engine: the order manager and its durable store, deterministic client order ids,
target weights to orders, and brokers behind one protocol (an in-process simulated broker on
``tradeforge.sim``, the local Alpaca-compatible venue, Alpaca), and the trading node's bar loop.
See ``docs/execution.md``, ``docs/venue.md`` and ``docs/paper.md``.
"""

from tradeforge.execution.broker import Broker, BrokerAccount, BrokerOrder, BrokerPosition
from tradeforge.execution.brokers.simulated import SimulatedBroker
from tradeforge.execution.errors import (
    BrokerError,
    BrokerUnavailableError,
    ExecutionError,
    OmsStoreError,
    OrderNotFoundError,
    ReconciliationError,
    SizingError,
    TradingHaltedError,
)
from tradeforge.execution.ids import client_order_id
from tradeforge.execution.node import TradingNode
from tradeforge.execution.node_config import NodeConfig, NodeResult
from tradeforge.execution.oms import HOOK_POINTS, Hook, HookPoint, OrderManager, ReconcileReport
from tradeforge.execution.sizing import (
    OrderIntent,
    OrderPlan,
    SizingConfig,
    Skipped,
    collar_price,
    plan_orders,
    round_quantity,
    to_commands,
)
from tradeforge.execution.store import (
    Dialect,
    OrderStore,
    SqliteDialect,
    is_postgres_url,
    open_store,
)

__all__ = [
    "HOOK_POINTS",
    "Broker",
    "BrokerAccount",
    "BrokerError",
    "BrokerOrder",
    "BrokerPosition",
    "BrokerUnavailableError",
    "Dialect",
    "ExecutionError",
    "Hook",
    "HookPoint",
    "NodeConfig",
    "NodeResult",
    "OmsStoreError",
    "OrderIntent",
    "OrderManager",
    "OrderNotFoundError",
    "OrderPlan",
    "OrderStore",
    "ReconcileReport",
    "ReconciliationError",
    "SimulatedBroker",
    "SizingConfig",
    "SizingError",
    "Skipped",
    "SqliteDialect",
    "TradingHaltedError",
    "TradingNode",
    "client_order_id",
    "collar_price",
    "is_postgres_url",
    "open_store",
    "plan_orders",
    "round_quantity",
    "to_commands",
]
