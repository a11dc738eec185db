"""The tiny real walk-forward experiment the governance, serve and experiment tests share: PPO on
bundled S&P 500 bars, 256 timesteps, two folds of 400/100/100 bars (seconds per fold).

Only tests use this; production code never imports ``tradeforge.testing``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml

if TYPE_CHECKING:
    from tradeforge.experiment.config import ExperimentConfig
    from tradeforge.experiment.run import RunResult

TINY_INDICATORS: tuple[str, ...] = ("logret_1", "logret_5", "rsi_14", "vol_20")


def tiny_experiment(
    baselines: tuple[str, ...] = ("buy_and_hold", "cash"), *, costs: bool = False
) -> dict[str, Any]:
    """The tiny experiment as a YAML-ready dict. ``baselines`` go to the report; ``costs`` adds a
    1 bps commission and half-spread and random episode starts."""
    env: dict[str, Any] = {"action": "continuous", "window": 5, "episode_length": 100}
    if costs:
        env["random_start"] = True
        env["sim"] = {"costs": {"commission_bps": 1.0, "half_spread_bps": 1.0}}
    return {
        "name": "tiny",
        "seed": 3,
        "data": {"symbols": ["SP500"], "start": "2009-01-01", "end": "2013-12-31"},
        "features": {"indicators": list(TINY_INDICATORS)},
        "env": env,
        "agent": {"algo": "ppo", "timesteps": 256, "n_envs": 4,
                  "hyperparams": {"n_steps": 32, "batch_size": 64, "n_epochs": 2},
                  "eval": {"freq": 128, "patience": 0}},
        "walkforward": {"unit": "bars", "train": 400, "val": 100, "test": 100, "n_folds": 2},
        "report": {"baselines": list(baselines), "bootstrap_samples": 200},
    }  # fmt: skip


def write_tiny_experiment(
    root: Path, baselines: tuple[str, ...] = ("buy_and_hold", "cash"), *, costs: bool = False
) -> Path:
    """Write :func:`tiny_experiment` to ``root/exp.yaml`` and return that path."""
    path = root / "exp.yaml"
    path.write_text(yaml.safe_dump(tiny_experiment(baselines, costs=costs)), encoding="utf-8")
    return path


class TinyRun(NamedTuple):
    path: Path
    config: ExperimentConfig
    result: RunResult


def run_tiny_experiment(
    root: Path, baselines: tuple[str, ...] = ("buy_and_hold", "cash"), *, costs: bool = False
) -> TinyRun:
    """Write the tiny experiment under ``root`` and run it once into ``root/run``."""
    from tradeforge.experiment import load_experiment, run_experiment

    path = write_tiny_experiment(root, baselines, costs=costs)
    config = load_experiment(path)
    return TinyRun(path, config, run_experiment(config, out_dir=root / "run"))
