"""Model cards: ``tradeforge retrain`` (a real tiny walk-forward on bundled S&P 500 bars)
registers a version whose card holds the run's values; ``tradeforge models card`` writes it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tradeforge.agents.registry import PolicyRegistry
from tradeforge.backtest.metrics import compute_metrics
from tradeforge.cli.app import app
from tradeforge.governance.model_card import fold_results, model_card
from tradeforge.testing.tiny_runs import write_tiny_experiment


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("card")
    config = write_tiny_experiment(root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    args = ["retrain", str(config), "--out", str(root / "run"), "--registry-uri", uri,
            "--model", "spx", "--actor", "bot", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    return root, uri, result


def test_the_retrain_command_registers_through_the_gate_and_attaches_a_card(retrained):
    root, uri, result = retrained
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["registered"] is True
    assert out["version"] == 1
    assert out["aliases"] == ["challenger", "shadow"]
    assert out["gate"]["passed"] is True
    info = PolicyRegistry(uri).get("spx", 1)
    assert info.tags["model_card"] == "model_card/spx-v1.md"
    assert info.tags["run_dir"] == str(root / "run")


def test_a_refused_retrain_exits_1_and_names_the_failed_gate(retrained, tmp_path):
    root, _, _ = retrained
    gates = tmp_path / "gates.yaml"
    gates.write_text("max_drawdown: 0.000001\n", encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    args = ["retrain", str(root / "exp.yaml"), "--out", str(tmp_path / "run"), "--registry-uri",
            uri, "--model", "spx", "--actor", "bot", "--gates", str(gates)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "retrain refused, nothing registered: offline gate failed: max_drawdown =" in " ".join(
        result.output.split()
    )
    assert PolicyRegistry(uri).names() == []


def test_the_card_holds_the_runs_values(retrained, tmp_path):
    root, uri, _ = retrained
    out = tmp_path / "card.md"
    result = CliRunner().invoke(
        app, ["models", "card", "spx", "1", "--out", str(out), "--registry-uri", uri]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    info = PolicyRegistry(uri).get("spx", 1)
    summary = json.loads((root / "run" / "summary.json").read_text(encoding="utf-8"))
    assert "- symbols: SP500" in text
    assert "- features: logret_1, logret_5, rsi_14, vol_20" in text
    assert f"- data checksum: `{info.tags['data_checksum']}`" in text
    assert f"- pipeline hash: `{info.tags['feature_pipeline_hash']}`" in text
    assert "- algorithm: ppo" in text
    assert "- timesteps: 256; environments: 4" in text
    assert "- registered by: bot" in text
    # walk-forward: one row per fold, Sharpe over that fold's test bars of oos_returns.csv
    returns = pd.read_csv(root / "run" / "oos_returns.csv", index_col=0, parse_dates=True)
    folds = fold_results(root / "run")
    assert [f["fold"] for f in folds] == [0, 1]
    for fold in folds:
        part = returns["returns"].loc[
            pd.Timestamp(fold["test_start"]) : pd.Timestamp(fold["test_end"])
        ]
        sharpe = compute_metrics(part, periods_per_year=252)["sharpe"]
        assert fold["sharpe"] == pytest.approx(sharpe)
        assert f"| {fold['fold']} | {fold['test_start'][:10]} to {fold['test_end'][:10]} | " \
               f"{len(part)} | {sharpe:.3f} |" in text  # fmt: skip
    bh = summary["baselines"]["buy_and_hold"]["sharpe"]
    assert f"| buy_and_hold | {bh:.3f} |" in text
    # the offline gate with its values
    gate = json.loads(info.tags["gate.offline.json"])
    dsr = next(c for c in gate["checks"] if c["name"] == "deflated_sharpe")
    assert "- **offline**: passed" in text
    assert f"| deflated_sharpe | {dsr['value']:.6g} | 0.95 | passed |" in text
    assert "- **paper**: missing" in text
    assert "Gates not passed (shadow: missing, paper: missing)" in text
    # the same card was logged as the version's MLflow artifact at registration
    logged = PolicyRegistry(uri).client.download_artifacts(
        info.run_id, info.tags["model_card"], str(tmp_path)
    )
    assert "# Model card: spx v1" in Path(logged).read_text(encoding="utf-8")


def test_a_card_without_a_run_dir_still_shows_the_registry_values(retrained):
    _, uri, _ = retrained
    info = PolicyRegistry(uri).get("spx", 1)
    text = model_card(info)
    assert f"- data checksum: `{info.tags['data_checksum']}`" in text
    assert "No run directory: per-fold results are not available." in text
    assert f"- configurations tried: {info.tags['configurations_tried']}" in text
