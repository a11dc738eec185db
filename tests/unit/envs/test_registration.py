"""Every registered id builds from bundled real data and passes both env checkers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from tradeforge.envs import TradingEnv, register_envs
from tradeforge.envs.registration import ENV_IDS

IDS = register_envs()


def test_register_is_idempotent_and_versioned():
    assert register_envs() == IDS
    assert set(IDS) == set(ENV_IDS)
    for env_id in IDS:
        assert env_id.startswith("tradeforge/")
        assert env_id.endswith("-v0")
        assert env_id in gym.registry


@pytest.mark.parametrize("env_id", IDS)
def test_every_registered_id_passes_gymnasium_and_sb3_checkers(env_id):
    env = gym.make(env_id)
    inner = env.unwrapped
    assert isinstance(inner, TradingEnv)
    assert inner.panel.symbols == ENV_IDS[env_id]["symbols"]
    gym_check_env(inner, skip_render_check=True)
    sb3_check_env(gym.make(env_id).unwrapped, warn=True)
    obs, _ = env.reset(seed=0)
    assert np.isfinite(obs).all()
    env.close()


def test_make_accepts_a_range_and_config_overrides(equities_panel):
    env = gym.make(
        "tradeforge/Portfolio-v0",
        panel=equities_panel,
        config={"window": 10, "episode_length": 50},
        start=0,
        end=1000,
    ).unwrapped
    _first, last = env.decision_bars
    assert last == 998
    assert env.config.window == 10
    assert env.config.action == "weights"
    assert env.observation_space.shape == (10 * 3 * len(env.feature_names) + 3 + 2,)


def _fresh_python(code: str) -> dict[str, object]:
    """Run ``code`` in a new interpreter with warnings as errors; it prints one JSON object."""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_importing_the_package_registers_the_ids_and_loads_nothing():
    """The Gymnasium convention: ``import tradeforge.envs`` then ``gymnasium.make`` works."""
    seen = _fresh_python(
        """
        import importlib, json, sys
        import gymnasium as gym
        import tradeforge.data.bundled as bundled

        loads = []
        real = bundled.load_bundled_panel
        bundled.load_bundled_panel = lambda symbols, *a, **k: loads.append(list(symbols)) or real(
            symbols, *a, **k
        )
        before = sorted(i for i in gym.registry if i.startswith("tradeforge/"))
        import tradeforge.envs

        after = sorted(i for i in gym.registry if i.startswith("tradeforge/"))
        heavy = sorted(m for m in ("torch", "stable_baselines3") if m in sys.modules)
        loads_on_import = list(loads)
        env = gym.make("tradeforge/SingleAsset-v0")  # no register_envs() call
        made = type(env.unwrapped).__name__
        env.close()
        # idempotent: explicit registration and a second import warn about nothing (-W error)
        again = tradeforge.envs.register_envs()
        importlib.reload(tradeforge.envs)
        print(json.dumps({"before": before, "after": after, "heavy": heavy, "made": made,
                          "loads_on_import": loads_on_import, "loads": loads, "again": again}))
        """
    )
    assert seen["before"] == []
    assert seen["after"] == sorted(ENV_IDS)
    assert seen["again"] == list(ENV_IDS)
    assert seen["made"] == "TradingEnv"
    assert seen["loads_on_import"] == []  # the factories run only when an env is made
    assert seen["loads"] == [["SP500"]]
    assert seen["heavy"] == []  # cheap: the SB3 VecEnv (and torch) load on first use only


def test_re_registering_by_hand_would_warn_but_register_envs_does_not():
    """What the idempotence above guards against: Gymnasium warns on a second ``register``."""
    env_id = IDS[0]
    entry = gym.spec(env_id).entry_point
    with pytest.warns(UserWarning, match="Overriding environment"):
        gym.register(id=env_id, entry_point=entry, disable_env_checker=True)
    assert register_envs() == IDS  # no warning: pytest runs with filterwarnings = error


def test_the_vec_env_is_still_exported():
    import tradeforge.envs as envs
    from tradeforge.envs.vec_env import BatchedTradingVecEnv

    assert envs.BatchedTradingVecEnv is BatchedTradingVecEnv
    assert "BatchedTradingVecEnv" in envs.__all__
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = envs.Nope
