"""``BatchedTradingVecEnv``: SB3 VecEnv contract, equality with ``TradingEnv`` row by row,
auto-reset, determinism and one simulator call per batched step."""

from __future__ import annotations

import numpy as np
import pytest

import tradeforge.envs.engine as engine_module
from tradeforge.core.errors import SimulationError
from tradeforge.envs import BatchedTradingVecEnv, EnvConfig, TradingEnv

# The single envs run the compiled kernel, the batch runs numpy: softmax ``exp`` and the sums over
# assets may round differently (by CPU), so floats agree to a few ulps, float32 observations to
# one float32 ulp (a float64 a few ulps apart can round to neighbouring float32 values).
F64 = {"rtol": 1e-13, "atol": 1e-15}
F32 = {"rtol": 2 * float(np.finfo(np.float32).eps), "atol": 0.0}


@pytest.mark.parametrize("delay", [0, 2])
def test_rows_equal_single_envs_stepped_with_the_same_actions(three_assets, delay):
    panel, feats = three_assets
    config = EnvConfig(
        action="weights",
        window=5,
        episode_length=25,
        reward={"log_return": 1.0, "dsr": 0.5, "turnover": 0.1},
        sim={
            "costs": {"commission_bps": 5.0, "half_spread_bps": 2.0, "impact_coef": 0.1},
            "delay_bars": delay,
        },
    )
    n_envs = 4
    vec = BatchedTradingVecEnv(panel, feats, config, n_envs=n_envs, seed=0)
    singles = [TradingEnv(panel, feats, config) for _ in range(n_envs)]
    obs = vec.reset()
    for i, env in enumerate(singles):
        first, _ = env.reset(seed=0)
        np.testing.assert_array_equal(obs[i], first)
    rng = np.random.default_rng(3)
    for _ in range(24):
        actions = rng.uniform(-1, 1, size=(n_envs, 4)).astype(np.float32)
        obs, rewards, dones, infos = vec.step(actions)
        assert obs.dtype == np.float32
        assert rewards.dtype == np.float32
        assert obs.shape == (n_envs, vec.observation_space.shape[0])
        assert not dones.any()
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(actions[i])
            np.testing.assert_allclose(obs[i], o, **F32)
            np.testing.assert_allclose(rewards[i], np.float32(r), **F32)
            np.testing.assert_allclose(vec.last_weights[i], info["weights"], **F64)
            assert not term
            assert not trunc
    # the 25th step ends every episode (truncation) and resets in the same call
    actions = rng.uniform(-1, 1, size=(n_envs, 4)).astype(np.float32)
    obs, rewards, dones, infos = vec.step(actions)
    assert dones.all()
    for i, env in enumerate(singles):
        o, r, term, trunc, info = env.step(actions[i])
        assert trunc
        assert not term
        np.testing.assert_allclose(infos[i]["terminal_observation"], o, **F32)
        assert infos[i]["TimeLimit.truncated"] is True
        np.testing.assert_allclose(infos[i]["final_equity"], info["equity"], **F64)
        assert infos[i]["episode_length"] == 25
    # after the auto-reset every row observes the first bar again, flat
    first, _ = singles[0].reset(seed=0)
    np.testing.assert_array_equal(obs, np.repeat(first[None, :], n_envs, axis=0))


def test_termination_resets_only_the_finished_rows(one_asset):
    panel, feats = one_asset
    config = EnvConfig(window=5, max_drawdown=0.02, sim={"allow_short": True})
    vec = BatchedTradingVecEnv(panel, feats, config, n_envs=3, seed=0)
    vec.reset()
    first_bar = vec.decision_bars[0]
    # row 0 stays flat (never terminates before the end); rows 1 and 2 hold long and short
    actions = np.array([[0.0], [1.0], [-1.0]], dtype=np.float32)
    for _ in range(vec.decision_bars[1] - first_bar + 1):
        _, _, dones, infos = vec.step(actions)
        if dones.any():
            break
    assert not dones[0]
    hit = int(np.flatnonzero(dones)[0])
    info = infos[hit]
    assert info["TimeLimit.truncated"] is False  # terminated by the drawdown limit
    assert info["episode_length"] < vec.decision_bars[1] - first_bar + 1
    assert info["final_equity"] < 1_000_000.0
    assert infos[0] == {}
    # the finished row restarted at the first decision bar; the others kept their clock
    t = vec._core.t
    assert t[hit] == first_bar
    assert t[0] == first_bar + info["episode_length"]
    assert vec._core.equity[hit] == 1_000_000.0
    assert vec._core.equity[0] == 1_000_000.0


def test_same_seed_same_trajectories_and_seed_method(one_asset):
    panel, feats = one_asset
    config = EnvConfig(window=5, episode_length=10, random_start=True)

    def run(seed: int | None, reseed: int | None = None) -> list[np.ndarray]:
        vec = BatchedTradingVecEnv(panel, feats, config, n_envs=8, seed=seed)
        if reseed is not None:
            vec.seed(reseed)
        out = [vec.reset().copy()]
        rng = np.random.default_rng(0)
        for _ in range(35):
            obs, rew, _, _ = vec.step(rng.uniform(-1, 1, (8, 1)).astype(np.float32))
            out += [obs.copy(), rew.copy()]
        return out

    a, b, c = run(5), run(5), run(6)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    d, e = run(None, reseed=11), run(None, reseed=11)
    for x, y in zip(d, e, strict=True):
        np.testing.assert_array_equal(x, y)


def test_numpy_path_makes_one_simulator_call_per_batched_step(one_asset, monkeypatch):
    panel, feats = one_asset
    calls: list[int] = []
    real = engine_module.sim_step

    def counting(state, targets, market, t, config):
        calls.append(state.n_batch)
        return real(state, targets, market, t, config)

    monkeypatch.setattr(engine_module, "sim_step", counting)
    vec = BatchedTradingVecEnv(panel, feats, EnvConfig(window=5), n_envs=64, seed=0, kernel="numpy")
    vec.reset()
    for _ in range(3):
        vec.step(np.zeros((64, 1), dtype=np.float32))
    assert calls == [64, 64, 64]


def test_dict_observations_and_bad_actions(three_assets):
    panel, feats = three_assets
    vec = BatchedTradingVecEnv(
        panel, feats, EnvConfig(action="discrete", window=4, dict_obs=True), n_envs=2, seed=0
    )
    obs = vec.reset()
    assert obs["features"].shape == (2, 4, 3, 3)
    assert obs["account"].shape == (2, 5)
    with pytest.raises(SimulationError, match="outside the action space"):
        vec.step(np.array([[0, 1, 5], [0, 0, 0]]))
    with pytest.raises(SimulationError, match="n_envs = 0"):
        BatchedTradingVecEnv(panel, feats, EnvConfig(window=4), n_envs=0)


def test_sb3_ppo_learns_a_few_steps_on_the_batched_env(one_asset):
    from stable_baselines3 import PPO

    panel, feats = one_asset
    vec = BatchedTradingVecEnv(
        panel, feats, EnvConfig(window=5, episode_length=20, random_start=True), n_envs=4, seed=0
    )
    model = PPO("MlpPolicy", vec, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    assert model.num_timesteps == 128
    action, _ = model.predict(vec.reset(), deterministic=True)
    assert action.shape == (4, 1)
    assert np.all(np.abs(action) <= 1.0)


# -- the compiled batch kernel ------------------------------------------------------------------
COSTS = {
    "commission_bps": 5.0,
    "half_spread_bps": 2.0,
    "slippage_bps": 1.0,
    "slippage_vol_mult": 0.1,
    "impact_coef": 0.2,
    "borrow_bps_annual": 30.0,
    "cash_rate_annual": 0.01,
}
KERNEL_CASES = {
    "continuous_short_delay": {
        "action": "continuous",
        "reward": {"log_return": 1.0, "dsr": 0.3, "drawdown": 0.1, "turnover": 0.01},
        "sim": {"allow_short": True, "max_leverage": 2.0, "max_position": 2.0, "delay_bars": 2},
    },
    "discrete_trade_lots": {
        "action": "discrete",
        "discrete_mode": "trade",
        "sim": {"allow_short": True, "fractional": False, "lot_size": 5},
    },
    "softmax": {"action": "weights", "reward": {"pnl": 1.0, "downside": 2.0}},
    "l1_ball": {
        "action": "weights",
        "weights_transform": "simplex",
        "sim": {"allow_short": True, "max_leverage": 1.5},
    },
    "max_drawdown": {
        "action": "continuous",
        "sim": {"allow_short": True, "max_leverage": 3.0, "max_position": 3.0},
        "max_drawdown": 0.05,
    },
}


def kernel_config(name, **extra):
    raw = KERNEL_CASES[name]
    sim = {"costs": COSTS, **raw.get("sim", {})}
    return EnvConfig.model_validate({"window": 5, **raw, **extra, "sim": sim})


def sample_actions(vec, rng):
    space = vec.action_space
    n = vec.num_envs
    if hasattr(space, "nvec"):
        return rng.integers(0, space.nvec, size=(n, len(space.nvec)))
    return rng.uniform(-1.0, 1.0, size=(n, *space.shape)).astype(np.float32)


@pytest.mark.parametrize("name", list(KERNEL_CASES))
def test_compiled_batch_rows_equal_compiled_single_envs_bit_for_bit(three_assets, name):
    """Each row of the batch kernel is the single env's compiled step: same bits, every step,
    through the end of the episodes and the auto-reset."""
    panel, feats = three_assets
    config = kernel_config(name, episode_length=30)
    n_envs = 4
    vec = BatchedTradingVecEnv(panel, feats, config, n_envs=n_envs, seed=0)
    assert vec._core.compiled
    singles = [TradingEnv(panel, feats, config) for _ in range(n_envs)]
    obs = vec.reset()
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(obs[i], env.reset(seed=0)[0])
    rng = np.random.default_rng(5)
    ended = 0
    for _ in range(75):
        actions = sample_actions(vec, rng)
        obs, rewards, dones, infos = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(actions[i])
            assert rewards[i] == np.float32(r)
            assert dones[i] == (term or trunc)
            if dones[i]:
                ended += 1
                np.testing.assert_array_equal(infos[i]["terminal_observation"], o)
                assert infos[i]["final_equity"] == info["equity"]
                assert infos[i]["TimeLimit.truncated"] == trunc
                o, _ = env.reset(seed=0)
            else:  # (a finished row's targets are reset with it)
                assert infos[i] == {}
                np.testing.assert_array_equal(vec.last_weights[i], info["weights"])
            np.testing.assert_array_equal(obs[i], o)
    assert ended >= n_envs


@pytest.mark.parametrize("name", list(KERNEL_CASES))
@pytest.mark.parametrize("dict_obs", [False, True])
def test_compiled_batch_equals_the_numpy_batch(three_assets, name, dict_obs):
    """The batch kernel against the vectorized numpy engine (the reference), with random
    episode starts and auto-resets at different steps per row: the same flags, bars, lengths
    and trajectories, floats to a few ulps (numba's and numpy's log/exp and sums)."""
    panel, feats = three_assets
    config = kernel_config(name, episode_length=17, random_start=True, dict_obs=dict_obs)
    fast = BatchedTradingVecEnv(panel, feats, config, n_envs=6, seed=3, kernel="numba")
    slow = BatchedTradingVecEnv(panel, feats, config, n_envs=6, seed=3, kernel="numpy")
    assert fast._core.compiled
    assert not slow._core.compiled

    def close(a, b, f32):
        if isinstance(a, dict):
            for key in a:
                close(a[key], b[key], f32)
        else:
            np.testing.assert_allclose(a, b, **(F32 if f32 else F64))

    close(fast.reset(), slow.reset(), True)
    rng = np.random.default_rng(8)
    resets = 0
    for _ in range(60):
        actions = sample_actions(fast, rng)
        a, b = fast.step(actions), slow.step(actions)
        np.testing.assert_array_equal(a[2], b[2])
        close(a[0], b[0], True)
        close(a[1], b[1], True)
        for x, y in zip(a[3], b[3], strict=True):
            assert x.keys() == y.keys()
            if x:
                resets += 1
                close(x["terminal_observation"], y["terminal_observation"], True)
                close(x["final_equity"], y["final_equity"], False)
                close(x["episode_return"], y["episode_return"], False)
                assert x["episode_length"] == y["episode_length"]
                assert x["TimeLimit.truncated"] == y["TimeLimit.truncated"]
        np.testing.assert_array_equal(fast._core.t, slow._core.t)
        close(fast._core.equity, slow._core.equity, False)
        close(fast.last_weights, slow.last_weights, False)
    assert resets > 6
    assert len(set(fast._core.t.tolist())) > 1  # the rows are at different bars


def test_bad_action_in_one_row_changes_no_row(three_assets):
    panel, feats = three_assets
    vec = BatchedTradingVecEnv(panel, feats, kernel_config("softmax"), n_envs=3, seed=0)
    vec.reset()
    good = np.zeros((3, 4), dtype=np.float32)
    vec.step(good)
    core = vec._core
    before = [a.copy() for a in (core._ints, core._acct, core._assets, core.pending)]
    bad = good.copy()
    bad[2, 1] = 3.0  # outside [-1, 1]
    with pytest.raises(SimulationError, match="outside"):
        vec.step(bad)
    for old, new in zip(before, (core._ints, core._acct, core._assets, core.pending), strict=True):
        np.testing.assert_array_equal(old, new)
    vec.step(good)  # and it goes on
    assert int(core.steps[0]) == 2


def test_replaced_interpreter_maps_batch_actions_in_python(one_asset):
    """A wrapper that swaps ``core.actions`` (as agents.safe.ProjectionWrapper does) is honoured
    by the batch kernel too."""
    panel, feats = one_asset
    config = EnvConfig(window=5, action="continuous")
    vecs = [
        BatchedTradingVecEnv(panel, feats, config, n_envs=3, kernel=k) for k in ("numba", "numpy")
    ]

    class Halving:
        def __init__(self, inner):
            self.inner = inner
            self.space = inner.space

        def to_weights(self, actions, previous):
            return 0.5 * self.inner.to_weights(actions, previous)

    for vec in vecs:
        vec._core.actions = Halving(vec._core.actions)
        vec.reset()
    actions = np.array([[0.8], [-0.2], [1.0]], dtype=np.float32)
    out = [vec.step(actions) for vec in vecs]
    expected = 0.5 * np.maximum(actions.astype(np.float64), 0.0)  # long only: 0 for -0.2
    np.testing.assert_array_equal(vecs[0].last_weights, expected)
    np.testing.assert_array_equal(vecs[0].last_weights, vecs[1].last_weights)
    np.testing.assert_allclose(out[0][0], out[1][0], **F32)
