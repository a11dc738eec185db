"""A tiny but complete experiment on bundled S&P 500 bars, small enough for CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml


def tiny_experiment(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "tiny",
        "seed": 3,
        "data": {"symbols": ["SP500"], "start": "2009-01-01", "end": "2013-12-31"},
        "features": {"indicators": ["logret_1", "logret_5", "rsi_14", "vol_20"]},
        "env": {
            "action": "continuous",
            "window": 5,
            "random_start": True,
            "episode_length": 100,
            "sim": {"costs": {"commission_bps": 1.0, "half_spread_bps": 1.0}},
        },
        "agent": {
            "algo": "ppo",
            "timesteps": 256,
            "n_envs": 4,
            "hyperparams": {"n_steps": 32, "batch_size": 64, "n_epochs": 2},
            "eval": {"freq": 128, "patience": 0},
        },
        "ensemble": {"members": ["ppo", "a2c"], "mode": "soft", "window": 20},
        "walkforward": {"unit": "bars", "train": 400, "val": 100, "test": 100, "n_folds": 2},
        "report": {"baselines": ["buy_and_hold", "momentum", "cash"], "bootstrap_samples": 200},
    }
    raw.update(changes)
    return raw


@pytest.fixture
def write_experiment(tmp_path: Path):
    def write(raw: dict[str, Any], name: str = "exp.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        return path

    return write


@pytest.fixture(name="tiny_experiment")
def _tiny_experiment_fixture():
    return tiny_experiment
