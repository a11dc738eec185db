"""Latency: decided targets reach the simulator ``delay_bars`` bars later, in both forms."""

from __future__ import annotations

import numpy as np
import pytest

from tradeforge.core.errors import SimulationError
from tradeforge.sim import MarketArrays, SimConfig, initial_state, step
from tradeforge.sim.latency import clear_rows, delay_targets, empty_queue, push_target


def test_delay_targets_shifts_rows_and_holds_before_the_first_release() -> None:
    w = np.arange(12, dtype=float).reshape(6, 2)
    out = delay_targets(w, 2, start=1)
    assert np.isnan(out[:3]).all()  # rows 0..2: nothing decided in the run has been released
    np.testing.assert_array_equal(out[3:], w[1:4])
    np.testing.assert_array_equal(delay_targets(w, 0), w)
    assert np.isnan(delay_targets(w, 7)).all()
    with pytest.raises(SimulationError, match="delay_bars = -1"):
        delay_targets(w, -1)


def test_queue_releases_what_delay_targets_releases() -> None:
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, (20, 3))
    for delay in (0, 1, 3):
        queue = empty_queue(2, delay, 3)
        released = np.array([push_target(queue, np.stack([w[t], -w[t]]))[0] for t in range(20)])
        np.testing.assert_array_equal(released, delay_targets(w, delay))
    queue = empty_queue(2, 2, 3)
    push_target(queue, np.ones((2, 3)))
    clear_rows(queue, np.array([True, False]))
    assert np.isnan(queue[0]).all()
    assert (queue[1, -1] == 1.0).all()


def test_a_delayed_target_fills_later_at_the_later_price() -> None:
    """Decided at close[0] with one bar of delay: sized at close[1], filled at open[2]."""
    close = np.array([[10.0], [20.0], [25.0], [25.0]])
    open_ = np.array([[10.0], [11.0], [22.0], [25.0]])
    market = MarketArrays.from_arrays(open_, np.maximum(open_, close), open_, close, close * 1e9)
    config = SimConfig(initial_cash=1000.0, delay_bars=1)
    queue = empty_queue(1, config.delay_bars, 1)
    state = initial_state(config, 1, 1)
    state, first = step(state, push_target(queue, np.array([[1.0]])), market, 0, config)
    assert first.traded_shares[0, 0] == 0.0  # nothing released yet
    state, second = step(state, push_target(queue, np.array([[np.nan]])), market, 1, config)
    assert second.fill_price[0, 0] == 22.0
    assert second.traded_shares[0, 0] == pytest.approx(1000.0 / 20.0)  # sized at close[1]
