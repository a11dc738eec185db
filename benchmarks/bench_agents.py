"""Benchmark: PPO training throughput on tradeforge envs vs CartPole, and peak training memory.

Throughput. The same PPO (SB3 2.x, MlpPolicy [64, 64], n_steps 256 per env, batch 64, 4 epochs,
CPU, one torch thread, VecNormalize on observations as ``train_agent`` uses) learns on

* ``BatchedTradingVecEnv``: 8 episodes of a 4-equity portfolio (AAPL, IBM, MSFT, GOOG bundled
  daily,
  2000-2013 (GOOG from 2004), default features, window 30, softmax weights) stepped as one numpy batch;
* the same portfolio as 8 ``TradingEnv`` in SB3's ``DummyVecEnv`` (the per-env Python path);
* ``CartPole-v1`` x 8 in ``DummyVecEnv`` (the usual reference point);
* a null VecEnv with the portfolio env's exact spaces that does no work (zero observations,
  fixed-length episodes): PPO's own cost for this observation size. ``1 - batched / null`` is
  the share of training time the trading env itself costs.

Env steps per second = timesteps / wall time of ``model.learn``; repeats are interleaved and the
best of each is kept, so load on the shared machine hits all three alike.

Memory. Peak resident memory (``VmHWM`` of ``/proc/self/status``, else ``ru_maxrss``, of a fresh
subprocess) of
``train_agent`` on the 4-equity portfolio (train/validation split, validation every 2,048 steps,
artifact written), next to a subprocess that only imports torch + SB3 + tradeforge and one that
trains PPO on CartPole for the same steps.

Run: ``python benchmarks/bench_agents.py``; writes ``benchmarks/results/agents.json``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "agents.json"
SYMBOLS = ["AAPL", "IBM", "MSFT", "GOOG"]
N_ENVS = 8
TIMESTEPS = 4096
REPEATS = 3
MEMORY_STEPS = 4096
PPO_KWARGS: dict[str, Any] = {"n_steps": 256, "batch_size": 64, "n_epochs": 4, "gamma": 0.99}


def _market() -> tuple[Any, Any, Any]:
    from tradeforge.data.bundled import load_bundled_panel
    from tradeforge.envs import time_splits
    from tradeforge.features.pipeline import build_features

    panel = load_bundled_panel(SYMBOLS)
    splits = time_splits(panel.index, 0.7, 0.15, 0.15)
    _, features = build_features(
        panel, None, panel.index[splits.train.start], panel.index[splits.train.end - 1]
    )
    return panel, splits, features


def _env_config() -> Any:
    from tradeforge.envs import EnvConfig

    return EnvConfig(action="weights", window=30, episode_length=256, random_start=True)


def _ppo(venv: Any) -> Any:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    norm = VecNormalize(venv, norm_obs=True, norm_reward=False)
    return PPO(
        "MlpPolicy",
        norm,
        seed=0,
        device="cpu",
        verbose=0,
        policy_kwargs={"net_arch": [64, 64]},
        **PPO_KWARGS,
    )


def _steps_per_s(make: Any) -> float:
    model = _ppo(make())
    start = time.perf_counter()
    model.learn(total_timesteps=TIMESTEPS)
    elapsed = time.perf_counter() - start
    return float(model.num_timesteps) / elapsed


def null_vec_env(like: Any) -> Any:
    """A VecEnv with ``like``'s spaces and batch size that computes nothing."""
    from _null_env import null_vec_env as shared

    return shared(like, episode_len=256, copy_obs=False)


def throughput() -> tuple[dict[str, float], dict[str, str]]:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    from tradeforge.envs import BatchedTradingVecEnv, TradingEnv

    panel, splits, features = _market()
    config = _env_config()
    tr = splits.train

    def batched() -> Any:
        return BatchedTradingVecEnv(panel, features, config, N_ENVS, tr.start, tr.end, seed=0)

    def dummy() -> Any:
        return DummyVecEnv([lambda: TradingEnv(panel, features, config, tr.start, tr.end)] * N_ENVS)

    def cartpole() -> Any:
        return DummyVecEnv([lambda: gym.make("CartPole-v1")] * N_ENVS)

    def null() -> Any:
        return null_vec_env(batched())

    makers = {
        "tradeforge BatchedTradingVecEnv": batched,
        "tradeforge TradingEnv x DummyVecEnv": dummy,
        "CartPole-v1 x DummyVecEnv": cartpole,
        "null env, same spaces (PPO alone)": null,
    }
    best = dict.fromkeys(makers, 0.0)
    for _ in range(REPEATS):
        for name, make in makers.items():
            best[name] = max(best[name], _steps_per_s(make))
    info = {
        "panel": f"{', '.join(SYMBOLS)}; {panel.n_bars} daily bars "
        f"{panel.index[0].date()}..{panel.index[-1].date()}; train bars {tr.start}..{tr.end}",
        "obs_dim": str(batched().observation_space.shape),
    }
    return best, info


# -- memory (children) --------------------------------------------------------------------------
def child(kind: str) -> None:
    """Run in a subprocess: do ``kind`` and print the peak RSS in MiB as JSON."""
    import torch

    torch.set_num_threads(1)
    if kind == "portfolio":
        from tradeforge.agents import AgentConfig, train_agent
        from tradeforge.envs import TradingEnv

        panel, splits, features = _market()
        config = _env_config()
        val_config = config.model_copy(update={"episode_length": None, "random_start": False})
        tr, va = splits.train, splits.val
        agent = AgentConfig(
            algo="ppo",
            timesteps=MEMORY_STEPS,
            n_envs=N_ENVS,
            hyperparams=PPO_KWARGS,
            eval={"freq": 2048, "patience": 0},
            tracking={"learning_curve": False},
        )
        with tempfile.TemporaryDirectory() as tmp:
            train_agent(
                agent,
                lambda: TradingEnv(panel, features, config, tr.start, tr.end),
                lambda: TradingEnv(panel, features, val_config, va.start, va.end),
                Path(tmp) / "run",
            )
    elif kind == "cartpole":
        import gymnasium as gym
        from stable_baselines3.common.vec_env import DummyVecEnv

        model = _ppo(DummyVecEnv([lambda: gym.make("CartPole-v1")] * N_ENVS))
        model.learn(total_timesteps=MEMORY_STEPS)
    else:
        import stable_baselines3  # noqa: F401

        import tradeforge.agents.training  # noqa: F401
    peak_kib = _peak_kib()
    sys.stdout.write(json.dumps({"peak_rss_mib": peak_kib / 1024.0}) + "\n")


def _peak_kib() -> float:
    """Peak RSS of this process: VmHWM (reset by exec, unlike ru_maxrss, which a child started
    from a large parent inherits), else ru_maxrss."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def memory() -> dict[str, float]:
    out = {}
    for kind in ("imports only", "cartpole", "portfolio"):
        arg = kind.split()[0]
        proc = subprocess.run(
            [sys.executable, __file__, "--child", arg],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"},
        )
        out[kind] = float(json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mib"])
    return out


def machine() -> dict[str, Any]:
    import gymnasium
    import numpy as np
    import sb3_contrib
    import stable_baselines3
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gymnasium": gymnasium.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "sb3_contrib": sb3_contrib.__version__,
    }


def main() -> None:
    import torch
    from rich.console import Console
    from rich.table import Table

    torch.set_num_threads(1)
    started = time.perf_counter()
    mem = memory()  # first, while this process is still small
    speeds, info = throughput()
    cartpole = speeds["CartPole-v1 x DummyVecEnv"]
    table = Table(title=f"PPO env-steps/s ({TIMESTEPS} steps, {N_ENVS} envs, best of {REPEATS})")
    table.add_column("env")
    table.add_column("steps/s", justify="right")
    table.add_column("vs CartPole", justify="right")
    for name, value in speeds.items():
        table.add_row(name, f"{value:,.0f}", f"{value / cartpole:.2f}x")
    mem_table = Table(title=f"peak RSS of a training subprocess ({MEMORY_STEPS} PPO steps)")
    mem_table.add_column("run")
    mem_table.add_column("MiB", justify="right")
    for name, value in mem.items():
        mem_table.add_row(name, f"{value:,.0f}")
    null = speeds["null env, same spaces (PPO alone)"]
    env_share = 1.0 - speeds["tradeforge BatchedTradingVecEnv"] / null
    console = Console()
    console.print(table)
    console.print(f"share of PPO training time spent in the batched trading env: {env_share:.1%}")
    console.print(mem_table)
    result = {
        "benchmark": "agents",
        "timestamp": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "data": info,
        "ppo": {**PPO_KWARGS, "n_envs": N_ENVS, "timesteps": TIMESTEPS, "net_arch": [64, 64]},
        "ppo_env_steps_per_s": speeds,
        "ratios_vs_cartpole": {k: v / cartpole for k, v in speeds.items()},
        "ratio_batched_vs_dummy": speeds["tradeforge BatchedTradingVecEnv"]
        / speeds["tradeforge TradingEnv x DummyVecEnv"],
        "env_share_of_training_time": env_share,
        "peak_rss_mib": mem,
        "training_overhead_mib_over_imports": mem["portfolio"] - mem["imports only"],
        "wall_s": time.perf_counter() - started,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
