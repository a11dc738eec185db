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


def test_one_simulator_call_per_batched_step(one_asset, monkeypatch):
    panel, feats = one_asset
    calls: list[int] = []
    real = engine_module.sim_step

    def counting(state, targets, market, t, config):
        calls.append(state.n_batch)
        return real(state, targets, market, t, config)

    monkeypatch.setattr(engine_module, "sim_step", counting)
    vec = BatchedTradingVecEnv(panel, feats, EnvConfig(window=5), n_envs=64, seed=0)
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
