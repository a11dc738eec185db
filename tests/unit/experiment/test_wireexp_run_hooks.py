"""The run's opt-in importance hook and the model card of every registration, on a real tiny
walk-forward over bundled S&P 500 bars."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from tradeforge.agents.registry import PolicyRegistry
from tradeforge.experiment import load_experiment, run_experiment
from tradeforge.experiment.config import ReportOptions
from tradeforge.experiment.report_importance import IMPORTANCE_FILE, TABLE_TITLE
from tradeforge.governance.model_card import CARD_TAG

TINY = {
    "name": "tiny",
    "seed": 3,
    "data": {"symbols": ["SP500"], "start": "2009-01-01", "end": "2013-12-31"},
    "features": {"indicators": ["logret_1", "logret_5", "rsi_14", "vol_20"]},
    "env": {"action": "continuous", "window": 5, "episode_length": 100},
    "agent": {"algo": "ppo", "timesteps": 256, "n_envs": 4,
              "hyperparams": {"n_steps": 32, "batch_size": 64, "n_epochs": 2},
              "eval": {"freq": 128, "patience": 0}},
    "walkforward": {"unit": "bars", "train": 400, "val": 100, "test": 100, "n_folds": 2},
    "report": {"baselines": ["cash"], "bootstrap_samples": 200, "importance": True},
}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("wireexp")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    spec = {**TINY, "tracking": {"register": True, "registry_uri": uri, "model_name": "spx"}}
    path = root / "exp.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    began = time.perf_counter()
    result = run_experiment(load_experiment(path), out_dir=root / "run")
    return result, uri, time.perf_counter() - began


def test_importance_is_off_by_default():
    assert ReportOptions().importance is False


def test_the_run_writes_importance_and_the_report_shows_its_table(run):
    result, _, _ = run
    data = json.loads((result.run_dir / IMPORTANCE_FILE).read_text(encoding="utf-8"))
    assert [f["fold"] for f in data["folds"]] == [o.fold.number for o in result.folds]
    metrics = json.loads((result.run_dir / "metrics.json").read_text(encoding="utf-8"))
    table = metrics["extra_tables"][TABLE_TITLE]
    assert {row["feature"] for row in table} >= {"logret_1", "rsi_14", "weight"}
    first = {f["feature"]: f["share"] for f in data["folds"][0]["features"]}
    for row in table:
        assert row[f"fold {data['folds'][0]['fold']}"] == pytest.approx(
            first[row["feature"]], abs=1e-3
        )


def test_a_registered_run_gets_its_model_card(run):
    result, uri, _ = run
    registered = result.summary["registered"]
    info = PolicyRegistry(uri).get("spx", registered["version"])
    assert info.tags[CARD_TAG] == f"model_card/spx-v{info.version}.md"
    assert info.tags["run_dir"] == str(result.run_dir)
    local = PolicyRegistry(uri).client.download_artifacts(info.run_id, info.tags[CARD_TAG])
    text = Path(local).read_text(encoding="utf-8")
    assert "spx" in text
    assert "Walk-forward" in text
