"""A restarted service's canary sleeve keeps its allocation, units and ramp step."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from canary_support import Venue

from tradeforge.domain import OrderSide, SubmitOrder, Symbol
from tradeforge.execution.ids import client_order_id
from tradeforge.serve.canary import CanarySleeve
from tradeforge.serve.config import CanaryServeConfig
from tradeforge.testing.programs import numpy_program


def _sleeve(state: Path, version: int = 2) -> CanarySleeve:
    def no_rollback(decision: Any) -> dict[str, Any]:
        raise AssertionError("no rollback expected")

    config = CanaryServeConfig(enabled=True, share=0.01, ramp=(0.01, 0.05, 0.25))
    return CanarySleeve(config, numpy_program("canary"), strategy_id="swing", model="swing",
                        version=version, state_dir=state, rollback=no_rollback)  # fmt: skip


def test_the_allocation_and_ramp_step_survive_a_restart(tmp_path: Path) -> None:
    first = _sleeve(tmp_path)
    assert first.ledger.strategy_id == "swing-canary"
    first.ledger.allocate(Decimal("10000.25"), {})
    first.ramp.index, first.ramp.passing = 1, 4
    first._save()
    again = _sleeve(tmp_path)
    assert again.ledger.allocation == Decimal("10000.25")
    assert again.ledger.portfolio.cash == Decimal("10000.25")
    assert again.ramp.share == 0.05
    assert again.ramp.passing == 4
    other = _sleeve(tmp_path, version=3)  # a new canary version starts afresh
    assert other.ledger.allocation == 0
    assert other.ramp.share == 0.01


def test_after_a_restart_the_policy_never_sees_the_sleeves_holdings(tmp_path: Path) -> None:
    """The sleeve's positions are rebuilt from its stored fills when it is attached, before the
    policy's node decides its first bar."""
    ts = datetime(2010, 1, 5, tzinfo=UTC)
    first = _sleeve(tmp_path)
    first.ledger.allocate(Decimal(50_000), {})
    first._save()
    cid = client_order_id("swing-canary", ts, "AAPL")
    command = SubmitOrder(client_order_id=cid, strategy_id="swing-canary", symbol="AAPL",
                          side=OrderSide.BUY, quantity=Decimal(100))  # fmt: skip
    venue = Venue()
    venue.submit_many([command], ts)
    venue.fill_all({Symbol("AAPL"): Decimal(200)}, ts)
    node = SimpleNamespace(symbols=tuple(Symbol(s) for s in ("AAPL", "IBM", "MSFT")), oms=venue)
    again = _sleeve(tmp_path)
    again.attach(node)
    try:
        assert again.ledger.portfolio.quantities() == {Symbol("AAPL"): Decimal(100)}
        assert node.oms.portfolio.quantities() == {}  # the policy's view: none of it
        assert node.oms.portfolio.cash == Decimal(950_000)
    finally:
        again.close()
