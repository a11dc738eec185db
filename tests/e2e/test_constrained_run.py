"""A portfolio run with risk limits and a behaviour-cloning warm start, from the YAML alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tradeforge.cli.app import app

pytestmark = pytest.mark.usefixtures("tf_home")


def test_limits_hold_on_every_traded_target(
    tmp_path: Path, write_experiment, tiny_experiment
) -> None:
    raw = tiny_experiment(
        data={"symbols": ["AAPL", "IBM", "MSFT"], "start": "2005-01-01", "end": "2009-12-31"},
        env={"action": "continuous", "window": 5, "episode_length": 100, "random_start": True},
        ensemble=None,
        risk={"max_position": 0.3, "max_gross": 0.8, "long_only": True},
        warm_start={"expert": "momentum", "lookback": 20, "samples": 256, "epochs": 3},
        walkforward={"unit": "bars", "train": 500, "val": 100, "test": 150, "n_folds": 1},
    )
    result = CliRunner().invoke(
        app, ["run", str(write_experiment(raw)), "--out", str(tmp_path / "run"), "--json"]
    )
    assert result.exit_code == 0, result.output
    run_dir = Path(json.loads(result.stdout)["run_dir"])
    weights = pd.read_csv(run_dir / "oos_weights.csv", index_col=0)
    assert weights.shape[1] == 3
    assert (weights.to_numpy() <= 0.3 + 1e-9).all()
    assert (weights.to_numpy() >= -1e-12).all()
    assert (weights.abs().sum(axis=1) <= 0.8 + 1e-9).all()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    folds = metrics["folds"]
    assert "limit_breaches" in folds[0]
    assert any("Risk limits" in n for n in metrics["notes"])
    assert any("behaviour cloning" in n for n in metrics["notes"])
    # Gaussian exploration of three positions in [-1, 1] breaks a 0.8 gross limit now and then
    assert folds[0]["limit_breaches"] > 0
    assert np.isfinite(weights.to_numpy()).all()


def test_soft_ensemble_trades_portfolio_weights_with_cash(
    tmp_path: Path, write_experiment, tiny_experiment
) -> None:
    raw = tiny_experiment(
        data={"symbols": ["AAPL", "MSFT"], "start": "2005-01-01", "end": "2009-12-31"},
        env={"action": "weights", "weights_cash": True, "window": 5, "episode_length": 100},
        walkforward={"unit": "bars", "train": 500, "val": 100, "test": 150, "n_folds": 1},
    )
    raw["agent"] = {**raw["agent"], "seeds": 2}
    assert raw["ensemble"]["mode"] == "soft"
    result = CliRunner().invoke(
        app, ["run", str(write_experiment(raw)), "--out", str(tmp_path / "run"), "--json"]
    )
    assert result.exit_code == 0, result.output
    run_dir = Path(json.loads(result.stdout)["run_dir"])
    weights = pd.read_csv(run_dir / "oos_weights.csv", index_col=0)
    assert list(weights.columns) == ["AAPL", "MSFT"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = {row["member"]: row for row in metrics["seeds"]}
    assert set(rows) == {"ppo", "a2c"}
    assert all(row["seeds_sharpe_std"] is not None for row in rows.values())
    assert any("depend on the seed" in n for n in metrics["notes"])
    gross = weights.sum(axis=1).to_numpy()
    assert (weights.to_numpy() >= 0).all()
    assert (gross <= 1.0 + 1e-9).all()
    assert (gross < 1.0 - 1e-6).any()  # softmax with a cash slot never puts everything in stocks
