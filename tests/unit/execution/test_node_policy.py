"""What the node hands the policy and how it reads the answer: the account state, the env's
observation layout and action mapping (experiment-side adapters, checked against TradingEnv
itself), the policy's output checks, the kill target and the crash hook."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from exec_helpers import make_fill
from test_node_support import broker, pipeline

from tradeforge.core.errors import ConfigError
from tradeforge.data.panel import BarPanel
from tradeforge.domain import OrderSide, Portfolio, StrategyId, Symbol
from tradeforge.envs.config import EnvConfig
from tradeforge.envs.env import TradingEnv
from tradeforge.execution.node_policy import (
    AccountVector,
    PolicyOutputError,
    account_vector,
    target_weights,
)
from tradeforge.execution.node_risk import CRASH_ENV, OmsKillTarget, crash_hook
from tradeforge.execution.oms import OrderManager
from tradeforge.execution.store import OrderStore
from tradeforge.experiment.paper_program import EnvActionPolicy, WindowObservationBuilder
from tradeforge.risk import ExitIntent, ExitReason

AAPL, IBM = Symbol("AAPL"), Symbol("IBM")


def test_account_vector_is_what_the_env_observes() -> None:
    portfolio = Portfolio(cash=Decimal(1000))
    portfolio = portfolio.apply_fill(make_fill("a", "f1", "10", "50", fee="1"))
    portfolio = portfolio.apply_fill(make_fill("b", "f2", "4", "20", symbol="IBM"))
    marks = {AAPL: Decimal(55), IBM: Decimal(18)}
    got = account_vector(portfolio, marks, (AAPL, IBM, Symbol("MSFT")))
    cash = 1000.0 - 500.0 - 1.0 - 80.0
    equity = cash + 10 * 55.0 + 4 * 18.0
    assert got.weights.tolist() == [550.0 / equity, 72.0 / equity, 0.0]
    assert got.cash_fraction == cash / equity
    assert got.upnl == (10 * (55.0 - 50.0) + 4 * (18.0 - 20.0)) / equity
    back = AccountVector.from_tuple(got.as_tuple())
    assert np.array_equal(back.weights, got.weights)
    assert (back.cash_fraction, back.upnl) == (got.cash_fraction, got.upnl)
    flat = account_vector(Portfolio(cash=Decimal(5)), {}, (AAPL,))
    assert (flat.weights.tolist(), flat.cash_fraction, flat.upnl) == ([0.0], 1.0, 0.0)


class _Fixed:
    def __init__(self, out: Any) -> None:
        self.out = out

    def act(self, observation: Any) -> Any:
        return self.out


def test_policy_output_is_checked() -> None:
    assert target_weights(_Fixed([0.2, float("nan")]), None, 2)[0] == 0.2
    with pytest.raises(PolicyOutputError, match="returned 3 value"):
        target_weights(_Fixed([0.1, 0.2, 0.3]), None, 2)
    with pytest.raises(PolicyOutputError, match="finite weights or NaN"):
        target_weights(_Fixed([0.1, float("inf")]), None, 2)


class _Scripted:
    """A policy whose env actions come from a list (as an SB3 policy's would)."""

    def __init__(self, actions: list[Any]) -> None:
        self.actions = list(actions)

    def env_action(self, observation: Any) -> Any:
        return self.actions.pop(0)


@pytest.mark.parametrize(
    ("env", "actions"),
    [
        (EnvConfig(action="weights", window=3), [np.array([0.3, -0.2, 0.9, 0.1])] * 4),
        (EnvConfig(action="continuous", window=2), [np.array([0.5, -0.4, 1.0])] * 4),
        (EnvConfig(action="discrete", discrete_mode="trade", window=3),
         [np.array([2, 1, 2]), np.array([2, 0, 1]), np.array([0, 2, 2]), np.array([1, 1, 0])]),
    ],
)  # fmt: skip
def test_adapters_decide_and_observe_exactly_as_the_env(
    equities_panel: BarPanel, env: EnvConfig, actions: list[Any]
) -> None:
    features = pipeline(equities_panel).transform(equities_panel)
    start = int(equities_panel.index.searchsorted(pd.Timestamp("2010-01-04", tz="UTC")))
    trading = TradingEnv(equities_panel, features, env, start=start, end=start + 10)
    observe = WindowObservationBuilder(env, features.names)
    adapter = EnvActionPolicy(_Scripted(actions), env, equities_panel.n_symbols)
    adapter.reset()
    obs, info = trading.reset(seed=0)
    core = trading._core
    for action in actions:
        t = info["bar"]
        window = features.values[t - env.window + 1 : t + 1]
        account = AccountVector(core.weights[0].copy(), float(core.cash_fraction[0]),
                                float(core.upnl[0]))  # fmt: skip
        assert np.array_equal(observe(window, account), obs)
        weights = adapter.act(obs)
        obs, _, _, _, info = trading.step(action)
        np.testing.assert_allclose(weights, info["weights"], rtol=0, atol=1e-15)


def test_the_kill_target_cancels_through_the_oms_and_closes_positions(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    from exec_helpers import make_command

    venue = broker(equities_panel)
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "oms.sqlite"), venue)
    oms.submit(make_command("tf1-open", "AAPL", quantity="5"))
    target = OmsKillTarget(oms, StrategyId("unit"), lambda: venue.now)
    assert target.cancel_all_orders("test") == 1
    oms.process_events()
    assert oms.get_order("tf1-open").status.value == "canceled"  # type: ignore[union-attr,arg-type]
    target.flatten([ExitIntent(IBM, OrderSide.SELL, Decimal(3), ExitReason.KILL_FLATTEN, Decimal(1))],
                   "test")  # fmt: skip
    sent = venue.list_orders()[-1]
    assert (sent.symbol, sent.side, sent.quantity) == (IBM, OrderSide.SELL, Decimal(3))
    assert sent.client_order_id.startswith("tf1-")


def test_crash_hook_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert crash_hook({}) is None
    for bad in ("after_ack", "nowhere:1", "after_ack:0", "after_ack:x"):
        with pytest.raises(ConfigError, match=CRASH_ENV):
            crash_hook({CRASH_ENV: bad})
    killed: list[tuple[int, int]] = []
    monkeypatch.setattr("os.kill", lambda pid, sig: killed.append((pid, sig)))
    hook = crash_hook({CRASH_ENV: "after_ack:2"})
    assert hook is not None
    hook("after_submit", "c1")  # type: ignore[arg-type]
    hook("after_ack", "c1")  # type: ignore[arg-type]
    assert killed == []
    hook("after_ack", "c2")  # type: ignore[arg-type]
    import os
    import signal

    assert killed == [(os.getpid(), signal.SIGKILL)]
