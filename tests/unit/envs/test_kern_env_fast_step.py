"""The batched env's one-call compiled step (``kernel.vec_env_step`` with reused output buffers
and info dicts) against the step as it was (``TradingCore.step_batch`` plus the bookkeeping in
Python, kept here as the reference): the same observations, rewards, dones and info dicts,
bit for bit, on real bundled data across terminations, truncations and auto-resets; arrays a
caller holds never change; SB3 PPO (under ``VecMonitor``) and ``FastPPO`` train to the same
parameters on both."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest

from tradeforge.data.bundled import load_bundled_panel
from tradeforge.envs import BatchedTradingVecEnv, EnvConfig
from tradeforge.envs.registration import default_features
from tradeforge.sim.kernel import NUMBA_AVAILABLE

pytestmark = pytest.mark.skipif(not NUMBA_AVAILABLE, reason="numba is not installed")


class ReferenceVecEnv(BatchedTradingVecEnv):
    """The step of ``BatchedTradingVecEnv`` before the one-call path: ``step_batch``, then the
    returns, lengths, dones, a new list of new info dicts and the auto-reset in Python."""

    def step(self, actions: np.ndarray) -> Any:
        self.step_async(actions)
        return self.step_wait()

    def step_wait(self) -> Any:
        core = self._core
        obs, reward, terminated, truncated = core.step_batch(self._actions)
        self._actions = None
        self.episode_returns += reward
        self.episode_lengths += 1
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if done.any():
            idx = np.flatnonzero(done)
            final = obs[idx]
            rets = self.episode_returns[idx]
            lens = self.episode_lengths[idx]
            equity = core.equity[idx]
            for k, i in enumerate(idx.tolist()):
                infos[i] = {
                    "terminal_observation": final[k],
                    "TimeLimit.truncated": bool(truncated[i]),
                    "final_equity": float(equity[k]),
                    "episode_return": float(rets[k]),
                    "episode_length": int(lens[k]),
                }
            core.reset_rows(done, self._rng)
            self.episode_returns[done] = 0.0
            self.episode_lengths[done] = 0
            obs[idx] = core.observe(done)
        return obs, reward.astype(np.float32), done, infos


@pytest.fixture(scope="module")
def sp500() -> tuple[Any, Any]:
    panel = load_bundled_panel(["SP500"])
    return panel, default_features(panel)


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _same_info(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        mine = got[key]
        assert type(mine) is type(value), key
        if isinstance(value, np.ndarray):
            assert mine.dtype == value.dtype
            assert mine.tobytes() == value.tobytes()
        elif isinstance(value, float):
            assert _bits(mine) == _bits(value), key
        else:
            assert mine == value, key


def _compare(fast: BatchedTradingVecEnv, ref: BatchedTradingVecEnv, actions: list[Any]) -> dict:
    counts = {"terminated": 0, "truncated": 0, "steps": 0}
    first_fast, first_ref = fast.reset(), ref.reset()
    assert first_fast.tobytes() == first_ref.tobytes()
    for a in actions:
        obs, reward, done, infos = fast.step(a)
        r_obs, r_reward, r_done, r_infos = ref.step(a.copy())
        assert obs.dtype == r_obs.dtype == np.float32
        assert obs.tobytes() == r_obs.tobytes()
        assert reward.dtype == r_reward.dtype == np.float32
        assert reward.tobytes() == r_reward.tobytes()
        assert done.dtype == r_done.dtype == np.bool_
        assert done.tobytes() == r_done.tobytes()
        assert type(infos) is list
        assert len(infos) == len(r_infos)
        for got, want in zip(infos, r_infos, strict=True):
            assert type(got) is dict
            _same_info(got, want)
            if want:
                counts["truncated" if want["TimeLimit.truncated"] else "terminated"] += 1
        counts["steps"] += 1
    assert fast.episode_returns.tobytes() == ref.episode_returns.tobytes()
    assert fast.episode_lengths.tobytes() == ref.episode_lengths.tobytes()
    assert fast._core._acct.tobytes() == ref._core._acct.tobytes()
    assert fast._core._assets.tobytes() == ref._core._assets.tobytes()
    return counts


def test_one_call_step_equals_the_reference_bit_for_bit(sp500) -> None:
    panel, features = sp500
    # drawdown stops end some episodes early (terminated), the time limit the others
    config = EnvConfig(window=30, episode_length=60, random_start=True, max_drawdown=0.04)
    fast = BatchedTradingVecEnv(panel, features, config, n_envs=64, seed=7)
    ref = ReferenceVecEnv(panel, features, config, n_envs=64, seed=7)
    rng = np.random.default_rng(11)
    actions = [rng.uniform(-1.0, 1.0, size=(64, 1)).astype(np.float32) for _ in range(3000)]
    counts = _compare(fast, ref, actions)
    assert counts["steps"] == 3000
    assert counts["terminated"] > 100
    assert counts["truncated"] > 1000


def test_discrete_short_and_flat_actions_equal_the_reference(sp500) -> None:
    panel, features = sp500
    costs = {"commission_bps": 2.0, "half_spread_bps": 1.0, "slippage_bps": 0.5}
    config = EnvConfig(
        action="discrete",
        window=10,
        episode_length=25,
        random_start=True,
        sim={"allow_short": True, "costs": costs, "delay_bars": 1},
        reward={"log_return": 0.0, "pnl": 1.0, "dsr": 0.5, "turnover": 0.1},
    )
    fast = BatchedTradingVecEnv(panel, features, config, n_envs=32, seed=3)
    ref = ReferenceVecEnv(panel, features, config, n_envs=32, seed=3)
    rng = np.random.default_rng(5)
    # SB3 hands discrete actions as an int64 (n_envs,) array
    actions = [rng.integers(0, 3, size=32) for _ in range(400)]
    counts = _compare(fast, ref, actions)
    assert counts["truncated"] == 32 * (400 // 25)


def test_portfolio_weights_equal_the_reference() -> None:
    panel = load_bundled_panel(["AAPL", "IBM", "MSFT", "GOOG"], frequency="1d")
    features = default_features(panel)
    config = EnvConfig(action="weights", window=5, episode_length=30, random_start=True)
    fast = BatchedTradingVecEnv(panel, features, config, n_envs=16, seed=1)
    ref = ReferenceVecEnv(panel, features, config, n_envs=16, seed=1)
    size = fast.action_space.shape[0]
    rng = np.random.default_rng(2)
    actions = [rng.uniform(-1.0, 1.0, size=(16, size)).astype(np.float32) for _ in range(200)]
    counts = _compare(fast, ref, actions)
    assert counts["truncated"] == 16 * (200 // 30)


def test_held_outputs_never_change_and_free_ones_are_reused(sp500) -> None:
    panel, features = sp500
    config = EnvConfig(window=30, episode_length=8, random_start=True)
    vec = BatchedTradingVecEnv(panel, features, config, n_envs=5, seed=0)
    vec.reset()
    a = np.full((5, 1), 0.5, dtype=np.float32)
    held = vec.step(a)
    copies = [np.array(x, copy=True) for x in held[:3]]
    view = held[0][2:4]  # a view keeps its base out of reuse too
    view_copy = view.copy()
    for _ in range(20):
        out = vec.step(a)
        assert not np.shares_memory(out[0], held[0])
        assert out[1] is not held[1]
        assert out[2] is not held[2]
    for got, want in zip(held[:3], copies, strict=True):
        assert got.tobytes() == want.tobytes()
    assert view.tobytes() == view_copy.tobytes()
    # nothing else holds them: the returned arrays are the pool's (no new array per step)
    pools = vec._outputs
    assert pools is not None
    seen = set()
    for _ in range(10):
        obs, reward, done, _ = vec.step(a)
        assert any(obs is s for s in pools.obs._slots)
        assert any(reward is s for s in pools.reward32._slots)
        assert any(done is s for s in pools.done._slots)
        seen.add(id(obs))
        del obs, reward, done
    assert len(seen) == 1


def test_info_dicts_reused_only_while_empty(sp500) -> None:
    panel, features = sp500
    config = EnvConfig(window=10, episode_length=4, random_start=True)
    vec = BatchedTradingVecEnv(panel, features, config, n_envs=3, seed=0)
    vec.reset()
    a = np.zeros((3, 1), dtype=np.float32)
    lists = [vec.step(a)[3] for _ in range(3)]
    assert all(not d for infos in lists for d in infos)
    # consecutive steps: distinct dicts; two steps apart: the same empty dicts
    assert not {id(d) for d in lists[0]} & {id(d) for d in lists[1]}
    assert [id(d) for d in lists[0]] == [id(d) for d in lists[2]]
    assert lists[0] is not lists[2]
    lists[2][1]["mark"] = 1  # a caller's key: that set gets new dicts before its next use
    lists[2][0] = {"replaced": True}  # the caller's own list only
    infos = vec.step(a)[3]  # finishes the episodes: every dict is new and filled
    assert all(d["episode_length"] == 4 for d in infos)
    nxt = vec.step(a)[3]
    assert all(not d for d in nxt)
    assert not {id(d) for d in nxt} & {id(d) for d in lists[2]}
    assert lists[2][1] == {"mark": 1}


def test_errors_as_before(sp500) -> None:
    from tradeforge.core.errors import SimulationError

    panel, features = sp500
    config = EnvConfig(action="discrete", window=10, episode_length=20)
    vec = BatchedTradingVecEnv(panel, features, config, n_envs=4, seed=0)
    vec.reset()
    before = vec._core._assets.copy()
    with pytest.raises(SimulationError, match="outside"):
        vec.step(np.array([0, 1, 7, 1]))
    assert vec._core._assets.tobytes() == before.tobytes()
    assert not vec.episode_lengths.any()


def _train(env_cls: type, sp500: tuple, algo: str) -> list[np.ndarray]:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from tradeforge.agents.fastppo import FastPPO

    panel, features = sp500
    config = EnvConfig(window=10, episode_length=20, random_start=True, max_drawdown=0.03)
    env = env_cls(panel, features, config, n_envs=8, seed=5)
    torch.manual_seed(0)
    kwargs: dict[str, Any] = {"n_steps": 32, "batch_size": 64, "n_epochs": 2, "seed": 0}
    if algo == "sb3":
        model = PPO("MlpPolicy", VecMonitor(env), device="cpu", **kwargs)
    else:
        model = FastPPO("MlpPolicy", env, device="cpu", **kwargs)
    model.learn(total_timesteps=3 * 32 * 8)
    params = [p.detach().numpy().copy() for p in model.policy.parameters()]
    if algo == "sb3":
        lengths = [ep["l"] for ep in model.ep_info_buffer]
        assert lengths
        assert all(1 <= x <= 20 for x in lengths)
        assert any(x < 20 for x in lengths)
        assert 20 in lengths
    return params


@pytest.mark.parametrize("algo", ["sb3", "fast"])
def test_training_on_the_one_call_step_equals_the_reference(sp500, algo: str) -> None:
    fast = _train(BatchedTradingVecEnv, sp500, algo)
    ref = _train(ReferenceVecEnv, sp500, algo)
    assert len(fast) == len(ref)
    for got, want in zip(fast, ref, strict=True):
        assert got.tobytes() == want.tobytes()
