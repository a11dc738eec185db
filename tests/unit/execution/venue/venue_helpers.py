"""Helpers for the venue unit tests: an engine on the bundled AAPL/IBM/MSFT bars with every
trading cost on, and a recorder of the trade updates it publishes."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from tradeforge.data.panel import BarPanel
from tradeforge.execution.venue import VenueConfig, VenueEngine
from tradeforge.sim import SimConfig
from tradeforge.testing.sim import EVERY_COST

COSTS = EVERY_COST.model_copy(
    update={"borrow_bps_annual": 0.0, "cash_rate_annual": 0.0, "margin_spread_annual": 0.0}
)
REPLAY_START = date(2010, 1, 4)


def venue_config(**changes: Any) -> VenueConfig:
    changes.setdefault("sim", SimConfig(costs=COSTS))
    changes.setdefault("replay_start", REPLAY_START)
    return VenueConfig(**changes)


def make_engine(
    panel: BarPanel, state_dir: Path | None = None, **changes: Any
) -> tuple[VenueEngine, list[dict[str, Any]]]:
    """An engine and the list its trade updates are appended to."""
    engine = VenueEngine(venue_config(**changes), panel=panel, state_dir=state_dir)
    updates: list[dict[str, Any]] = []
    engine.listeners.append(updates.append)
    return engine, updates


def market(
    symbol: str = "AAPL", qty: str | None = "10", side: str = "buy", **kw: Any
) -> dict[str, Any]:
    """An order body as alpaca-py sends it (None fields dropped)."""
    body: dict[str, Any] = {
        "symbol": symbol,
        "side": side,
        "type": "market",
        "time_in_force": "day",
    }
    if qty is not None:
        body["qty"] = float(qty)
    body.update(kw)
    return body
