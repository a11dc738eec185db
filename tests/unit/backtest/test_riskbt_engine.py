"""run_backtest(..., risk=) and the envs under the risk engine (issue 11, item 4).

Bundled AAPL/IBM/MSFT bars for the behaviour on real prices; hand-written one-asset prices only
for the edge cases that need a drop at a known bar (a stop, a breaker)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradeforge.backtest.engine import decision_window, run_backtest
from tradeforge.backtest.engine_kernel import numba_available
from tradeforge.data.panel import BarPanel
from tradeforge.envs.config import EnvConfig
from tradeforge.envs.env import TradingEnv
from tradeforge.risk import RiskConfig
from tradeforge.sim import SimConfig
from tradeforge.testing.envs import simple_features
from tradeforge.testing.programs import SIM, bundled_panel

START = "2011-07-01"


def _bar(panel: BarPanel, day: str) -> int:
    return int(panel.index.searchsorted(pd.Timestamp(day, tz="UTC")))


def _weights(panel: BarPanel, row: list[float]) -> np.ndarray:
    return np.tile(np.array(row, dtype=np.float64), (panel.n_bars, 1))


def _stepped(prices: list[float], start: str = "2021-03-01") -> BarPanel:
    """One asset whose every bar opens, trades and closes at the given price (volume ample)."""
    close = np.array(prices, dtype=np.float64)[:, None]
    index = pd.date_range(start, periods=len(prices), freq="D", tz="UTC")
    return BarPanel(index, ("A0",), close, close, close, close, np.full_like(close, 1e9))


FREE = SimConfig()  # no costs: fills exactly at the bar's open


def test_projection_keys_alone_keep_the_fast_path_bit_identical() -> None:
    panel = bundled_panel()
    rng = np.random.default_rng(1)
    w = rng.dirichlet(np.ones(3), size=panel.n_bars) * 0.9
    s = _bar(panel, START)
    plain = run_backtest(panel, w, SIM, s, s + 60)
    risk = RiskConfig(max_position=0.5, max_gross=1.0, max_turnover=2.0, long_only=True,
                      drawdown_action="reducing", flatten_on_kill=True)  # fmt: skip
    same = run_backtest(panel, w, SIM, s, s + 60, risk=risk)
    assert same.risk is None
    assert plain.risk is None
    np.testing.assert_array_equal(same.equity.to_numpy(), plain.equity.to_numpy())
    np.testing.assert_array_equal(same.positions.to_numpy(), plain.positions.to_numpy())


def test_the_engine_path_that_never_binds_equals_the_step_loop_bit_for_bit() -> None:
    panel = bundled_panel()
    w = _weights(panel, [0.3, np.nan, 0.2])  # keeps cash: buys never lack buying power
    s = _bar(panel, START)
    step = run_backtest(panel, w, SIM, s, s + 60, kernel="step")
    risk = RiskConfig(max_order_notional=10**9, stop_loss=0.9, max_drawdown=0.9)
    gated = run_backtest(panel, w, SIM, s, s + 60, risk=risk)
    np.testing.assert_array_equal(gated.equity.to_numpy(), step.equity.to_numpy())
    np.testing.assert_array_equal(gated.positions.to_numpy(), step.positions.to_numpy())
    tally = gated.risk
    assert tally is not None
    assert tally.denied == {}
    assert tally.stops == {}
    assert tally.trips == {}
    assert tally.approved == tally.orders == int(np.count_nonzero(step.records.traded))
    assert tally.state_bars == {"active": 59}


def test_a_denied_order_is_never_filled() -> None:
    panel = bundled_panel()
    s = _bar(panel, START)
    w = _weights(panel, [0.05, 0.3, 0.05])  # IBM's orders are ~$300,000
    result = run_backtest(panel, w, SIM, s, s + 40, risk=RiskConfig(max_order_notional=100_000))
    traded = result.records.traded
    assert np.all(traded[:, 1] == 0.0)  # IBM: every order denied, nothing filled
    assert np.count_nonzero(traded[:, 0]) > 0
    assert np.count_nonzero(traded[:, 2]) > 0
    assert result.positions["IBM"].abs().max() == 0.0
    tally = result.risk
    assert tally is not None
    assert tally.denied == {"order_notional_exceeds_max": 39}  # one IBM buy each decision bar
    assert tally.orders == tally.approved + 39


def test_a_stop_loss_closes_the_position_at_the_next_bar() -> None:
    prices = [100.0] * 5 + [96.0] * 2 + [96.0] * 3
    panel = _stepped(prices)
    w = _weights(panel, [0.5])
    result = run_backtest(panel, w, FREE, 0, len(prices), risk=RiskConfig(stop_loss=0.03))
    held = result.positions["A0"].to_numpy()
    assert held[1] == pytest.approx(5000.0)  # bought at the open of bar 1
    # close 96 at bar 5 < 100 x 0.97: the exit fills at bar 6; the target buys again at bar 7
    assert held[5] == pytest.approx(5000.0)
    assert held[6] == 0.0
    assert held[7] > 0.0
    tally = result.risk
    assert tally is not None
    assert tally.stops == {"stop_loss": 1}
    assert tally.stops_by_symbol == {"A0": {"stop_loss": 1}}
    without = run_backtest(panel, w, FREE, 0, len(prices))
    assert without.positions["A0"].to_numpy()[6] > 5000.0  # no stop: it rebalances up


def test_halted_lets_no_new_order_through() -> None:
    prices = [100.0] * 5 + [80.0] + [82.0] * 6
    panel = _stepped(prices)
    w = _weights(panel, [0.5])
    w[6:] = [[0.9], [0.1], [0.9], [0.0], [0.7], [0.3]]
    result = run_backtest(panel, w, FREE, 0, len(prices), risk=RiskConfig(max_drawdown=0.05))
    held = result.positions["A0"].to_numpy()
    # bar 5's close puts equity 10 % under its peak: HALTED from that decision on
    assert np.all(held[5:] == held[5])
    assert np.all(result.records.traded[5:] == 0.0)
    tally = result.risk
    assert tally is not None
    assert tally.trips == {"drawdown": 1}
    assert tally.final_state == "halted"
    assert tally.state_bars == {"active": 5, "halted": 6}
    assert tally.denied == {"trading_halted": 6}
    assert tally.to_json()["state_share"]["halted"] == pytest.approx(6 / 11)


def test_reducing_lets_only_risk_reducing_orders_through() -> None:
    prices = [100.0] * 5 + [80.0] + [82.0] * 6
    panel = _stepped(prices)
    w = _weights(panel, [0.5])
    w[5:] = [[0.5], [0.9], [0.3], [0.9], [0.1], [0.0], [0.6]]
    risk = RiskConfig(max_drawdown=0.05, drawdown_action="reducing")
    result = run_backtest(panel, w, FREE, 0, len(prices), risk=risk)
    traded = result.records.traded[5:, 0]
    assert np.all(traded <= 0.0)  # only sells after the trip
    assert np.count_nonzero(traded) == 3  # to 0.3, to 0.1, to 0
    assert result.positions["A0"].iloc[-1] == 0.0
    tally = result.risk
    assert tally is not None
    assert tally.denied == {"trading_reducing": 3}  # 0.5 -> 0.9, 0.3 -> 0.9 and 0 -> 0.6
    assert tally.state_bars == {"active": 5, "reducing": 6}


class _Momentum:
    """A deterministic policy: weights from the sign of each asset's last one-bar return."""

    def act(self, observation: np.ndarray) -> np.ndarray:
        last = observation[: 3 * 3 * 3].reshape(3, 3, 3)[-1, :, 0]
        return np.clip(np.r_[40.0 * last, 0.2], -1.0, 1.0)


def _rollout(env: TradingEnv) -> np.ndarray:
    from tradeforge.agents.rollout import rollout_weights

    return rollout_weights(_Momentum(), env)


def test_the_env_under_risk_equals_the_backtest_of_its_targets() -> None:
    panel = bundled_panel()
    features = simple_features(panel)
    s = _bar(panel, "2011-08-01")
    risk = RiskConfig(stop_loss=0.02, trailing_stop=0.04, max_order_notional=300_000,
                      max_drawdown=0.04, drawdown_action="reducing")  # fmt: skip
    config = EnvConfig(action="weights", window=3, sim=SIM, risk=risk)
    env = TradingEnv(panel, features, config, start=s, end=s + 62)
    w = _rollout(env)
    result = run_backtest(panel, w, SIM, *decision_window(w), risk=risk)
    np.testing.assert_array_equal(result.equity.to_numpy(), env.history()["equity"])
    assert env.risk_tally is not None
    assert result.risk is not None
    assert env.risk_tally.to_json() == result.risk.to_json()
    assert sum(result.risk.stops.values()) > 0
    assert sum(result.risk.denied.values()) > 0
    plain = TradingEnv(panel, features, config.model_copy(update={"risk": None}), start=s,
                       end=s + 62)  # fmt: skip
    _rollout(plain)
    assert plain.equity != env.equity  # the controls changed the episode


def test_an_env_without_controls_keeps_its_kernel_and_its_numbers() -> None:
    panel = bundled_panel()
    features = simple_features(panel)
    s = _bar(panel, "2011-08-01")
    base = EnvConfig(action="weights", window=3, sim=SIM)
    limited = base.model_copy(update={"risk": RiskConfig(max_position=0.5, max_turnover=1.0)})
    env = TradingEnv(panel, features, limited, start=s, end=s + 40)
    ref = TradingEnv(panel, features, base, start=s, end=s + 40)
    assert env._core.compiled == ref._core.compiled == numba_available()
    assert env._core.risk_config is None
    _rollout(env)
    _rollout(ref)
    np.testing.assert_array_equal(env.history()["equity"], ref.history()["equity"])
    assert env.risk_tally is None


def test_env_config_dumps_without_risk_as_before_and_round_trips_with_it() -> None:
    assert "risk" not in EnvConfig().model_dump()
    config = EnvConfig(risk=RiskConfig(stop_loss=0.05, max_order_notional=1000))
    dumped = config.model_dump(mode="json")
    assert dumped["risk"]["stop_loss"] == 0.05
    assert EnvConfig.model_validate(dumped) == config
