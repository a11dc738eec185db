from __future__ import annotations

import json

import pytest
from agent_helpers import VAL, make_env_factory, tiny_config

from tradeforge.agents import ParamSpace, TuneConfig, tune
from tradeforge.agents.tuning import _PruningHook, apply_params, resolve_space
from tradeforge.core.errors import ConfigError


def test_tune_picks_best_mean_validation_score(tmp_path):
    eval_ranges: list[tuple[int, int]] = []

    def make_eval():
        env = make_env_factory(start=VAL[0], end=VAL[1])()
        eval_ranges.append((env.first, env.last))
        return env

    space = {
        "hyperparams.learning_rate": ParamSpace(type="float", low=1e-4, high=3e-3, log=True),
        "policy_kwargs.net_arch": ParamSpace(type="categorical", choices=[[8], [16]]),
    }
    config = TuneConfig(n_trials=3, n_jobs=2, pruner="none", n_startup_trials=2, space=space)
    result = tune(
        tiny_config(seeds=2, timesteps=32),
        config,
        make_env_factory(episode_length=32),
        make_eval,
        tmp_path,
        progress=True,  # parallel trials: bars are skipped (rich allows one live display)
    )
    complete = [t for t in result.trials if t.state == "COMPLETE"]
    assert len(complete) == 3
    assert result.best_score == max(t.score for t in complete)
    for trial in complete:  # each score is the mean over the trial's seeds on validation
        summary = json.loads((tmp_path / f"trial_{trial.number}" / "summary.json").read_text())
        assert trial.score == pytest.approx(summary["spread"]["sharpe"]["mean"])
        assert len(summary["seeds"]) == 2
    assert set(eval_ranges) == {(VAL[0], VAL[1] - 2)}  # only the validation range was scored
    assert result.best_artifact == tmp_path / f"trial_{result.best_trial}" / "policy"
    assert (result.best_artifact / "model.zip").is_file()
    best = result.best_config
    assert best.hyperparams["learning_rate"] == result.best_params["hyperparams.learning_rate"]
    assert best.policy_kwargs["net_arch"] == result.best_params["policy_kwargs.net_arch"]
    assert json.loads((tmp_path / "tune.json").read_text())["best_trial"] == result.best_trial


def test_space_keys_and_values_are_checked_before_training(tmp_path):
    agent = tiny_config()
    with pytest.raises(ConfigError, match=r"n_stepz.*not a parameter of ppo.*n_steps"):
        resolve_space(
            agent, TuneConfig(space={"hyperparams.n_stepz": {"type": "int", "low": 8, "high": 64}})
        )
    with pytest.raises(ConfigError, match=r"expected 'hyperparams\.<name>'"):
        resolve_space(agent, TuneConfig(space={"gamma": {"type": "float", "low": 0.9, "high": 1}}))
    with pytest.raises(ValueError, match="low <= high"):
        ParamSpace(type="float", low=1.0, high=0.1)
    with pytest.raises(ValueError, match="choices"):
        ParamSpace(type="categorical")
    bad = TuneConfig(space={"hyperparams.n_epochs": {"type": "categorical", "choices": ["x"]}})
    from tradeforge.core.errors import AgentError

    with pytest.raises(AgentError, match="n_epochs"):
        tune(agent, bad, make_env_factory(), make_env_factory(), tmp_path)
    assert not list(tmp_path.glob("trial_*"))
    defaults = resolve_space(tiny_config(algo="sac", hyperparams={}), TuneConfig())
    assert "hyperparams.tau" in defaults
    assert apply_params(agent, {"timesteps": 10}).timesteps == 10


class _FakeTrial:
    def __init__(self, prune_after: int) -> None:
        self.reports: list[tuple[float, int]] = []
        self.prune_after = prune_after

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return len(self.reports) >= self.prune_after


def test_pruning_hook_reports_first_seed_and_stops():
    trial = _FakeTrial(prune_after=3)
    hook = _PruningHook(trial)
    assert hook(0.5, 32)
    assert hook(0.4, 64)
    assert hook(0.1, 96) is False
    assert hook.pruned
    trial = _FakeTrial(prune_after=99)
    hook = _PruningHook(trial)
    assert hook(0.5, 32)
    assert hook(0.6, 64)
    assert hook(0.2, 32)  # second seed: not reported (its steps restart)
    assert trial.reports == [(0.5, 32), (0.6, 64)]
