"""The experiment YAML's top-level ``risk:`` section carries the risk engine's keys: a tiny real
walk-forward on the bundled S&P 500 bars with the engine keys under ``risk:`` trains, tests and
counts exactly as the same keys under ``env.risk``; the policy artifact records them in its env
config, so a replay of it runs under the same engine."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tradeforge.experiment import load_experiment, run_experiment
from tradeforge.experiment.replay import replay_policy
from tradeforge.risk import RiskConfig

RISK = {"stop_loss": 0.01, "trailing_stop": 0.02, "max_order_notional": 400000}
TINY: dict[str, Any] = {
    "name": "riskyaml",
    "seed": 5,
    "data": {"symbols": ["SP500"], "start": "2009-01-01", "end": "2012-12-31"},
    "features": {"indicators": ["logret_1", "logret_5", "rsi_14"]},
    "env": {"action": "continuous", "window": 5, "episode_length": 60},
    "agent": {"algo": "ppo", "timesteps": 64, "n_envs": 2,
              "hyperparams": {"n_steps": 32, "batch_size": 64, "n_epochs": 1},
              "policy_kwargs": {"net_arch": [16]}, "eval": {"freq": 64, "patience": 0},
              "tracking": {"learning_curve": False}},
    "walkforward": {"unit": "bars", "train": 300, "val": 60, "test": 60, "n_folds": 1},
    "report": {"baselines": ["cash"], "bootstrap_samples": 100, "html": False},
}  # fmt: skip


def _run(root: Path, raw: dict[str, Any]) -> Any:
    path = root / "exp.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = load_experiment(path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRADEFORGE_HOME", str(root / "home"))
        return run_experiment(config, out_dir=root / "run")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    under_env = copy.deepcopy(TINY)
    under_env["env"]["risk"] = RISK
    top_level = TINY | {"risk": RISK}
    return (
        _run(tmp_path_factory.mktemp("riskyaml_env"), under_env),
        _run(tmp_path_factory.mktemp("riskyaml_top"), top_level),
    )


def _summary(result: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((result.run_dir / "summary.json").read_text("utf-8"))
    return loaded


def test_top_level_risk_counts_as_env_risk(runs: tuple[Any, Any]) -> None:
    under_env, top_level = runs
    expected, got = _summary(under_env)["risk"], _summary(top_level)["risk"]
    assert got == expected
    (fold,) = got["folds"]
    assert fold["orders"] > 0
    assert sum(fold["stops"].values()) > 0  # a 1 % stop binds on daily S&P 500 bars
    assert sum(fold["state_bars"].values()) == 60  # one per decision bar of the test window
    np.testing.assert_array_equal(top_level.returns.to_numpy(), under_env.returns.to_numpy())


def test_the_artifact_records_the_engine_and_its_replay_applies_it(
    runs: tuple[Any, Any],
) -> None:
    _, top_level = runs
    (outcome,) = top_level.folds
    config = json.loads((Path(outcome.artifact) / "config.json").read_text("utf-8"))
    assert RiskConfig.model_validate(config["env"]["risk"]) == RiskConfig(**RISK)
    replay = replay_policy(Path(outcome.artifact))  # the artifact's own env.risk
    assert replay.result.risk is not None
    assert replay.env.risk == RiskConfig(**RISK)
    # a replay under other limits applies those instead: no stops without stop keys
    looser = replay_policy(Path(outcome.artifact), risk=RiskConfig(max_order_notional=400000))
    assert looser.env.risk == RiskConfig(max_order_notional=400000)
    assert looser.result.risk is not None
    assert sum(looser.result.risk.stops.values()) == 0
    assert sum(replay.result.risk.stops.values()) > 0


def test_replay_of_the_test_window_counts_as_the_run(runs: tuple[Any, Any]) -> None:
    _, top_level = runs
    (outcome,) = top_level.folds
    (fold,) = _summary(top_level)["risk"]["folds"]
    replay = replay_policy(Path(outcome.artifact))
    assert replay.result.risk is not None
    assert replay.result.risk.to_json() == fold
