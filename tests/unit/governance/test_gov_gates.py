"""Gates: MinTRL, PSR/DSR worked examples, offline, shadow and paper gates on values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeforge.backtest.significance import expected_max_sharpe, psr_from_moments
from tradeforge.governance import (
    GateConfig,
    GateResult,
    GovernanceError,
    PaperEvidence,
    bootstrap_drawdown_quantile,
    max_drawdown,
    min_track_record_length,
    offline_gate,
    offline_gate_from_run,
    paper_gate,
    shadow_gate,
    shadow_gate_from_dir,
)


def test_mintrl_of_annual_sharpe_1_5_on_daily_normal_returns_is_305_bars():
    sr = 1.5 / math.sqrt(252)
    assert sr == pytest.approx(0.0945, abs=1e-4)
    value = min_track_record_length(sr, skew=0.0, kurtosis=3.0, confidence=0.95)
    # by hand: 1 + (1 + SR^2 / 2) z^2 / SR^2 = 1 + 1.0044643 x 2.7055435 / 0.0089286
    assert value == pytest.approx(305.374, abs=1e-3)
    assert abs(value - 305) <= 1
    # PSR(0) on exactly MinTRL observations is the confidence (the definition, inverted)
    assert psr_from_moments(sr, math.ceil(value), 0.0, 3.0) >= 0.95
    assert psr_from_moments(sr, math.floor(value) - 1, 0.0, 3.0) < 0.95
    # fat left tails need a longer record; no edge needs an infinite one
    assert min_track_record_length(sr, skew=-1.0, kurtosis=6.0) > value
    assert min_track_record_length(0.0) == math.inf
    with pytest.raises(GovernanceError, match=r"confidence = 1\.2"):
        min_track_record_length(sr, confidence=1.2)


def test_dsr_matches_the_worked_example_of_bailey_and_lopez_de_prado_2014():
    """The Deflated Sharpe Ratio paper's example: N = 100 trials with annualised Sharpe variance
    1/2, T = 1250 daily observations (250 a year), annual SR 2.5, skew -3, kurtosis 10:
    expected max Sharpe 0.1132 per period and DSR 0.9004."""
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=1e-3)
    dsr = psr_from_moments(2.5 / math.sqrt(250), 1250, -3.0, 10.0, sr0)
    assert dsr == pytest.approx(0.9004, abs=1e-3)


def test_drawdown_and_bootstrap_band():
    assert max_drawdown(np.array([0.1, -0.5, 0.2])) == pytest.approx(0.5)
    assert max_drawdown(np.array([0.01, 0.02])) == 0.0
    rng = np.random.default_rng(1)
    ref = rng.normal(0.0005, 0.01, 500)
    q = bootstrap_drawdown_quantile(ref, 60, n_boot=400, seed=3)
    assert q == bootstrap_drawdown_quantile(ref, 60, n_boot=400, seed=3)  # seeded
    assert 0.03 < q < 0.2
    assert bootstrap_drawdown_quantile(ref, 250, n_boot=400, seed=3) > q  # longer horizon
    # a horizon beyond the record chains resamples instead of failing
    assert bootstrap_drawdown_quantile(ref, 800, n_boot=200, seed=3) > q


def _returns(sharpe_annual: float, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    x = (x - x.mean()) / x.std(ddof=1)
    return 0.01 * x + 0.01 * sharpe_annual / math.sqrt(252)


def test_offline_gate_passes_a_strong_record_and_counts_every_trial():
    strong = _returns(2.5, 1000)
    result = offline_gate(strong, n_trials=1)
    assert result.passed
    assert [c.name for c in result.checks] == [
        "deflated_sharpe",
        "max_drawdown",
        "min_track_record",
    ]
    dsr = result.checks[0].value
    assert dsr is not None
    assert dsr > 0.99
    # the same returns after 5,000 configurations tried: deflated below the bar
    many = offline_gate(strong, n_trials=5000, trial_sharpes=list(np.linspace(-1, 3, 40)))
    assert not many.passed
    assert many.failed() == ["deflated_sharpe"]
    assert many.checks[0].value is not None
    assert many.checks[0].value < 0.95
    with pytest.raises(GovernanceError, match="n_trials = None"):
        offline_gate(strong, n_trials=None)


def test_offline_gate_fails_short_records_and_deep_drawdowns():
    short = offline_gate(_returns(1.5, 120), n_trials=1)
    mintrl = short.checks[2]
    assert not mintrl.passed
    assert mintrl.value == 120
    assert mintrl.threshold is not None
    assert mintrl.threshold > 250
    crash = np.concatenate([_returns(3.0, 800), np.full(10, -0.04)])
    deep = offline_gate(crash, n_trials=1, config=GateConfig(max_drawdown=0.2))
    assert "max_drawdown" in deep.failed()
    losing = offline_gate(_returns(-0.5, 500), n_trials=1)
    trl = losing.checks[2]
    assert (trl.passed, trl.threshold) == (False, None)
    assert "infinite" in trl.detail


def test_gate_result_round_trips_as_json_and_refuses_inconsistency():
    result = offline_gate(_returns(-0.5, 300), n_trials=3)
    text = result.to_json()
    assert json.loads(text)["gate"] == "offline"
    assert "Infinity" not in text
    assert "NaN" not in text
    assert GateResult.from_json(text) == result
    bad = json.loads(text)
    bad["passed"] = True
    with pytest.raises(ValueError, match="passed = True but its checks give False"):
        GateResult.model_validate(bad)


def test_offline_gate_from_run_dir(tmp_path: Path):
    r = _returns(2.5, 800)
    index = pd.bdate_range("2015-01-01", periods=r.size, name="timestamp")
    pd.Series(r, index=index).to_frame("returns").to_csv(tmp_path / "oos_returns.csv")
    summary = {"configurations_tried": 12, "periods_per_year": 252}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    result = offline_gate_from_run(tmp_path)
    direct = offline_gate(r, n_trials=12)
    assert result.checks == direct.checks
    assert result.evidence["n_trials"] == 12.0
    assert result.evidence["run_dir"] == str(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"periods_per_year": 252}))
    with pytest.raises(GovernanceError, match="no configurations_tried"):
        offline_gate_from_run(tmp_path)
    with pytest.raises(GovernanceError, match=r"absent. has no summary\.json"):
        offline_gate_from_run(tmp_path / "absent")


def _walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = np.clip(0.5 + np.cumsum(rng.normal(0, 0.05, (n, 2)), axis=0), 0, 1)
    return w / w.sum(axis=1, keepdims=True)


def test_shadow_gate_checks_agreement_turnover_errors_and_drawdown_band():
    champ = _walk(30, 0)
    close = np.clip(champ + np.random.default_rng(1).normal(0, 0.01, champ.shape), 0, 1)
    reference = _returns(1.0, 500, seed=2)
    rets = _returns(1.0, 30, seed=4)
    cfg = GateConfig(n_boot=300)
    ok = shadow_gate(champ, close, rets, reference, config=cfg)
    assert ok.passed, ok.failed()
    assert ok.checks[0].value == 30
    # opposite positions, far more trading, an error and a crash: each check says so
    flipped = 1.0 - champ[:, ::-1]
    churn = np.where(np.arange(30)[:, None] % 2 == 0, [1.0, 0.0], [0.0, 1.0])
    crash = np.concatenate([rets[:20], np.full(10, -0.05)])
    bad = shadow_gate(champ, churn, crash, reference, errors=2, sessions=12, config=cfg)
    assert bad.failed() == ["sessions", "errors", "action_distance", "turnover_ratio",
                            "drawdown_band"]  # fmt: skip
    band = bad.checks[-1]
    assert band.value == pytest.approx(max_drawdown(crash))
    assert band.threshold is not None
    assert band.value > band.threshold
    assert shadow_gate(champ, flipped, rets, reference, config=cfg).checks[2].value > 0.0
    with pytest.raises(GovernanceError, match="expected the same bars and assets"):
        shadow_gate(champ, champ[:5], rets, reference)


def test_shadow_gate_from_files(tmp_path: Path):
    champ = _walk(25, 0)
    idx = pd.bdate_range("2020-01-01", periods=25, name="timestamp")
    pd.DataFrame(champ, index=idx, columns=["A", "B"]).to_csv(tmp_path / "champion_weights.csv")
    pd.DataFrame(champ, index=idx, columns=["A", "B"]).to_csv(tmp_path / "challenger_weights.csv")
    rets = _returns(1.0, 25, seed=5)
    pd.Series(rets, index=idx).to_frame("returns").to_csv(tmp_path / "challenger_returns.csv")
    (tmp_path / "shadow.json").write_text(json.dumps({"errors": 1}))
    result = shadow_gate_from_dir(tmp_path, _returns(1.0, 400, 6), GateConfig(n_boot=200))
    assert result.failed() == ["errors"]
    assert result.checks[2].value == 0.0  # identical decisions


def _evidence(**changes: object) -> PaperEvidence:
    base: dict[str, object] = {
        "equity": tuple(100_000.0 * (1 + 0.001 * i) for i in range(25)),
        "n_commands": 200, "n_denied": 1, "n_fills": 60,
        "reconciliation_mismatches": 0, "cost_bps": 15.0,
    }  # fmt: skip
    base.update(changes)
    return PaperEvidence(**base)  # type: ignore[arg-type]


def test_paper_gate_thresholds_on_evidence():
    assert paper_gate(_evidence(), modelled_cost_bps=10.0).passed  # 15 <= 2 x 10, 0.5 % < 1 %
    assert paper_gate(_evidence(cost_bps=21.0), modelled_cost_bps=10.0).failed() == ["slippage"]
    assert paper_gate(_evidence(n_denied=2), modelled_cost_bps=10.0).failed() == ["denial_rate"]
    assert paper_gate(_evidence(reconciliation_mismatches=1), modelled_cost_bps=10.0).failed() == [
        "reconciliation_mismatches"
    ]
    crash = _evidence(equity=(100.0, 101.0, *([70.0] * 23)))
    assert paper_gate(crash, modelled_cost_bps=10.0).failed() == ["drawdown_band"]
    few = paper_gate(_evidence(equity=(1.0,) * 5, n_fills=3), modelled_cost_bps=10.0)
    assert few.failed() == ["sessions", "fills"]


@pytest.fixture(scope="module")
def paper_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real paper run (the torch-free program on the simulated venue) with its state dir."""
    from tradeforge.execution.node import NodeConfig
    from tradeforge.experiment.paper import PaperConfig, paper_trade
    from tradeforge.testing.programs import numpy_program

    state = tmp_path_factory.mktemp("paper") / "state"
    config = PaperConfig(node=NodeConfig(strategy_id="swing", reconcile_every=3))
    result = paper_trade(config, numpy_program(), venue="sim", start="2010-01-04",
                         end="2010-02-26", state_dir=state)  # fmt: skip
    (state / "expected.json").write_text(json.dumps(result.summary()))
    return state


def test_paper_gate_reads_a_real_state_dir(paper_state: Path):
    expected = json.loads((paper_state / "expected.json").read_text())
    cost = expected["shortfall"]["cost_bps"]
    fees_bps = expected["shortfall"]["fees"] / expected["shortfall"]["filled_notional"] * 1e4
    result = paper_gate(paper_state, modelled_cost_bps=fees_bps)
    by_name = {c.name: c for c in result.checks}
    assert by_name["sessions"].value == len(expected["equity"])
    assert by_name["fills"].value == expected["fills"]
    assert by_name["slippage"].value == pytest.approx(cost)
    assert by_name["denial_rate"].value == 0.0
    assert by_name["reconciliation_mismatches"].value == 0
    assert result.passed, result.failed()
    # the modelled cost understated by 3x: realised cost is more than twice it
    assert paper_gate(paper_state, modelled_cost_bps=cost / 3).failed() == ["slippage"]
    # a bar halted by reconciliation in the journal is a mismatch
    import sqlite3

    conn = sqlite3.connect(paper_state / "node.sqlite")
    with conn:
        conn.execute(
            "UPDATE node_bars SET denied = ? WHERE bar_time = (SELECT min(bar_time) FROM "
            "node_bars)", (json.dumps({"x-1": "trading halted by reconciliation"}),),
        )  # fmt: skip
    conn.close()
    halted = paper_gate(paper_state, modelled_cost_bps=fees_bps)
    assert halted.failed() == ["reconciliation_mismatches"]
    with pytest.raises(GovernanceError, match=r"has no node\.sqlite"):
        paper_gate(paper_state / "nope", modelled_cost_bps=1.0)
