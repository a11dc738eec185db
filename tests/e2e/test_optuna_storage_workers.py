"""``tradeforge tune --storage URL --workers N``: worker processes share one Optuna study; a worker
killed mid-trial has its trial failed and re-queued, and no parameters are evaluated twice."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from tradeforge.agents.tuning import WORKER, open_storage, plan_params
from tradeforge.cli.app import app
from tradeforge.core.errors import ConfigError
from tradeforge.experiment import load_experiment
from tradeforge.experiment.tuning import start_tune_workers, tune_fold_shared

STUDY = "shared"


def _config(tmp_path: Path, write_experiment, tiny_experiment, n_trials: int = 4) -> Any:
    tune = {
        "n_trials": n_trials,
        "sampler": "random",
        "pruner": "none",
        "study_name": STUDY,
        "heartbeat_s": 0.5,
        "stale_after_s": 3.0,
        "space": {
            "hyperparams.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
            "hyperparams.n_epochs": {"type": "int", "low": 1, "high": 3},
        },
    }
    raw = tiny_experiment(tune=tune)
    raw.pop("ensemble")
    return load_experiment(write_experiment(raw))


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=STUDY, storage=open_storage(storage)).trials


def _running_trial_of(storage: str, proc: Any, timeout: float) -> int:
    pid = proc.pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.exitcode is None:
        for trial in _trials(storage):
            worker = str(trial.system_attrs.get(WORKER, ""))
            if trial.state == TrialState.RUNNING and worker.endswith(f":{pid}"):
                return trial.number
        time.sleep(0.1)
    raise AssertionError(f"worker {pid} started no trial (exit code {proc.exitcode})")


def test_two_workers_one_killed_the_study_resumes_without_duplicates(
    tmp_path: Path, write_experiment, tiny_experiment
):
    config = _config(tmp_path, write_experiment, tiny_experiment)
    storage = str(tmp_path / "study.journal")
    out = tmp_path / "tune"
    procs = start_tune_workers(config, out, 2, storage=storage)
    try:
        victim, survivor = procs
        killed = _running_trial_of(storage, victim, timeout=300)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(30)
        survivor.join(600)  # finishes the queue and retries the dead worker's trial
        assert victim.exitcode == -signal.SIGKILL
        assert survivor.exitcode == 0
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(10)

    trials = _trials(storage)
    planned = [_key(p) for p in plan_params(config.agent, config.tune_config(), 4)]
    by_number = {t.number: t for t in trials}
    dead = by_number[killed]
    assert dead.state == TrialState.FAIL  # the dead worker's running trial was failed
    retry = [t for t in trials if t.user_attrs.get("retry_of") == killed]
    assert len(retry) == 1
    assert retry[0].state == TrialState.COMPLETE
    assert _key(retry[0].params) == _key(dead.system_attrs["fixed_params"])
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4
    assert len(trials) == 5
    assert sorted(_key(t.params) for t in complete) == sorted(planned)  # none evaluated twice
    assert sorted(t.user_attrs["slot"] for t in complete) == [0, 1, 2, 3]

    # resumed with one more trial asked for: only the new parameter set is queued and run
    bigger = config.tune_config(n_trials=5)
    done = tune_fold_shared(config, out, workers=1, storage=storage, n_trials=5)
    trials = _trials(storage)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 5
    assert len(trials) == 6
    expected = [_key(p) for p in plan_params(config.agent, bigger, 5)]
    assert expected[:4] == planned  # the plan grows, it does not change
    assert sorted(_key(t.params) for t in complete) == sorted(expected)
    summary = done.summary
    assert len(summary["trials"]) == 6
    assert summary["best_score"] == max(t.value for t in complete)
    assert summary["storage"] == storage
    assert summary["study_name"] == STUDY
    assert Path(summary["best_artifact"]).is_dir()
    assert (out / "tune.json").is_file()


def test_tune_cli_with_sqlite_storage_and_a_rerun_adds_nothing(
    tmp_path: Path, write_experiment, tiny_experiment
):
    config_path = write_experiment(
        {**_single_raw(tiny_experiment), "tune": {"n_trials": 2, "study_name": STUDY}}
    )
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = ["tune", str(config_path), "--storage", url, "--workers", "1", "--json"]
    first = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    trials = _trials(url)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert len({_key(t.params) for t in trials}) == 2
    assert json.loads(again.stdout)["best_trial"] == json.loads(first.stdout)["best_trial"]


def _single_raw(tiny_experiment) -> dict[str, Any]:
    raw = tiny_experiment()
    raw.pop("ensemble")
    return raw


def test_shared_tuning_needs_a_storage_and_a_worker(
    tmp_path: Path, write_experiment, tiny_experiment
):
    config = load_experiment(write_experiment(_single_raw(tiny_experiment)))
    with pytest.raises(ConfigError, match=r"tune\.storage = None"):
        tune_fold_shared(config, tmp_path, workers=2)
    with pytest.raises(ConfigError, match="workers = 0"):
        tune_fold_shared(config, tmp_path, workers=0, storage=str(tmp_path / "j.log"))
    with pytest.raises(ConfigError, match=r"folder .* does not exist"):
        open_storage(str(tmp_path / "missing" / "j.log"))
    with pytest.raises(ConfigError, match=r"stale_after_s = 1\.0 with heartbeat_s = 1\.0"):
        config.tune_config(heartbeat_s=1.0, stale_after_s=1.0)
