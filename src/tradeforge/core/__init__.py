"""Core: errors, configuration base, typed aliases, clocks and the ``Policy`` protocol.

Imports nothing from the rest of tradeforge.
"""

from tradeforge.core.config import FrozenConfig, load_yaml_config
from tradeforge.core.errors import TradeforgeError
from tradeforge.core.policy import Policy

__all__ = ["FrozenConfig", "Policy", "TradeforgeError", "load_yaml_config"]
