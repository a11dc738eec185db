"""``run_experiment`` with ``env.risk``: the policy trains and trades its test window under the
risk engine, and ``summary.json`` and the HTML report show what the engine did (denials by
reason, stops hit, breaker trips, decision bars in each state). A tiny real walk-forward on the
bundled S&P 500 bars."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from tradeforge.backtest.engine import run_backtest
from tradeforge.backtest.walkforward import fold_test_window
from tradeforge.data.ingest import load_panel
from tradeforge.experiment import load_experiment, run_experiment
from tradeforge.risk import RiskConfig

RISK = {"stop_loss": 0.01, "trailing_stop": 0.02, "max_order_notional": 400000}
TINY = {
    "name": "riskbt",
    "seed": 5,
    "data": {"symbols": ["SP500"], "start": "2009-01-01", "end": "2012-12-31"},
    "features": {"indicators": ["logret_1", "logret_5", "rsi_14"]},
    "env": {"action": "continuous", "window": 5, "episode_length": 60, "risk": RISK},
    "agent": {"algo": "ppo", "timesteps": 64, "n_envs": 2,
              "hyperparams": {"n_steps": 32, "batch_size": 64, "n_epochs": 1},
              "policy_kwargs": {"net_arch": [16]}, "eval": {"freq": 64, "patience": 0},
              "tracking": {"learning_curve": False}},
    "walkforward": {"unit": "bars", "train": 300, "val": 60, "test": 60, "n_folds": 1},
    "report": {"baselines": ["cash"], "bootstrap_samples": 100},
}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("riskbt_run")
    path = root / "exp.yaml"
    path.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    config = load_experiment(path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRADEFORGE_HOME", str(root / "home"))
        return config, run_experiment(config, out_dir=root / "run")


def test_summary_json_counts_what_the_risk_engine_did(run) -> None:  # type: ignore[no-untyped-def]
    config, result = run
    summary = json.loads((result.run_dir / "summary.json").read_text(encoding="utf-8"))
    (fold,) = summary["risk"]["folds"]
    total = summary["risk"]["total"]
    assert fold["orders"] == total["orders"] > 0
    assert fold["approved"] + sum(fold["denied"].values()) == fold["orders"]
    assert sum(fold["state_bars"].values()) == 60  # one per decision bar of the test window
    # the fold's numbers are those of its backtest under the same engine
    (outcome,) = result.folds
    panel = load_panel(config.data)
    again = run_backtest(panel, outcome.weights, config.env.sim,
                         *fold_test_window(outcome.fold, panel.n_bars), risk=RiskConfig(**RISK))  # fmt: skip
    assert again.risk is not None
    assert again.risk.to_json() == fold
    np.testing.assert_allclose(again.returns.to_numpy(), result.returns.to_numpy(), rtol=0, atol=0)
    assert sum(fold["stops"].values()) > 0  # a 1 % stop binds on daily S&P 500 bars


def test_the_html_report_shows_the_risk_table(run) -> None:  # type: ignore[no-untyped-def]
    _, result = run
    html = (result.run_dir / "report.html").read_text(encoding="utf-8")
    assert "Risk engine (test windows)" in html
    assert "orders checked" in html
    assert "bars active" in html
    metrics = json.loads((result.run_dir / "metrics.json").read_text(encoding="utf-8"))
    table = metrics["extra_tables"]["Risk engine (test windows)"]
    rows = {r["risk engine"]: r for r in table}
    summary = json.loads((result.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert rows["orders checked"]["total"] == str(summary["risk"]["total"]["orders"])
