"""``tradeforge run`` end to end on real bundled data: outputs, values, reproducibility."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tradeforge.backtest.metrics import compute_metrics
from tradeforge.backtest.walkforward import make_folds
from tradeforge.cli.app import app
from tradeforge.data.ingest import load_panel
from tradeforge.experiment.config import load_experiment

pytestmark = pytest.mark.usefixtures("tf_home")


def _run(config: Path, out: Path) -> dict:
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_run_writes_a_consistent_report_and_is_reproducible(
    tmp_path: Path, write_experiment, tiny_experiment
) -> None:
    config = write_experiment(tiny_experiment())
    summary = _run(config, tmp_path / "a")
    run_dir = Path(summary["run_dir"])

    # the stitched out-of-sample returns cover exactly the fills after each fold's test decisions
    cfg = load_experiment(config)
    panel = load_panel(cfg.data)
    folds = make_folds(panel.index, cfg.walkforward)
    expected = np.concatenate([panel.index[f.test.start + 1 : f.test.stop + 1] for f in folds])
    oos = pd.read_csv(run_dir / "oos_returns.csv", index_col=0, parse_dates=True)["returns"]
    assert summary["folds"] == len(folds) == 2
    assert list(oos.index) == list(pd.DatetimeIndex(expected))

    # headline metrics are those of the stitched returns
    metrics = json.loads((run_dir / "metrics.json").read_text())
    recomputed = compute_metrics(oos)
    flat = metrics["metrics"]
    for key in ("total_return", "sharpe", "max_drawdown"):
        assert flat[key] == pytest.approx(recomputed[key], rel=1e-9, abs=1e-12)

    # buy-and-hold, traded through the same engine: index move from first fill to last close, net
    # of one entry trade's costs
    bh = summary["baselines"]["buy_and_hold"]["total_return"]
    moves = [panel.close[f.test.stop, 0] / panel.open[f.test.start + 1, 0] for f in folds]
    assert bh == pytest.approx(np.prod(moves) - 1.0, abs=2e-3)
    assert summary["baselines"]["cash"]["total_return"] == pytest.approx(0.0, abs=1e-12)

    assert summary["strategy"] == "ensemble"
    assert metrics["notes"][0].startswith("Verdict: out-of-sample Sharpe")
    html = (run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4
    assert "buy_and_hold" in html
    assert "p_value" in html.replace("p-value", "p_value")
    assert len(summary["artifacts"]) == 2
    assert "Seeds" in html or "seeds" in html  # the ensemble members' validation table
    assert all(Path(a).is_dir() for a in summary["artifacts"])

    # the saved fold-0 ensemble replays on its own (data, features, env and costs from the artifact)
    replay = CliRunner().invoke(
        app,
        ["backtest", "--policy", summary["artifacts"][0], "--out", str(tmp_path / "r"), "--json"],
    )
    assert replay.exit_code == 0, replay.output
    replayed = pd.read_csv(tmp_path / "r" / "bars.csv", index_col=0, parse_dates=True)["returns"]
    fold0 = oos.loc[replayed.index[1] : panel.index[folds[0].test.stop]]
    np.testing.assert_allclose(replayed.iloc[1:].to_numpy(), fold0.to_numpy(), rtol=0, atol=1e-12)

    again = _run(config, tmp_path / "b")
    oos_b = pd.read_csv(Path(again["run_dir"]) / "oos_returns.csv", index_col=0)["returns"]
    np.testing.assert_array_equal(oos.to_numpy(), oos_b.to_numpy())


def test_bad_config_fails_with_one_line_and_exit_2(
    tmp_path: Path, write_experiment, tiny_experiment
) -> None:
    import subprocess
    import sys

    bad = tiny_experiment(env={"sim": {"fill_price": "same_close"}})
    config = write_experiment(bad)
    proc = subprocess.run(
        [sys.executable, "-m", "tradeforge.cli.app", "run", str(config)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "env.sim.fill_price" in proc.stderr
    assert "same_close" in proc.stderr
    assert "Traceback" not in proc.stderr
