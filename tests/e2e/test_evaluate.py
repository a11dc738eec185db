"""``tradeforge evaluate``: a tiny suite on real bundled data (weekly S&P 500 and daily GOOGL, one
seed, tiny step counts), its report, and resuming it without training again (one test, so the
suite trains once)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from tradeforge.cli import evaluate_cmd
from tradeforge.core.errors import ConfigError
from tradeforge.experiment import suite as suite_module
from tradeforge.experiment.suite import RECORD_FILE, load_suite, run_suite


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Keep ``evaluate`` a subcommand, as in the real app."""

    evaluate_cmd.register(app)
    return app


def _experiment() -> dict[str, Any]:
    return {
        "name": "tiny",
        "seed": 3,
        "data": {"symbols": ["SP500"], "start": "2009-01-01", "end": "2013-12-31"},
        "features": {"indicators": ["logret_1", "logret_5", "rsi_14", "vol_20"]},
        "env": {  # target weights over (asset, cash): a tiny agent never sits in cash all fold
            "action": "weights",
            "weights_transform": "softmax",
            "weights_cash": True,
            "window": 5,
            "random_start": True,
            "episode_length": 50,
            "sim": {"costs": {"commission_bps": 1.0, "half_spread_bps": 1.0}},
        },
        "agent": {
            "algo": "ppo",
            "timesteps": 128,
            "n_envs": 2,
            "hyperparams": {"n_steps": 32, "batch_size": 64, "n_epochs": 1},
            "eval": {"freq": 64, "patience": 0},
        },
        "walkforward": {"unit": "bars", "train": 300, "val": 60, "test": 60, "n_folds": 2},
        "report": {"baselines": ["buy_and_hold", "momentum", "cash"], "bootstrap_samples": 200},
    }


def _suite() -> dict[str, Any]:
    return {
        "name": "tiny-suite",
        "seeds": 1,
        "min_test_years": 2.5,
        "bootstrap_samples": 300,
        "markets": {
            "sp500_weekly": {"symbols": ["SP500"], "frequency": "1w", "start": "2000-01-01"},
            "googl": {"symbols": ["GOOGL"]},
        },
        "experiments": [{"config": "exp.yaml"}],
    }


@pytest.fixture
def suite_file(tmp_path: Path, tf_home: Path) -> Path:
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(_experiment()), encoding="utf-8")
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(_suite()), encoding="utf-8")
    return path


def _sharpe(r: np.ndarray, ppy: int) -> float:
    sd = float(np.std(r, ddof=1))
    return float(np.mean(r) / sd * math.sqrt(ppy)) if sd > 0 else 0.0


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = suite_module.run_experiment

    def counted(config: Any, out_dir: Any = None, progress: Any = None) -> Any:
        calls.append(str(out_dir))
        return real(config, out_dir, progress)

    monkeypatch.setattr(suite_module, "run_experiment", counted)
    return calls


def test_evaluate_writes_one_report_and_resumes_without_training(
    tmp_path: Path, suite_file: Path, monkeypatch: pytest.MonkeyPatch
):
    out = tmp_path / "out"
    calls = _count_calls(monkeypatch)
    cli = CliRunner().invoke(_app(), ["evaluate", str(suite_file), "--out", str(out), "--json"])
    assert cli.exit_code == 0, cli.output
    summary = json.loads(cli.stdout)
    assert len(calls) == 2
    assert summary["runs_trained"] == 2
    assert summary["runs_resumed"] == 0

    # one report: HTML with every section, the JSON, the plots
    html = (out / "report.html").read_text(encoding="utf-8")
    for key in ("kpis", "verdict", "pooled", "markets", "folds", "costs", "runs", "config"):
        assert f'data-section="{key}"' in html
    assert json.loads((out / "suite.json").read_text(encoding="utf-8")) == summary
    for plot in summary["plots"]:
        assert (out / plot).stat().st_size > 1000
    assert {p for p in summary["plots"]} == {
        "suite_costs.png",
        "suite_folds.png",
        "suite_forest.png",
    }

    # per market and fold: 2 markets x 2 folds of 60 bars
    folds = pd.DataFrame(summary["folds"])
    assert sorted(zip(folds["market"], folds["fold"], strict=True)) == [
        ("googl", 0), ("googl", 1), ("sp500_weekly", 0), ("sp500_weekly", 1),
    ]  # fmt: skip
    assert (folds["n_bars"] == 60).all()
    assert summary["test_years"] == pytest.approx(2 * 60 / 52 + 2 * 60 / 252)

    # the fold numbers agree with the runs' own files: agent and baselines re-read from disk
    cost_rows = []  # (test years, agent Sharpe at costs x2) of each run, from its own report
    for market in ("sp500_weekly", "googl"):
        run_dir = out / "runs" / "tiny" / market / "seed_0"
        run_summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        ppy = run_summary["periods_per_year"]
        run_costs = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        x2 = [r for r in run_costs["cost_sensitivity"] if r["cost_multiplier"] == 2.0]
        cost_rows.append((120 / ppy, x2[0]["sharpe"]))
        agent = pd.read_csv(run_dir / "oos_returns.csv", index_col=0)["returns"].to_numpy()
        record = pd.read_parquet(run_dir / RECORD_FILE)
        np.testing.assert_array_equal(record["agent"].to_numpy(), agent)
        mine = folds[folds["market"] == market].sort_values("fold")
        for _, row in mine.iterrows():
            part = record[record["fold"] == row["fold"]]
            bh = _sharpe(part["buy_and_hold"].to_numpy(), ppy)
            ew = _sharpe(part["equal_weight"].to_numpy(), ppy)
            assert row["agent_sharpe"] == pytest.approx(_sharpe(part["agent"].to_numpy(), ppy))
            assert row["sharpe_best_of"] == pytest.approx(max(bh, ew))
            assert row["diff_vs_best_of"] == pytest.approx(row["agent_sharpe"] - max(bh, ew))
        # the market table's baseline Sharpe is the run's own (compute_metrics in run_experiment)
        m = next(r for r in summary["markets"] if r["market"] == market)
        assert m["sharpe_buy_and_hold"] == pytest.approx(
            run_summary["baselines"]["buy_and_hold"]["sharpe"], rel=1e-9
        )

    # pooled: every benchmark, over the 4 folds; best_of is at least as hard as either candidate
    pooled = {r["benchmark"]: r for r in summary["pooled"]}
    assert {"buy_and_hold", "equal_weight", "ma_crossover", "momentum", "best_of"} <= set(pooled)
    assert "cash" not in pooled  # its Sharpe is undefined
    best = pooled["best_of"]
    assert best["windows"] == 4
    assert best["ci_low"] <= best["sharpe_diff"] <= best["ci_high"]
    assert best["sharpe_diff"] <= min(pooled["buy_and_hold"]["sharpe_diff"],
                                      pooled["equal_weight"]["sharpe_diff"]) + 1e-12  # fmt: skip
    weights = folds["n_bars"] / folds["market"].map({"googl": 252, "sp500_weekly": 52})
    expected = float((weights * folds["diff_vs_best_of"]).sum() / weights.sum())
    assert best["sharpe_diff"] == pytest.approx(expected)
    assert best["share_won"] == pytest.approx(float((folds["diff_vs_best_of"] > 0).mean()))
    # cost sensitivity: each run's x0, x1, x2, x5 table averaged over the 2 runs by test years
    costs = pd.DataFrame(summary["costs"])
    assert set(costs["cost_multiplier"]) == {0.0, 1.0, 2.0, 5.0}
    assert (costs["runs"] == 2).all()
    got = costs[(costs["cost_multiplier"] == 2.0) & (costs["delay_bars"] == 0)]["sharpe"]
    years, sharpes = zip(*cost_rows, strict=True)
    assert float(got.iloc[0]) == pytest.approx(float(np.average(sharpes, weights=years)))

    # second invocation: nothing is trained, the numbers are the same
    calls.clear()
    again = CliRunner().invoke(_app(), ["evaluate", str(suite_file), "--out", str(out), "--json"])
    assert again.exit_code == 0, again.output
    resumed = json.loads(again.stdout)
    assert calls == []
    assert resumed["runs_resumed"] == 2
    assert resumed["runs_trained"] == 0
    assert resumed["pooled"] == summary["pooled"]
    assert resumed["folds"] == summary["folds"]

    # the table for people: one row per market, the verdict, where the report is
    text = CliRunner().invoke(_app(), ["evaluate", str(suite_file), "--out", str(out)])
    assert text.exit_code == 0, text.output
    assert calls == []
    for word in (
        "sp500_weekly",
        "googl",
        "tiny: pooled Sharpe difference",
        "2 resumed",
        "report.html",
    ):
        assert word in text.stdout

    # a finished run without its record (stopped in between) is rebuilt without training
    record_path = out / "runs" / "tiny" / "googl" / "seed_0" / RECORD_FILE
    kept = pd.read_parquet(record_path)
    record_path.unlink()
    result = run_suite(load_suite(suite_file), out_dir=out)
    assert calls == []
    pd.testing.assert_frame_equal(pd.read_parquet(record_path), kept, check_freq=False)
    assert json.loads(result.pooled.to_json()) == json.loads(
        pd.DataFrame(summary["pooled"]).to_json()
    )

    # an interrupted run (no summary.json) is trained again, and only that one
    (out / "runs" / "tiny" / "googl" / "seed_0" / "summary.json").unlink()
    result = run_suite(load_suite(suite_file), out_dir=out)
    assert calls == [str(out / "runs" / "tiny" / "googl" / "seed_0")]
    assert {r.market: r.status for r in result.runs} == {
        "googl": "trained",
        "sp500_weekly": "resumed",
    }

    # a changed config never reuses a finished run: an error names the directory
    calls.clear()
    raw = _suite()
    raw["experiments"][0]["overrides"] = {"agent.timesteps": 256}
    suite_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match="holds a finished run of another config") as info:
        run_suite(load_suite(suite_file), out_dir=out)
    assert "sections differing: agent" in str(info.value)
    assert calls == []
