"""The compiled one-env step equals the batched numpy path (the reference) step by step.

Every action kind and every reward term, on bundled real data with every cost switched on:
``TradingEnv(kernel="numba")`` and ``TradingEnv(kernel="numpy")`` fed the same seeded actions
must return the same observations, rewards, flags and infos: to a few units in the last place
for one asset with the simple interpreters (numba's ``log``/``exp``/``**`` and numpy's SIMD ones
may round differently, by CPU), to float rounding of the sums over assets (1e-12 relative)
otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tradeforge.core.errors import SimulationError
from tradeforge.data.panel import BarPanel
from tradeforge.envs import EnvConfig, TradingEnv
from tradeforge.envs.engine import TradingCore
from tradeforge.sim.kernel import NUMBA_AVAILABLE
from tradeforge.testing.envs import simple_features
from tradeforge.testing.sim import EVERY_COST

pytestmark = pytest.mark.skipif(not NUMBA_AVAILABLE, reason="numba is not installed")

COSTS = EVERY_COST
ALL_TERMS = {
    "pnl": 0.5,
    "log_return": 1.0,
    "dsr": 0.3,
    "dsr_eta": 0.05,
    "downside": 2.0,
    "drawdown": 0.1,
    "turnover": 0.01,
    "scale": 10.0,
}

CASES: dict[str, dict[str, Any]] = {
    "discrete_position": {"action": "discrete"},
    "discrete_short_lots": {
        "action": "discrete",
        "sim": {"allow_short": True, "fractional": False, "lot_size": 5, "fill_price": "close"},
    },
    "discrete_trade": {
        "action": "discrete",
        "discrete_mode": "trade",
        "sim": {"allow_short": True, "max_leverage": 1.5},
    },
    "continuous_long": {"action": "continuous", "reward": ALL_TERMS},
    "continuous_short": {
        "action": "continuous",
        "sim": {"allow_short": True, "max_position": 0.7, "fill_price": "vwap"},
        "reward": {"dsr": 1.0, "log_return": 0.0},
    },
    "softmax_cash": {"action": "weights", "reward": ALL_TERMS},
    "softmax_no_cash": {"action": "weights", "weights_cash": False, "softmax_scale": 2.0},
    "simplex": {"action": "weights", "weights_transform": "simplex", "reward": {"pnl": 1.0}},
    "l1_ball": {
        "action": "weights",
        "weights_transform": "simplex",
        "sim": {"allow_short": True, "max_leverage": 2.0},
    },
    "dict_obs": {"action": "continuous", "dict_obs": True, "reward": ALL_TERMS},
    "max_drawdown": {
        "action": "continuous",
        "sim": {"allow_short": True, "max_leverage": 3.0, "max_position": 3.0},
        "max_drawdown": 0.15,
    },
    "delayed_levered": {
        "action": "continuous",
        "sim": {"allow_short": True, "max_leverage": 2.0, "max_position": 2.0, "delay_bars": 2},
        "reward": ALL_TERMS,
    },
    "delayed_trade_steps": {
        "action": "discrete",
        "discrete_mode": "trade",
        "sim": {"allow_short": True, "delay_bars": 1},
    },
}

# A few ulps: where numba and numpy evaluate a transcendental function (log, exp, **) the last
# bit may differ by CPU; everything else is the same IEEE operations in the same order.
ULP_RTOL = 4 * np.finfo(np.float64).eps
ULP_ATOL = 1e-15  # reward terms that cancel to ~0 keep their absolute error


def make_config(raw: dict[str, Any]) -> EnvConfig:
    sim = {"costs": COSTS.model_dump(), **raw.get("sim", {})}
    return EnvConfig.model_validate(
        {"window": 5, "episode_length": 150, "random_start": True, **raw, "sim": sim}
    )


def rollout(env: TradingEnv, n_steps: int, seed: int) -> list[tuple[Any, ...]]:
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out: list[tuple[Any, ...]] = [("reset", obs)]
    for _ in range(n_steps):
        obs, reward, term, trunc, info = env.step(env.action_space.sample())
        out.append((obs, reward, term, trunc, info))
        if term or trunc:
            obs, _ = env.reset()
            out.append(("reset", obs))
    return out


def assert_close(a: Any, b: Any, exact: bool) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_close(a[key], b[key], exact)
    elif isinstance(a, (bool, str, int)) and not isinstance(a, float):
        np.testing.assert_array_equal(a, b)
    elif exact:
        np.testing.assert_allclose(a, b, rtol=ULP_RTOL, atol=ULP_ATOL)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-12 if np.ndim(a) == 0 else 1e-6, atol=1e-12)


def compare(panel: BarPanel, raw: dict[str, Any], n_steps: int, exact: bool) -> list[Any]:
    config = make_config(raw)
    feats = simple_features(panel)
    fast = TradingEnv(panel, feats, config, kernel="numba")
    slow = TradingEnv(panel, feats, config, kernel="numpy")
    assert fast._core.compiled
    assert not slow._core.compiled
    a, b = rollout(fast, n_steps, seed=4), rollout(slow, n_steps, seed=4)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert len(x) == len(y)
        for u, v in zip(x, y, strict=True):
            assert_close(u, v, exact)
    for key, value in fast.history().items():
        assert_close(value, slow.history()[key], exact)
    return a


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_env_equals_numpy_env_portfolio(equities_panel: BarPanel, name: str) -> None:
    steps = compare(equities_panel, CASES[name], n_steps=250, exact=False)
    moves = [s for s in steps if len(s) == 5]
    assert sum(s[4]["turnover"] > 0 for s in moves) > 50  # it traded (and paid costs)
    if name == "max_drawdown":
        assert any(s[2] for s in moves)  # the drawdown limit ended an episode


@pytest.mark.parametrize(
    "name", ["discrete_position", "discrete_short_lots", "continuous_long", "delayed_levered"]
)
def test_compiled_env_equals_to_a_few_ulps_for_one_asset(sp500_panel: BarPanel, name: str) -> None:
    steps = compare(sp500_panel, CASES[name], n_steps=300, exact=True)
    moves = [s for s in steps if len(s) == 5]
    assert sum(s[4]["turnover"] > 0 for s in moves) > 30


def test_latency_delays_the_fills_of_both_kernels(one_asset: Any) -> None:
    """With delay_bars = 2 the first two steps trade nothing; the third trades the first
    decision, sized at the close of its release bar."""
    panel, feats = one_asset
    config = make_config({"action": "continuous", "sim": {"delay_bars": 2}})
    for kernel in ("numba", "numpy"):
        env = TradingEnv(panel, feats, config, kernel=kernel)  # type: ignore[arg-type]
        env.reset(seed=0)
        infos = [env.step(np.array([a], dtype=np.float32))[4] for a in (1.0, 0.0, 0.5, 0.5)]
        assert [i["turnover"] > 0 for i in infos] == [False, False, True, True]
        assert infos[2]["position"][0] == pytest.approx(1.0, abs=0.03)  # the first decision
        assert infos[3]["position"][0] == pytest.approx(0.0, abs=1e-12)  # then the second
        assert infos[0]["weights"][0] == 1.0  # info["weights"] is the decision of the step


def test_auto_uses_the_kernel_for_one_row_and_for_batches(one_asset: Any) -> None:
    panel, feats = one_asset
    config = EnvConfig(window=5)
    assert TradingEnv(panel, feats, config)._core.compiled
    assert TradingCore(panel, feats, config, n_batch=4).compiled
    assert not TradingCore(panel, feats, config, n_batch=4, kernel="numpy").compiled


def test_kernel_argument_errors(one_asset: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    panel, feats = one_asset
    config = EnvConfig(window=5)
    assert TradingCore(panel, feats, config, n_batch=2, kernel="numba").compiled
    with pytest.raises(SimulationError, match="needs the compiled kernel"):
        TradingCore(panel, feats, config, n_batch=2, kernel="numpy").step_batch(np.zeros((2, 1)))
    with pytest.raises(SimulationError, match="kernel = 'fast'"):
        TradingEnv(panel, feats, config, kernel="fast")  # type: ignore[arg-type]
    import tradeforge.sim.kernel as sim_kernel

    monkeypatch.setattr(sim_kernel, "NUMBA_AVAILABLE", False)
    assert not TradingEnv(panel, feats, config)._core.compiled  # falls back to numpy
    with pytest.raises(SimulationError, match="numba is not installed"):
        TradingEnv(panel, feats, config, kernel="numba")


@pytest.mark.parametrize(
    ("raw", "bad"),
    [
        ({"action": "discrete"}, 2),
        ({"action": "discrete"}, 0.5),
        ({"action": "continuous"}, np.array([1.5], dtype=np.float32)),
        ({"action": "continuous"}, np.array([np.nan], dtype=np.float32)),
        ({"action": "weights"}, np.array([0.0, 2.0], dtype=np.float32)),
        ({"action": "continuous"}, np.zeros(3, dtype=np.float32)),
    ],
)
def test_bad_actions_raise_the_interpreter_error(one_asset: Any, raw: Any, bad: Any) -> None:
    panel, feats = one_asset
    config = EnvConfig.model_validate({"window": 5, **raw})
    messages = []
    for kernel in ("numba", "numpy"):
        env = TradingEnv(panel, feats, config, kernel=kernel)  # type: ignore[arg-type]
        env.reset(seed=0)
        with pytest.raises(SimulationError) as err:
            env.step(bad)
        messages.append(str(err.value))
        assert env.bar == env.decision_bars[0]  # nothing moved
    assert messages[0] == messages[1]


def test_replaced_interpreter_maps_actions_in_python(one_asset: Any) -> None:
    """A wrapper that swaps ``core.actions`` (as agents.safe.ProjectionWrapper does) is honoured."""
    panel, feats = one_asset
    config = EnvConfig(window=5, action="continuous")

    class Halving:
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.space = inner.space

        def to_weights(self, actions: np.ndarray, previous: np.ndarray) -> np.ndarray:
            return 0.5 * self.inner.to_weights(actions, previous)

    envs = [TradingEnv(panel, feats, config, kernel=k) for k in ("numba", "numpy")]  # type: ignore[arg-type]
    for env in envs:
        env._core.actions = Halving(env._core.actions)
        env.reset(seed=0)
    for a in (0.8, -0.2, 1.0, 0.3):
        action = np.array([a], dtype=np.float32)
        out = [env.step(action) for env in envs]
        expected = 0.5 * max(float(action[0]), 0.0)
        assert out[0][4]["weights"][0] == out[1][4]["weights"][0] == expected
        np.testing.assert_array_equal(out[0][0], out[1][0])
        assert_close(out[0][1], out[1][1], exact=True)  # the log reward: a few ulps


def test_observation_is_a_new_array_each_step(one_asset: Any) -> None:
    panel, feats = one_asset
    env = TradingEnv(panel, feats, EnvConfig(window=5, action="discrete"))
    first, _ = env.reset(seed=0)
    obs = [env.step(1)[0] for _ in range(3)]
    assert obs[0] is not obs[1]
    assert first[-3] == 0.0
    assert obs[0][-3] > 0.9  # the weight held after the first fill
    assert env.observation_space.contains(obs[2])


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_keep_the_packed_state_consistent(one_asset: Any, how: str) -> None:
    import copy
    import pickle

    panel, feats = one_asset
    env = TradingEnv(panel, feats, EnvConfig(window=5, action="discrete"))
    env.reset(seed=0)
    for a in (1, 1, 0):
        env.step(a)
    twin = copy.deepcopy(env) if how == "deepcopy" else pickle.loads(pickle.dumps(env))
    assert twin._core.compiled
    for a in (1, 0, 1, 1):
        out, twin_out = env.step(a), twin.step(a)
        np.testing.assert_array_equal(out[0], twin_out[0])
        assert out[1] == twin_out[1]
        assert out[4]["equity"] == twin_out[4]["equity"] == twin.equity
    assert twin.bar == env.bar == twin._core.t[0]


def test_unknown_interpreter_subclass_maps_in_python(
    one_asset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interpreter the kernel does not know (here a subclass) still decides the targets."""
    import tradeforge.envs.engine as engine
    from tradeforge.envs.actions import ContinuousActions

    class Inverted(ContinuousActions):
        def to_weights(self, actions: np.ndarray, previous: np.ndarray) -> np.ndarray:
            return super().to_weights(-np.asarray(actions, dtype=np.float64), previous)

    monkeypatch.setattr(engine, "make_action_interpreter", lambda n, cfg: Inverted(n, cfg))
    panel, feats = one_asset
    envs = [
        TradingEnv(panel, feats, EnvConfig(window=5), kernel=k)  # type: ignore[arg-type]
        for k in ("numba", "numpy")
    ]
    for env in envs:
        env.reset(seed=0)
    for a in (-0.8, 0.5, -0.25):
        action = np.array([a], dtype=np.float32)
        out = [env.step(action) for env in envs]
        expected = max(-float(action[0]), 0.0)
        assert out[0][4]["weights"][0] == out[1][4]["weights"][0] == expected
        np.testing.assert_array_equal(out[0][0], out[1][0])
        assert_close(out[0][1], out[1][1], exact=True)  # the log reward: a few ulps


def test_non_finite_equity_raises_on_both_paths(one_asset: Any) -> None:
    """Holdings that overflow to inf make equity non-finite: both paths refuse to go on."""
    panel, feats = one_asset
    close = panel.close.copy()
    close[100:] = 1e12  # 1e298 shares (1e300 of cash, long) are then worth inf
    high = np.maximum(panel.high, close)
    volume = np.full_like(panel.volume, np.nan)  # unknown volume: no participation cap
    broken = BarPanel(panel.index, panel.symbols, panel.open, high, panel.low, close, volume)
    config = EnvConfig(window=5, sim={"initial_cash": 1e300})
    for kernel in ("numba", "numpy"):
        env = TradingEnv(broken, feats, config, end=150, kernel=kernel)  # type: ignore[arg-type]
        env.reset(seed=0)
        assert env.bar < 99

        def run(env: TradingEnv = env) -> None:
            with np.errstate(over="ignore"):  # the numpy path's entry-price products overflow
                while env.bar < 120:
                    env.step(np.ones(1, dtype=np.float32))

        with pytest.raises(SimulationError, match="expected a finite value"):
            run()
