"""One bar of the canary sleeve against a stand-in node: it trades within its cap, and a PSI,
unacknowledged-order or error trigger flattens it in the same bar, rolls back once and stops it trading."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from canary_support import T0, Venue

from tradeforge.domain import (
    Instrument,
    Order,
    OrderSide,
    Symbol,
)
from tradeforge.governance.canary import CanaryConfig, RollbackDecision
from tradeforge.serve.canary import CanarySleeve
from tradeforge.serve.config import CanaryServeConfig
from tradeforge.sim import SimConfig
from tradeforge.testing.programs import INDICATORS, SYMBOLS, numpy_program

SYMS = tuple(Symbol(s) for s in SYMBOLS)


class Policy:
    def __init__(self) -> None:
        self.calls, self.fail = 0, False

    def act(self, observation: Any) -> np.ndarray:
        self.calls += 1
        if self.fail:
            raise RuntimeError("the canary's network returned garbage")
        return np.array([1.0, 0.0, 0.0])


def _setup(tmp_path: Path, monitor: CanaryConfig, psi: dict[str, float] | None = None) -> Any:
    program = numpy_program("canary")
    policy = Policy()
    program = SimpleNamespace(policy=policy, symbols=program.symbols,
                              observation_builder=lambda: (lambda values, account: values))  # fmt: skip
    decisions: list[RollbackDecision] = []

    def rollback(decision: RollbackDecision) -> dict[str, Any]:
        decisions.append(decision)
        return {"action": "remove_canary"}

    config = CanaryServeConfig(enabled=True, share=0.05, ramp=(0.05, 0.25), monitor=monitor)
    sleeve = CanarySleeve(config, program, strategy_id="swing", model="swing", version=2,
                          state_dir=tmp_path / "canary", rollback=rollback,
                          psi=lambda: psi)  # fmt: skip
    venue = Venue()
    node = SimpleNamespace(
        symbols=SYMS, oms=venue, _marks={}, sim=SimConfig(fractional=False),
        instruments={s: Instrument(symbol=s) for s in SYMS},
        window=SimpleNamespace(ready=True, values=lambda: np.zeros((3, 3, len(INDICATORS)))),
    )  # fmt: skip
    sleeve.attach(node)
    return sleeve, node, venue, policy, decisions


def _bar(sleeve: Any, node: Any, venue: Venue, day: int, aapl: str,
         stale: Order | None = None) -> datetime:  # fmt: skip
    ts = T0 + timedelta(days=day)
    node._marks = {SYMS[0]: Decimal(aapl), SYMS[1]: Decimal(100), SYMS[2]: Decimal(30)}
    venue.fill_all(node._marks, ts)
    if stale is not None:  # an order of the sleeve the broker never acknowledged
        venue.open.append(stale)
    sleeve.step(node, ts, decided=True)
    return ts


def test_a_psi_trigger_flattens_the_sleeve_in_the_same_bar_and_stops_it(tmp_path: Path) -> None:
    psi = {"logret_1": 0.1}
    sleeve, node, venue, policy, decisions = _setup(tmp_path, CanaryConfig(cusum=False), psi)
    try:
        _bar(sleeve, node, venue, 0, "200")
        assert sleeve.state()["allocation"] == 50_000.0  # 5 % of 1,000,000
        bought = [o for o in venue.open if o.strategy_id == "swing-canary"]
        assert [(str(o.symbol), o.side, o.command.quantity) for o in bought] == [
            ("AAPL", OrderSide.BUY, Decimal(250))
        ]  # 50,000 / 200, within the 50,000 cap
        assert sleeve.target_notional == 50_000.0 <= sleeve.cap
        _bar(sleeve, node, venue, 1, "202")  # filled; no trigger yet
        assert decisions == []
        assert sleeve.ledger.portfolio.quantities() == {SYMS[0]: Decimal(250)}
        # filled at 202, its 250 shares are 50,500 of notional, above the cap of 5 % of the
        # account (50,000): 3 are sold
        trim = [o for o in venue.open if o.strategy_id == "swing-canary"]
        assert [(o.side, o.command.quantity) for o in trim] == [(OrderSide.SELL, Decimal(3))]
        assert sleeve.cap == 50_000.0
        assert sleeve.target_notional == 247 * 202.0
        psi.update({"logret_5": 0.3, "rsi_14": 0.4, "logret_1": 0.5})  # 3 features drifted
        ts = _bar(sleeve, node, venue, 2, "204", stale=bought[0])
        assert len(decisions) == 1
        assert decisions[0].reasons == ["psi", "unknown_orders"]
        assert bought[0].client_order_id in venue.canceled  # its open orders canceled
        closing = [o for o in venue.open if o.strategy_id == "swing-canary"]
        assert [(str(o.symbol), o.side, o.command.quantity) for o in closing] == [
            ("AAPL", OrderSide.SELL, Decimal(247))
        ]
        assert sleeve.state()["rollback_bar"] == ts.isoformat()
        calls = policy.calls
        _bar(sleeve, node, venue, 3, "199")  # the closing order fills: flat, one bar later
        state = sleeve.state()
        assert state["bars_to_flat"] == 1
        assert state["positions"] == {}
        # 50,000 - 250 x 202 + 3 x 204 + 247 x 199: what is left goes back to the policy
        assert state["released_cash"] == 49_265.0
        _bar(sleeve, node, venue, 4, "190")
        assert policy.calls == calls  # stopped: the canary decides no more
        assert len(decisions) == 1  # one rollback
        assert [o for o in venue.open if o.strategy_id == "swing-canary"] == []
    finally:
        sleeve.close()


def test_a_canary_that_cannot_decide_is_rolled_back(tmp_path: Path) -> None:
    sleeve, node, venue, policy, decisions = _setup(tmp_path, CanaryConfig(cusum=False))
    try:
        _bar(sleeve, node, venue, 0, "200")
        _bar(sleeve, node, venue, 1, "201")
        policy.fail = True
        _bar(sleeve, node, venue, 2, "202")
        assert [d.reasons for d in decisions] == [["errors"]]
        assert "garbage" in sleeve.state()["error"]
    finally:
        sleeve.close()
