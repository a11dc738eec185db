"""The batched env's step outputs on real bundled data: the compiled path equals the numpy
reference path (to a few ulps), and the info list holds one distinct dict per env, empty for the
rows that did not finish, across episode ends and auto-resets."""

from __future__ import annotations

import numpy as np
import pytest

from tradeforge.data.bundled import load_bundled_panel
from tradeforge.envs import BatchedTradingVecEnv, EnvConfig
from tradeforge.envs.registration import default_features
from tradeforge.sim.kernel import NUMBA_AVAILABLE


@pytest.fixture(scope="module")
def sp500():
    panel = load_bundled_panel(["SP500"])
    return panel, default_features(panel)


def _roll(vec: BatchedTradingVecEnv, steps: int) -> list[tuple]:
    rng = np.random.default_rng(4)
    out = [(np.asarray(vec.reset()).copy(),)]
    for _ in range(steps):
        a = rng.uniform(-1.0, 1.0, size=(vec.num_envs, 1)).astype(np.float32)
        obs, reward, done, infos = vec.step(a)
        out.append((obs.copy(), reward.copy(), done.copy(), infos))
    return out


@pytest.mark.skipif(not NUMBA_AVAILABLE, reason="numba is not installed")
def test_compiled_equals_numpy_on_real_data_with_resets(sp500) -> None:
    panel, features = sp500
    config = EnvConfig(window=30, episode_length=40, random_start=True)
    fast = _roll(BatchedTradingVecEnv(panel, features, config, n_envs=16, seed=3), 90)
    ref = _roll(
        BatchedTradingVecEnv(panel, features, config, n_envs=16, seed=3, kernel="numpy"), 90
    )
    np.testing.assert_array_equal(fast[0][0], ref[0][0])
    finished = 0
    for got, want in zip(fast[1:], ref[1:], strict=True):
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-9)
        np.testing.assert_array_equal(got[2], want[2])
        for i, (a, b) in enumerate(zip(got[3], want[3], strict=True)):
            assert set(a) == set(b)
            if got[2][i]:
                finished += 1
                assert a["episode_length"] == b["episode_length"] == 40
                np.testing.assert_allclose(a["final_equity"], b["final_equity"], rtol=1e-9)
    assert finished == 32  # every row finished twice and was reset


def test_infos_are_distinct_dicts_empty_unless_the_row_finished(sp500) -> None:
    panel, features = sp500
    config = EnvConfig(window=10, episode_length=5, random_start=True)
    vec = BatchedTradingVecEnv(panel, features, config, n_envs=6, seed=0)
    vec.reset()
    previous: list[dict] = []
    for step in range(12):
        _, _, done, infos = vec.step(np.zeros((6, 1), dtype=np.float32))
        assert isinstance(infos, list)
        assert len(infos) == 6
        assert len({id(x) for x in infos + previous}) == len(infos) + len(previous)
        for i, info in enumerate(infos):
            assert type(info) is dict
            assert bool(info) == bool(done[i])
        assert done.all() == (step % 5 == 4)
        infos[0]["mark"] = step  # a consumer's edit stays in its own dict
        previous = infos
    assert previous[0]["mark"] == 11
    assert "mark" not in vec.step(np.zeros((6, 1), dtype=np.float32))[3][0]
