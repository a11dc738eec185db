from __future__ import annotations

import numpy as np
import pytest

from tradeforge.core.errors import SimulationError
from tradeforge.envs.actions import (
    ContinuousActions,
    DiscreteActions,
    WeightsActions,
    project_l1_ball,
    project_simplex,
)
from tradeforge.envs.config import EnvConfig
from tradeforge.sim import SimConfig


def cfg(**kw):
    sim = kw.pop("sim", {})
    return EnvConfig(sim=SimConfig(**sim), **kw)


def test_discrete_position_levels_long_only_and_with_shorts():
    long_only = DiscreteActions(1, cfg(action="discrete"))
    assert long_only.space.n == 2
    prev = np.zeros((2, 1))
    np.testing.assert_allclose(long_only.to_weights(np.array([0, 1]), prev), [[0.0], [1.0]])
    shorts = DiscreteActions(1, cfg(action="discrete", sim={"allow_short": True}))
    assert shorts.space.n == 3
    np.testing.assert_allclose(
        shorts.to_weights(np.array([0, 1, 2]), np.zeros((3, 1))), [[-1.0], [0.0], [1.0]]
    )


def test_discrete_multi_asset_splits_leverage():
    interp = DiscreteActions(4, cfg(action="discrete"))
    w = interp.to_weights(np.array([[1, 0, 1, 1]]), np.zeros((1, 4)))
    np.testing.assert_allclose(w, [[0.25, 0.0, 0.25, 0.25]])


def test_discrete_trade_mode_steps_from_previous_level():
    interp = DiscreteActions(1, cfg(action="discrete", discrete_mode="trade"))
    prev = np.array([[0.0], [1.0], [0.0]])
    # sell from flat stays flat (no shorts), hold keeps long, buy from flat goes long
    w = interp.to_weights(np.array([0, 1, 2]), prev)
    np.testing.assert_allclose(w, [[0.0], [1.0], [1.0]])
    shorts = DiscreteActions(
        1, cfg(action="discrete", discrete_mode="trade", sim={"allow_short": True})
    )
    np.testing.assert_allclose(shorts.to_weights(np.array([0]), np.zeros((1, 1))), [[-1.0]])


@pytest.mark.parametrize("bad", [np.array([2]), np.array([-1]), np.array([0.5]), np.array([0, 1])])
def test_discrete_rejects_actions_outside_space(bad):
    interp = DiscreteActions(1, cfg(action="discrete"))
    with pytest.raises(SimulationError, match="discrete action"):
        interp.to_weights(bad, np.zeros((1, 1)))


def test_continuous_clips_shorts_and_caps_leverage():
    interp = ContinuousActions(2, cfg(sim={"max_leverage": 1.0}))
    w = interp.to_weights(np.array([[1.0, 1.0], [-0.5, 0.25]]), np.zeros((2, 2)))
    np.testing.assert_allclose(w, [[0.5, 0.5], [0.0, 0.25]])
    shorts = ContinuousActions(
        2, cfg(sim={"allow_short": True, "max_position": 0.5, "max_leverage": 2})
    )
    np.testing.assert_allclose(
        shorts.to_weights(np.array([-1.0, 0.4]), np.zeros((1, 2))), [[-0.5, 0.2]]
    )


@pytest.mark.parametrize("bad", [np.array([1.5]), np.array([np.nan]), np.array([0.1, 0.2])])
def test_continuous_rejects_out_of_space(bad):
    with pytest.raises(SimulationError, match="continuous action"):
        ContinuousActions(1, cfg()).to_weights(bad, np.zeros((1, 1)))


def test_softmax_weights_with_and_without_cash():
    with_cash = WeightsActions(3, cfg(action="weights"))
    assert with_cash.space.shape == (4,)
    a = np.array([[0.5, -0.2, 0.1, 0.0]])
    z = np.exp(4.0 * a)
    np.testing.assert_allclose(with_cash.to_weights(a, np.zeros((1, 3))), z[:, :3] / z.sum())
    no_cash = WeightsActions(3, cfg(action="weights", weights_cash=False))
    w = no_cash.to_weights(np.array([0.3, 0.3, -1.0]), np.zeros((1, 3)))
    assert w.sum() == pytest.approx(1.0)
    assert w[0, 0] == pytest.approx(w[0, 1])


def test_softmax_with_shorts_is_rejected_at_construction():
    with pytest.raises(SimulationError, match="allow_short"):
        WeightsActions(2, cfg(action="weights", sim={"allow_short": True}))


def test_simplex_projection_properties():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 5))
    w = project_simplex(v)
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    # a point already on the simplex is its own projection
    p = np.array([[0.2, 0.3, 0.5]])
    np.testing.assert_allclose(project_simplex(p), p)
    # projection of (1, 0) shifted: known answer
    np.testing.assert_allclose(project_simplex(np.array([[2.0, 0.0]])), [[1.0, 0.0]])
    np.testing.assert_allclose(project_simplex(np.array([[0.6, 0.6]])), [[0.5, 0.5]])


def test_l1_ball_projection():
    v = np.array([[0.5, -2.0], [0.1, 0.2]])
    w = project_l1_ball(v, 1.0)
    np.testing.assert_allclose(np.abs(w[0]).sum(), 1.0)
    np.testing.assert_allclose(w[0], [0.0, -1.0])
    np.testing.assert_allclose(w[1], v[1])  # inside: unchanged


def test_simplex_weights_long_short():
    interp = WeightsActions(
        2,
        cfg(
            action="weights",
            weights_transform="simplex",
            sim={"allow_short": True, "max_leverage": 1.0},
        ),
    )
    w = interp.to_weights(np.array([1.0, -1.0, 0.0]), np.zeros((1, 2)))
    np.testing.assert_allclose(w, [[0.5, -0.5]])
    long_only = WeightsActions(2, cfg(action="weights", weights_transform="simplex"))
    w = long_only.to_weights(np.array([1.0, -1.0, -1.0]), np.zeros((1, 2)))
    np.testing.assert_allclose(w, [[1.0, 0.0]])


def test_weights_reject_out_of_space():
    with pytest.raises(SimulationError, match="weights action"):
        WeightsActions(2, cfg(action="weights")).to_weights(np.array([2.0, 0, 0]), np.zeros((1, 2)))
