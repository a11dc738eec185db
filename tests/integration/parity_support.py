"""The backtest-vs-paper replay comparison shared by test_paper_parity.py and
test_riskbt_parity.py: one trained policy replayed by ``tradeforge backtest`` and by
``tradeforge paper --venue local`` over the same window, equal at every bar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_paper_support import trained_artifact

from tradeforge.testing.cli import run_cli as run

PERIOD = ("2011-08-16", "2011-09-13")


def policy_at_home(
    kind: str, factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The session's tiny trained ``kind`` policy, with TRADEFORGE_HOME set to its home."""
    artifact = trained_artifact(kind, factory)
    monkeypatch.setenv("TRADEFORGE_HOME", str(artifact.parents[2] / "home"))
    return artifact


def replay_both(
    capsys: pytest.CaptureFixture[str],
    artifact: Path,
    out: Path,
    *,
    config: Path | None = None,
    risk: bool = False,
    state: Path | None = None,
    label: str = "",
) -> tuple[dict[str, Any], pd.Series, dict[str, Any], pd.Series]:
    """Replay ``artifact`` over PERIOD by backtest (bars written under ``out``) and by paper on
    the local venue; ``config`` is passed to paper (and as ``--risk`` to backtest when ``risk``).
    Asserts both cover the same bars and agree to a relative 1e-9 at every bar; returns the
    backtest's JSON and equity, and the paper run's JSON and equity."""
    start, end = PERIOD
    risk_args = ["--risk", str(config)] if risk and config is not None else []
    code, out_text, err = run(capsys, "backtest", "--policy", str(artifact), "--start", start,
                              "--end", end, *risk_args, "--out", str(out), "--json")  # fmt: skip
    assert code == 0, err
    bt = json.loads(out_text)
    backtest = pd.read_csv(out / "bars.csv", index_col=0, parse_dates=True)["equity"]
    config_args = [str(config)] if config is not None else []
    state_args = ["--state", str(state)] if state is not None else []
    code, out_text, err = run(capsys, "paper", *config_args, "--policy", str(artifact), "--venue",
                              "local", "--start", start, "--end", end, *state_args,
                              "--json")  # fmt: skip
    assert code == 0, err
    paper = json.loads(out_text)
    equity = pd.Series({pd.Timestamp(e["timestamp"]): e["equity"] for e in paper["equity"]})
    assert list(equity.index) == list(backtest.index)  # every bar, start to the fill after end
    relative = ((equity - backtest).abs() / backtest).max()
    assert relative < 1e-9, f"{label}: max relative equity difference {relative:.3g}"
    return bt, backtest, paper, equity
