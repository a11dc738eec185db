"""The library API of the main job: same numbers as ``tradeforge run``, nested tuning that never
scores on a window after the fold's test, registration of the run's policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from tradeforge.cli.app import app
from tradeforge.experiment import RunResult, load_experiment, run_experiment


def _single(tiny_experiment, **changes):
    raw = tiny_experiment(**changes)
    raw.pop("ensemble")
    return raw


def test_run_experiment_equals_the_cli_run(tmp_path: Path, write_experiment, tiny_experiment):
    config = write_experiment(_single(tiny_experiment))
    result = run_experiment(load_experiment(config), out_dir=tmp_path / "lib")
    assert isinstance(result, RunResult)
    cli = CliRunner().invoke(app, ["run", str(config), "--out", str(tmp_path / "cli"), "--json"])
    assert cli.exit_code == 0, cli.output
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text(encoding="utf-8"))
    assert summary["metrics"]["sharpe"] == result.metrics["sharpe"]
    assert summary["metrics"]["total_return"] == result.metrics["total_return"]
    cli_returns = pd.read_csv(tmp_path / "cli" / "oos_returns.csv", index_col=0)["returns"]
    np.testing.assert_array_equal(cli_returns.to_numpy(), result.returns.to_numpy())
    # the result object carries what the files hold
    assert result.run_dir == tmp_path / "lib"
    assert (result.run_dir / "report.html").is_file()
    assert list(result.weights.columns) == ["SP500"]
    assert len(result.weights) == len(result.returns)
    assert set(result.baselines) == {"buy_and_hold", "momentum", "cash"}
    assert result.summary["configurations_tried"] == 1
    # each fold's artifact carries its drift reference and still verifies
    from tradeforge.agents.policy import load_policy
    from tradeforge.monitor import ReferenceProfile

    for outcome in result.folds:
        profile = ReferenceProfile.load(outcome.artifact)
        assert profile.metadata["fold"] == str(outcome.fold.number)
        assert load_policy(outcome.artifact) is not None


def test_nested_tuning_scores_each_fold_on_its_own_validation_window(
    tmp_path: Path, write_experiment, tiny_experiment
):
    tune = {
        "nested": True,
        "n_trials": 2,
        "n_startup_trials": 0,
        "sampler": "random",
        "pruner": "none",
        "space": {"hyperparams.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3}},
    }
    config = load_experiment(write_experiment(_single(tiny_experiment, tune=tune)))
    result = run_experiment(config, out_dir=tmp_path / "run")
    assert result.summary["configurations_tried"] == 2  # trials x members x seeds
    for outcome in result.folds:
        tuning = outcome.trained["tuning"]
        assert len(tuning["trials"]) == 2
        fold = outcome.fold
        for trial in tuning["trials"]:
            ranges = json.loads((Path(trial["run_dir"]) / "policy" / "data.json").read_text())
            # every trial learned on the fold's training bars and was scored on its validation bars
            assert pd.Timestamp(ranges["val_end"]) < pd.Timestamp(ranges["test_start"])
            assert Path(trial["run_dir"]).is_relative_to(
                tmp_path / "run" / "folds" / f"fold_{fold.number}"
            )
        assert outcome.trained["tuning"]["best_params"]


def test_tracking_register_puts_the_last_folds_policy_in_the_registry(
    tmp_path: Path, write_experiment, tiny_experiment
):
    from tradeforge.agents.registry import PolicyRegistry

    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    raw = _single(
        tiny_experiment, tracking={"register": True, "registry_uri": uri, "model_name": "spx"}
    )
    result = run_experiment(load_experiment(write_experiment(raw)), out_dir=tmp_path / "run")
    registered = result.summary["registered"]
    assert registered["name"] == "spx"
    assert registered["version"] == 1
    info = PolicyRegistry(uri).get("spx", "challenger")
    assert info.version == 1
    assert info.tags["configurations_tried"] == "1"
    assert float(info.tags["oos_sharpe"]) == result.metrics["sharpe"]
