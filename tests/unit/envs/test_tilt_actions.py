"""The ``tilt`` action: a bounded tilt around a benchmark allocation (``envs.actions.TiltActions``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from tradeforge.core.errors import SimulationError
from tradeforge.data.bundled import load_bundled_panel
from tradeforge.envs import EnvConfig, TradingEnv
from tradeforge.envs.actions import TiltActions, make_action_interpreter
from tradeforge.testing.envs import simple_features

T1 = np.tanh(1.0)


def interpreter(n: int = 3, **raw: Any) -> TiltActions:
    tilt = raw.pop("tilt", {})
    config = EnvConfig.model_validate({"action": "tilt", "tilt": tilt, **raw})
    out = make_action_interpreter(n, config)
    assert isinstance(out, TiltActions)
    return out


@pytest.fixture(scope="module")
def stocks():
    panel = load_bundled_panel(["AAPL", "IBM", "MSFT", "GOOG"], frequency="1d")
    panel = panel.iloc(slice(panel.n_bars - 300, panel.n_bars))
    return panel, simple_features(panel)


@pytest.mark.parametrize("cash", [True, False])
@pytest.mark.parametrize("n", [3, 4])
def test_zero_action_is_exactly_equal_weight(n, cash):
    it = interpreter(n, weights_cash=cash)
    assert it.space.shape == (n,)
    w = it.to_weights(np.zeros((2, n)), np.array([[0.5] + [0.0] * (n - 1), [0.0] * n]))
    assert np.array_equal(w, np.full((2, n), 1.0 / n))


def test_tilt_is_added_to_the_benchmark_and_squashed():
    it = interpreter(3, tilt={"max_tilt": 0.1})
    w = it.to_weights(np.array([[1.0, -1.0, 0.0]]), np.zeros((1, 3)))
    np.testing.assert_allclose(w[0], [1 / 3 + 0.1, 1 / 3 - 0.1, 1 / 3], rtol=1e-15)
    w = it.to_weights(np.array([[0.5, -0.5, 0.0]]), np.zeros((1, 3)))
    tilt = 0.1 * np.tanh(0.5) / T1
    np.testing.assert_allclose(w[0], [1 / 3 + tilt, 1 / 3 - tilt, 1 / 3], rtol=1e-15)


def test_long_only_projection_with_and_without_cash():
    with_cash = interpreter(3, tilt={"max_tilt": 0.2})
    # 1/3 + 0.2 twice and 1/3 - 0.2: sum 1.2 > 1 -> simplex projection, theta = 0.2 / 3
    w = with_cash.to_weights(np.array([[1.0, 1.0, -1.0]]), np.zeros((1, 3)))
    np.testing.assert_allclose(w[0], [1 / 3 + 0.2 - 0.2 / 3] * 2 + [1 / 3 - 0.2 - 0.2 / 3])
    # a negative net tilt goes to cash with weights_cash
    w = with_cash.to_weights(np.array([[-1.0, -1.0, 0.0]]), np.zeros((1, 3)))
    np.testing.assert_allclose(w[0], [1 / 3 - 0.2, 1 / 3 - 0.2, 1 / 3])
    assert w.sum() < 1.0
    deep = interpreter(3, tilt={"max_tilt": 0.5})
    w = deep.to_weights(np.array([[-1.0, -1.0, -1.0]]), np.zeros((1, 3)))
    assert np.array_equal(w, np.zeros((1, 3)))  # all cash
    # without cash the weights stay on the simplex (sum 1)
    no_cash = interpreter(3, weights_cash=False, tilt={"max_tilt": 0.5})
    w = no_cash.to_weights(np.array([[-1.0, -1.0, -1.0]]), np.zeros((1, 3)))
    np.testing.assert_allclose(w[0], [1 / 3] * 3)
    w = no_cash.to_weights(np.array([[1.0, -1.0, -1.0]]), np.zeros((1, 3)))
    np.testing.assert_allclose(w[0], [1.0, 0.0, 0.0], atol=1e-15)  # (5/6, -1/6, -1/6)


def test_long_short_projects_onto_the_l1_ball_and_limits_apply():
    sim = {"allow_short": True, "max_leverage": 1.5, "max_position": 2.0}
    it = interpreter(2, tilt={"max_tilt": 1.0}, sim=sim)
    w = it.to_weights(np.array([[1.0, -1.0]]), np.zeros((1, 2)))
    # (1.5, -0.5): gross 2 > 1.5 -> |v| onto the simplex of radius 1.5, theta = 0.25
    np.testing.assert_allclose(w[0], [1.25, -0.25])
    w = it.to_weights(np.array([[-0.5, 0.0]]), np.zeros((1, 2)))
    tilt = np.tanh(0.5) / T1
    np.testing.assert_allclose(w[0], [0.5 - tilt, 0.5])  # inside the ball: a short is allowed
    assert w[0, 0] < 0.0
    capped = interpreter(2, tilt={"max_tilt": 0.3}, sim={"max_position": 0.6})
    w = capped.to_weights(np.array([[1.0, -1.0]]), np.zeros((1, 2)))
    np.testing.assert_allclose(w[0], [0.6, 0.2])  # 0.8 clipped to max_position


def test_hold_benchmark_tilts_the_previous_target():
    it = interpreter(3, tilt={"benchmark": "hold", "max_tilt": 0.1})
    previous = np.array([[0.5, 0.3, 0.1], [0.0, 0.0, 0.0]])
    w = it.to_weights(np.zeros((2, 3)), previous)
    assert np.array_equal(w[0], previous[0])  # zero tilt: no change of target
    assert np.array_equal(w[1], np.full(3, 1 / 3))  # a flat start holds the equal weights
    w = it.to_weights(np.array([[1.0, 0.0, -1.0]] * 2), previous)
    np.testing.assert_allclose(w[0], [0.6, 0.3, 0.0])


def test_smoothing_blends_with_the_previous_target():
    it = interpreter(2, tilt={"max_tilt": 0.2, "smoothing": 0.25})
    previous = np.array([[0.9, 0.1], [0.0, 0.0]])
    w = it.to_weights(np.array([[1.0, -1.0]] * 2), previous)
    np.testing.assert_allclose(w[0], 0.75 * np.array([0.7, 0.3]) + 0.25 * previous[0])
    np.testing.assert_allclose(w[1], [0.7, 0.3])  # flat previous: no smoothing


def test_invalid_actions_and_settings_raise():
    it = interpreter(3)
    with pytest.raises(SimulationError, match="outside the action space"):
        it.to_weights(np.array([[1.5, 0.0, 0.0]]), np.zeros((1, 3)))
    with pytest.raises(SimulationError, match="outside the action space"):
        it.to_weights(np.array([[np.nan, 0.0, 0.0]]), np.zeros((1, 3)))
    with pytest.raises(SimulationError, match=r"expected \(3,\) per env"):
        it.to_weights(np.zeros((1, 2)), np.zeros((1, 3)))
    with pytest.raises(ValidationError, match="max_tilt"):
        EnvConfig.model_validate({"action": "tilt", "tilt": {"max_tilt": 0.0}})
    with pytest.raises(ValidationError, match="smoothing"):
        EnvConfig.model_validate({"action": "tilt", "tilt": {"smoothing": 1.0}})
    with pytest.raises(ValidationError, match="vol_target"):
        EnvConfig.model_validate({"action": "tilt", "tilt": {"vol_target": 0.1}})


def test_default_configs_dump_as_before():
    dumped = EnvConfig().model_dump(mode="json")
    assert "tilt" not in dumped
    tilt = EnvConfig(action="tilt", tilt={"max_tilt": 0.05})
    dumped = tilt.model_dump(mode="json")
    assert dumped["tilt"] == {"benchmark": "equal_weight", "max_tilt": 0.05, "smoothing": 0.0}
    assert EnvConfig.model_validate(dumped) == tilt


def test_env_zero_tilt_holds_equal_weight_on_both_paths(stocks):
    panel, feats = stocks
    config = EnvConfig(action="tilt", window=5)
    for kernel in ("numba", "numpy"):
        env = TradingEnv(panel, feats, config, kernel=kernel)
        env.reset(seed=0)
        for _ in range(5):
            *_, info = env.step(np.zeros(4, dtype=np.float32))
            assert np.array_equal(info["weights"], np.full(4, 0.25))


def test_env_random_tilts_equal_on_kernel_and_numpy_paths(stocks):
    panel, feats = stocks
    config = EnvConfig.model_validate(
        {
            "action": "tilt",
            "window": 5,
            "tilt": {"benchmark": "hold", "max_tilt": 0.2, "smoothing": 0.3},
            "sim": {"costs": {"commission_bps": 1.0, "half_spread_bps": 2.0}},
        }
    )
    fast = TradingEnv(panel, feats, config, kernel="numba")
    slow = TradingEnv(panel, feats, config, kernel="numpy")
    fast.reset(seed=1)
    slow.reset(seed=1)
    rng = np.random.default_rng(3)
    for _ in range(40):
        action = rng.uniform(-1.0, 1.0, 4).astype(np.float32)
        a, b = fast.step(action), slow.step(action)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(a[4]["weights"], b[4]["weights"], rtol=1e-15)
    assert fast.history()["weights"].std(axis=0).max() > 0.01  # the tilts moved the weights


def test_paper_policy_maps_tilt_actions_like_the_env():
    from tradeforge.experiment.paper_program import EnvActionPolicy

    class Constant:
        def __init__(self, action: np.ndarray) -> None:
            self.action = action

        def act(self, observation: Any) -> np.ndarray:
            return self.action

    config = EnvConfig(action="tilt", tilt={"benchmark": "hold", "max_tilt": 0.1})
    policy = EnvActionPolicy(Constant(np.array([1.0, -1.0, 0.0, 0.0])), config, 4)
    first = policy.act(None)
    np.testing.assert_allclose(first, [0.35, 0.15, 0.25, 0.25])
    np.testing.assert_allclose(policy.act(None), [0.45, 0.05, 0.25, 0.25])  # tilts the last
    policy.reset()
    np.testing.assert_allclose(policy.act(None), first)


def test_shipped_tilt_config_validates():
    from pathlib import Path

    from tradeforge.experiment.config import load_experiment

    root = Path(__file__).resolve().parents[3]
    cfg = load_experiment(root / "configs" / "portfolio_tilt.yaml")
    assert cfg.env.action == "tilt"
    assert cfg.env.tilt.max_tilt == 0.1
    assert cfg.env.reward.has_excess
    assert cfg.env.reward.log_return == 0.0
    it = make_action_interpreter(len(cfg.data.symbols), cfg.env)
    assert np.array_equal(it.to_weights(np.zeros((1, 4)), np.zeros((1, 4))), np.full((1, 4), 0.25))
