"""``tradeforge pareto``: a 2-point reward grid, each a 1-fold walk-forward of a tiny config,
the out-of-sample front and the baselines in pareto.json and pareto.png."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tradeforge.cli.app import app
from tradeforge.experiment.pareto import pareto_front


def test_pareto_cli_runs_a_tiny_grid(tmp_path: Path, write_experiment, tiny_experiment):
    raw = tiny_experiment()
    raw.pop("ensemble")
    raw["walkforward"]["n_folds"] = 1
    config = write_experiment(raw)
    out = tmp_path / "pareto"
    cli = CliRunner().invoke(
        app,
        ["pareto", str(config), "--grid", "env.reward.drawdown=0,0.5", "--out", str(out), "--json"],
    )
    assert cli.exit_code == 0, cli.output
    saved = json.loads((out / "pareto.json").read_text(encoding="utf-8"))
    assert saved["grid"] == {"env.reward.drawdown": [0.0, 0.5]}
    points = saved["points"]
    assert [p["weights"] for p in points] == [
        {"env.reward.drawdown": 0.0},
        {"env.reward.drawdown": 0.5},
    ]
    for p in points:
        run = json.loads((Path(p["run_dir"]) / "summary.json").read_text(encoding="utf-8"))
        assert run["folds"] == 1
        assert p["annual_return"] == run["metrics"]["annual_return"]
        assert p["max_drawdown"] == run["metrics"]["max_drawdown"]
        assert p["turnover"] >= 0.0
        cfg = (Path(p["run_dir"]) / "config.yaml").read_text(encoding="utf-8")
        assert f"drawdown: {p['weights']['env.reward.drawdown']}" in cfg
    flags = pareto_front([p["annual_return"] for p in points], [p["max_drawdown"] for p in points])
    assert [p["on_front"] for p in points] == flags
    assert any(flags)
    assert {b["label"] for b in saved["baselines"]} == {"buy_and_hold", "momentum", "cash"}
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    printed = json.loads(cli.stdout)
    assert printed["front"] == saved["front"]
