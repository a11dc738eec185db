"""``tradeforge features build``, ``train`` and ``tune`` on the tiny experiment (bundled S&P 500)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tradeforge.agents.policy import load_policy
from tradeforge.backtest.walkforward import make_folds
from tradeforge.cli.app import app
from tradeforge.data.ingest import load_panel
from tradeforge.experiment.config import load_experiment
from tradeforge.features.pipeline import FeaturePipeline

pytestmark = pytest.mark.usefixtures("tf_home")


def _invoke(*args: str) -> dict:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_features_build_writes_named_columns_fitted_on_the_first_training_window(
    tmp_path: Path, write_experiment, tiny_experiment
) -> None:
    config = write_experiment(tiny_experiment())
    summary = _invoke("features", "build", str(config), "--out", str(tmp_path / "f"))
    frame = pd.read_parquet(summary["path"])
    assert list(frame.columns) == [
        "timestamp",
        "symbol",
        "logret_1",
        "logret_5",
        "rsi_14",
        "vol_20",
    ]
    assert summary["rows"] == len(frame)
    assert summary["per_feature"]["rsi_14"]["nan_count"] == 14  # Wilder RSI needs 14 returns

    cfg = load_experiment(config)
    panel = load_panel(cfg.data)
    first = make_folds(panel.index, cfg.walkforward)[0]
    fit_end = panel.index[first.train.stop - 1]
    assert pd.Timestamp(summary["fit_window"][1]) == fit_end
    pipe = FeaturePipeline.load(Path(summary["pipeline"]))
    assert pipe.content_hash == summary["content_hash"]
    expected = pipe.transform(panel).values[:, 0, :]
    np.testing.assert_allclose(frame.iloc[:, 2:].to_numpy(), expected, rtol=0, atol=1e-12)
    assert summary["computed_bars"] == len(frame)  # a cold cache computes every bar once
    again = _invoke("features", "build", str(config), "--out", str(tmp_path / "g"))
    assert again["computed_bars"] == 0  # ...and a warm one none
    pd.testing.assert_frame_equal(pd.read_parquet(again["path"]), frame)
    # the scaler saw only the training window: z-scores there have mean ~0, std ~1
    inside = expected[first.train.start + 20 : first.train.stop]
    assert np.abs(np.nanmean(inside, axis=0)).max() < 0.1


def test_train_writes_a_loadable_policy_and_overrides_apply(
    tmp_path: Path, write_experiment, tiny_experiment
) -> None:
    config = write_experiment(tiny_experiment(ensemble=None))
    summary = _invoke(
        "train", str(config), "--algo", "a2c", "--timesteps", "128", "--seed", "4",
        "--out", str(tmp_path / "t"),
    )  # fmt: skip
    assert summary["best_seed"] == 4 + 0  # experiment seed + agent seed
    policy = load_policy(Path(summary["artifact"]))
    assert policy.algo == "a2c"
    assert set(summary["validation"]) >= {"sharpe"}


def test_tune_scores_trials_on_validation_and_keeps_the_best(
    tmp_path: Path, write_experiment, tiny_experiment
) -> None:
    raw = tiny_experiment(
        ensemble=None,
        tune={"n_trials": 2, "seed": 1, "space": {"hyperparams.learning_rate": {
            "type": "float", "low": 1e-4, "high": 1e-3, "log": True}}},
    )  # fmt: skip
    summary = _invoke("tune", str(write_experiment(raw)), "--out", str(tmp_path / "tune"))
    scores = [t["score"] for t in summary["trials"] if t["score"] is not None]
    assert len(summary["trials"]) == 2
    assert summary["best_score"] == max(scores)
    assert Path(summary["best_artifact"]).is_dir()
    assert 1e-4 <= summary["best_params"]["hyperparams.learning_rate"] <= 1e-3
