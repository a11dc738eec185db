"""tradeforge.execution public API: everything in __all__ exists; importing it pulls in no
vendor SDK and no training stack."""

from __future__ import annotations

import subprocess
import sys

import tradeforge.execution
import tradeforge.execution.brokers


def test_all_names_exist() -> None:
    for module in (tradeforge.execution, tradeforge.execution.brokers):
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert missing == []
    assert {"OrderManager", "OrderStore", "SimulatedBroker", "plan_orders", "client_order_id",
            "Broker"} <= set(tradeforge.execution.__all__)  # fmt: skip


def test_import_is_light() -> None:
    code = (
        "import sys, tradeforge.execution;"
        "print(sorted(m for m in ('alpaca', 'torch', 'stable_baselines3', 'gymnasium')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
