"""Environment throughput: tradeforge envs vs gym-anytrading and Gym-Trading-Env, in one process.

Measured side by side on the same bundled real series (SP500 daily, 1999-2018):

1. single-env steps/s with random long/flat actions and a 30-bar window:
   ``tradeforge.envs.TradingEnv`` (as users get it: the compiled one-env step when numba is
   installed; and, for the same-run speedup, its batched numpy reference path) vs
   ``gym_anytrading`` ``StocksEnv`` vs ``gym_trading_env`` ``TradingEnv`` (features
   precomputed for all; only ``step``/``reset`` are timed, on the classes directly);
2. ``BatchedTradingVecEnv`` env-steps/s: one asset x 1024 / 4096 envs, and 30 assets x 256 envs
   (30 columns built from the real daily returns of SP500, NASDAQ, AAPL, IBM and MSFT, each
   column a copy rolled in time by a different offset: values only feed the throughput test);
3. SB3 PPO training throughput (MlpPolicy, 8 envs, the same PPO settings) on the batched env vs
   on ``CartPole-v1`` (``DummyVecEnv``).

Run: ``python benchmarks/bench_envs.py`` (about 2 minutes). Prints a rich table and writes
``benchmarks/results/envs.json``. Timings are wall-clock and noisy on a shared machine; the
ratios inside one run are what to compare (each number is the best of 3 short runs).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.data.bundled import load_bundled_panel
from tradeforge.data.panel import BarPanel
from tradeforge.envs import BatchedTradingVecEnv, EnvConfig, TradingEnv
from tradeforge.envs.registration import default_features

RESULTS = Path(__file__).parent / "results" / "envs.json"
WINDOW = 30
SECONDS = float(os.environ.get("BENCH_SECONDS", "3.0"))  # time per measurement
REPEATS = 3  # each measurement: best of this many runs of SECONDS / REPEATS
FEE = 1e-4  # 1 bp per trade for every env


def timed_loop(step: Callable[[int], bool], reset: Callable[[], None], seconds: float) -> float:
    """Best steps/s of ``REPEATS`` runs of ``step(i)`` (True when the episode is over -> reset).

    The best of several short runs is the least disturbed by other processes on the machine.
    """
    reset()
    for i in range(200):  # warm-up
        if step(i):
            reset()
    best = 0.0
    count = 0
    for _ in range(REPEATS):
        done = 0
        start = time.perf_counter()
        while True:
            for _ in range(250):
                if step(count):
                    reset()
                count += 1
            done += 250
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / REPEATS:
                best = max(best, done / elapsed)
                break
    return best


def sp500_frame(panel: BarPanel) -> pd.DataFrame:
    frame = pd.DataFrame(
        {name: getattr(panel, name)[:, 0] for name in ("open", "high", "low", "close", "volume")},
        index=panel.index.tz_localize(None),
    )
    return frame


def bench_single(panel: BarPanel, actions: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}

    # tradeforge: discrete long/flat, default feature pipeline (9 features), 1 bp commission
    features = default_features(panel)
    config = EnvConfig(
        action="discrete", window=WINDOW, sim={"costs": {"commission_bps": FEE * 1e4}}
    )
    # the class as users get it (kernel="auto": the compiled one-env step when numba is
    # installed), and the batched numpy reference path it is tested equal to
    for name, kernel in (("tradeforge", "auto"), ("tradeforge (numpy path)", "numpy")):
        env = TradingEnv(panel, features, config, kernel=kernel)

        def tf_step(i: int, env: TradingEnv = env) -> bool:
            _, _, term, trunc, _ = env.step(int(actions[i % actions.size]))
            return term or trunc

        def tf_reset(env: TradingEnv = env) -> None:
            env.reset(seed=0)

        out[name] = timed_loop(tf_step, tf_reset, SECONDS)

    # gym-anytrading StocksEnv (its own fees; window of 30 bars of price and diff)
    from gym_anytrading.envs import StocksEnv

    frame = sp500_frame(panel).rename(columns=str.capitalize)
    any_env = StocksEnv(df=frame, window_size=WINDOW, frame_bound=(WINDOW, len(frame)))

    def any_step(i: int) -> bool:
        _, _, term, trunc, _ = any_env.step(int(actions[i % actions.size]))
        return bool(term or trunc)

    out["gym-anytrading"] = timed_loop(any_step, lambda: any_env.reset(seed=0) and None, SECONDS)

    # Gym-Trading-Env: positions [0, 1], the same 9 features per bar as feature_* columns
    try:
        from gym_trading_env.environments import TradingEnv as GymTradingEnv
    except ImportError:  # pragma: no cover - reported in the results
        out["gym-trading-env"] = float("nan")
        return out
    frame = sp500_frame(panel)
    for k, name in enumerate(features.names):
        frame[f"feature_{name}"] = np.nan_to_num(features.values[:, 0, k])
    gte = GymTradingEnv(df=frame, positions=[0, 1], windows=WINDOW, trading_fees=FEE, verbose=0)

    def gte_step(i: int) -> bool:
        _, _, term, trunc, _ = gte.step(int(actions[i % actions.size]))
        return bool(term or trunc)

    out["gym-trading-env"] = timed_loop(gte_step, lambda: gte.reset(seed=0) and None, SECONDS)
    return out


def thirty_assets() -> tuple[BarPanel, Any]:
    """30 columns from real daily returns (5 bundled series, each rolled by 6 offsets)."""
    from tradeforge.testing.envs import simple_features

    base = load_bundled_panel(["SP500", "NASDAQ", "AAPL", "IBM", "MSFT"])
    rows = np.isfinite(base.close).all(axis=1) & np.isfinite(base.open).all(axis=1)
    close = base.close[rows]
    open_ = base.open[rows]
    volume = np.nan_to_num(base.volume[rows], nan=1e6) + 1.0
    index = base.index[rows]
    log_ret = np.diff(np.log(close), axis=0, prepend=np.log(close[:1]))
    gap = np.log(open_ / np.vstack([close[:1], close[:-1]]))
    cols_c, cols_o, cols_v = [], [], []
    for k in range(6):
        shift = 211 * k
        r = np.roll(log_ret, shift, axis=0)
        c = 100.0 * np.exp(np.cumsum(r, axis=0))
        prev = np.vstack([c[:1], c[:-1]])
        cols_c.append(c)
        cols_o.append(prev * np.exp(np.roll(gap, shift, axis=0)))
        cols_v.append(np.roll(volume, shift, axis=0))
    c, o, v = (np.concatenate(x, axis=1) for x in (cols_c, cols_o, cols_v))
    high = np.maximum(o, c) * 1.002
    low = np.minimum(o, c) * 0.998
    symbols = tuple(f"{s}_{k}" for k in range(6) for s in base.symbols)
    panel = BarPanel(pd.DatetimeIndex(index), symbols, o, high, low, c, v)
    return panel, simple_features(panel)


def bench_batched(
    panel: BarPanel, features: Any, config: EnvConfig, n_envs: int, seconds: float
) -> float:
    vec = BatchedTradingVecEnv(panel, features, config, n_envs=n_envs, seed=0)
    vec.reset()
    rng = np.random.default_rng(0)
    shape = (16, n_envs, *vec.action_space.shape)
    actions = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    for i in range(5):
        vec.step(actions[i])
    best = 0.0
    for _ in range(REPEATS):
        count = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds / REPEATS:
            vec.step(actions[count % 16])
            count += 1
        best = max(best, count * n_envs / (time.perf_counter() - start))
    return best


def bench_ppo(panel: BarPanel, features: Any, total: int) -> dict[str, float]:
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    kwargs: dict[str, Any] = {"n_steps": 256, "batch_size": 256, "n_epochs": 4, "seed": 0}
    out: dict[str, float] = {}
    config = EnvConfig(window=WINDOW, episode_length=252, random_start=True)
    envs: dict[str, Any] = {
        "tradeforge_batched": BatchedTradingVecEnv(panel, features, config, n_envs=8, seed=0),
        "cartpole": DummyVecEnv([lambda: gym.make("CartPole-v1") for _ in range(8)]),
    }
    for name, vec in envs.items():
        model = PPO("MlpPolicy", vec, device="cpu", **kwargs)
        model.learn(total_timesteps=2048)  # warm-up (first rollouts, torch kernels)
        start = time.perf_counter()
        model.learn(total_timesteps=total, reset_num_timesteps=True)
        out[name] = model.num_timesteps / (time.perf_counter() - start)
    return out


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    import gymnasium
    import stable_baselines3

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "numpy": np.__version__,
        "numba": _version("numba"),
        "gymnasium": gymnasium.__version__,
        "stable_baselines3": stable_baselines3.__version__,
    }
    from importlib.metadata import PackageNotFoundError, version

    for package in ("gym-anytrading", "gym-trading-env", "torch"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = "not installed"
    return info


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    warnings.simplefilter("ignore")
    console = Console()
    panel = load_bundled_panel(["SP500"])
    actions = np.random.default_rng(0).integers(0, 2, size=100_000)
    console.print(f"SP500 daily, {panel.n_bars} bars; {SECONDS:.1f} s per single-env run")

    single = bench_single(panel, actions)
    features = default_features(panel)
    one = EnvConfig(window=WINDOW, episode_length=252, random_start=True)
    batched = {
        "1 asset x 1024 envs": bench_batched(panel, features, one, 1024, SECONDS),
        "1 asset x 4096 envs": bench_batched(panel, features, one, 4096, SECONDS),
    }
    panel30, features30 = thirty_assets()
    thirty = EnvConfig(action="weights", window=10, episode_length=252, random_start=True)
    batched["30 assets x 256 envs"] = bench_batched(panel30, features30, thirty, 256, SECONDS)
    ppo = bench_ppo(panel, features, total=4096)

    gte = single.get("gym-trading-env", float("nan"))
    table = Table(title="tradeforge envs: steps per second (higher is better)")
    table.add_column("benchmark")
    table.add_column("steps/s", justify="right")
    table.add_column("vs Gym-Trading-Env", justify="right")
    for name, value in single.items():
        table.add_row(f"single env: {name}", f"{value:,.0f}", f"{value / gte:.2f}x")
    for name, value in batched.items():
        table.add_row(f"batched: {name}", f"{value:,.0f}", f"{value / gte:.1f}x")
    for name, value in ppo.items():
        ratio = value / ppo["cartpole"]
        table.add_row(f"PPO train: {name}", f"{value:,.0f}", f"{ratio:.2f}x CartPole")
    console.print(table)

    result = {
        "benchmark": "envs",
        "timestamp": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "data": "SP500 bundled daily (arch), window 30; 30-asset panel from rolled real returns",
        "single_env_steps_per_s": single,
        "batched_env_steps_per_s": batched,
        "ppo_train_steps_per_s": ppo,
        "ratios": {
            "single_tradeforge_vs_gym_trading_env": single["tradeforge"] / gte,
            "single_tradeforge_vs_gym_anytrading": single["tradeforge"] / single["gym-anytrading"],
            "single_tradeforge_vs_its_numpy_path": single["tradeforge"]
            / single["tradeforge (numpy path)"],
            "batched_1x4096_vs_gym_trading_env": batched["1 asset x 4096 envs"] / gte,
            "ppo_tradeforge_vs_cartpole": ppo["tradeforge_batched"] / ppo["cartpole"],
        },
        "notes": "wall-clock on a shared 2-core machine; compare ratios within this run",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
