"""A restarted service's canary sleeve keeps its allocation, units and ramp step."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

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
