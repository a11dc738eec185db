"""Replay parity (issue 10, done-when "Replay parity").

``tradeforge paper --policy ARTIFACT --venue local --start S --end E --json`` runs the trading
node against the local venue in-process, through alpaca-py (orders, trade updates, bars), and
must give the same equity at every bar as ``tradeforge backtest --policy ARTIFACT --start S
--end E`` (relative difference below 1e-9), for a single-asset policy (S&P 500, continuous
action) and a portfolio policy (AAPL/IBM/MSFT, softmax weights), each a tiny PPO trained here
by ``train_fold`` with every trading cost of the artifact's simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("alpaca")

from parity_support import policy_at_home, replay_both
from test_paper_support import no_thread_left  # noqa: F401

from tradeforge.testing.cli import run_cli as run


@pytest.mark.parametrize("kind", ["single", "portfolio"])
def test_paper_replay_on_the_local_venue_equals_the_backtest(
    kind: str,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    artifact = policy_at_home(kind, tmp_path_factory, monkeypatch)
    _, backtest, paper, equity = replay_both(capsys, artifact, tmp_path / "bt", label=kind)
    assert paper["orders"] > 0
    assert paper["fills"] > 0
    assert equity.nunique() > 5  # the policy traded and the equity moved
    assert paper["final_equity"] == pytest.approx(float(backtest.iloc[-1]), rel=1e-9)
    assert paper["halted"] is False
    assert paper["skipped"] == []
    assert paper["denied"] == {}
    assert paper["shortfall"]["n_filled"] > 0
    assert paper["metrics"]["total_return"] == pytest.approx(
        equity.iloc[-1] / equity.iloc[0] - 1.0, rel=1e-12
    )


def test_paper_prints_a_table_without_json(
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    artifact = policy_at_home("portfolio", tmp_path_factory, monkeypatch)
    config = tmp_path / "paper.yaml"
    config.write_text("paper:\n  node:\n    strategy_id: table-test\n", encoding="utf-8")
    code, out, err = run(capsys, "paper", str(config), "--policy", str(artifact), "--venue",
                         "sim", "--start", "2011-08-16", "--end", "2011-08-22",
                         "--state", str(tmp_path / "state"))  # fmt: skip
    assert code == 0, err
    assert "table-test" in out
    assert "2011-08-16 .. 2011-08-22" in " ".join(out.split())
    assert "final equity" in out
    assert "total_return" in out
    assert "shortfall vs arrival (bps)" in out
    assert "shortfall + fees" in out
    assert f"state in {tmp_path / 'state'}" in out


def test_paper_usage_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "paper", "--policy", str(tmp_path), "--venue", "ibkr")
    assert code == 2
    assert "--venue = 'ibkr'; expected local, alpaca or sim" in err
    code, _, err = run(capsys, "paper", str(tmp_path / "nope.yaml"), "--policy", str(tmp_path))
    assert code == 2
    assert "does not exist" in err
    code, _, err = run(capsys, "paper", "--policy", str(tmp_path), "--start", "16/08/2011")
    assert code == 2
    assert "--start = '16/08/2011'; expected a date YYYY-MM-DD" in err
