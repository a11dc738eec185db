"""``walkforward.warm_start``: each fold after the first starts from the previous fold's weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tradeforge.agents.config import AgentConfig
from tradeforge.agents.factory import algo_class, build_model
from tradeforge.backtest.walkforward import make_folds
from tradeforge.cli.app import app
from tradeforge.data.ingest import load_panel
from tradeforge.experiment import compose
from tradeforge.experiment.config import load_experiment

pytestmark = pytest.mark.usefixtures("tf_home")


def test_fold_warm_start_loads_the_previous_folds_members(
    tmp_path: Path, write_experiment, tiny_experiment
) -> None:
    raw = tiny_experiment()
    raw["walkforward"] = {**raw["walkforward"], "warm_start": True}
    config = write_experiment(raw)
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    notes = json.loads((Path(summary["run_dir"]) / "metrics.json").read_text())["notes"]
    assert any("previous fold's trained weights" in n for n in notes)

    previous = Path(summary["artifacts"][0])
    hook = compose.FoldWarmStart(previous)
    assert set(hook.models) == {"ppo", "a2c"}

    cfg = load_experiment(config)
    panel = load_panel(cfg.data)
    fold = make_folds(panel.index, cfg.walkforward)[1]
    inputs = compose.fit_fold_features(cfg, panel, fold)
    make_train, _ = compose.env_factories(cfg, panel, inputs, seed=0)
    venv = make_train()
    for algo in ("ppo", "a2c"):
        agent = AgentConfig.model_validate(
            {**cfg.agent.model_dump(), "algo": algo, "hyperparams": {}}
        )
        model = build_model(agent, venv, seed=123)
        hook(model, venv)
        saved = algo_class(algo).load(hook.models[algo], device="cpu")
        for name, value in saved.policy.state_dict().items():
            np.testing.assert_array_equal(model.policy.state_dict()[name].numpy(), value.numpy())
    assert hook.loaded == ["ppo", "a2c"]
