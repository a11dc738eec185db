"""``tradeforge backtest --weights FILE`` through Typer's CliRunner on bundled data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tradeforge.backtest.engine import backtest_weights_file
from tradeforge.cli.app import app, main
from tradeforge.core.errors import BacktestError, UnknownSymbolError
from tradeforge.data import DataConfig, load_panel
from tradeforge.sim import CostConfig, SimConfig

runner = CliRunner()

GOOD = "date,AAPL,MSFT\n2005-01-03,0.5,0.4\n2006-01-03,0.2,0.7\n2008-06-02,0.0,0.0\n"


def write(tmp_path: Path, text: str, name: str = "weights.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_json_and_out_folder_match_the_library(tf_home: Path, tmp_path: Path) -> None:
    weights = write(tmp_path, GOOD)
    out = tmp_path / "run"
    args = ["backtest", "--weights", str(weights), "--commission-bps", "5", "--json"]
    result = runner.invoke(app, [*args, "--out", str(out), "--benchmark", "IBM"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["symbols"] == ["AAPL", "MSFT"]
    assert payload["start"].startswith("2005-01-03")
    # the same run through the library on the same stored bars
    panel = load_panel(DataConfig(symbols=["AAPL", "MSFT"]))
    sim = SimConfig(costs=CostConfig(commission_bps=5))
    direct = backtest_weights_file(weights, panel, sim)
    assert payload["final_equity"] == pytest.approx(float(direct.equity.iloc[-1]), rel=1e-12)
    assert payload["costs"]["commission"] == pytest.approx(float(direct.costs["commission"].sum()))
    assert payload["costs"]["commission"] > 0
    m = payload["metrics"]
    assert m["n_fills"] == 6
    assert m["n_trades"] == 3
    assert 0.0 < m["beta"] < 2.0
    assert m["max_drawdown"] < 0
    files = {Path(f).name for f in payload["files"]}
    assert files == {
        "bars.csv",
        "positions.csv",
        "weights_held.csv",
        "fills.csv",
        "trades.csv",
        "metrics.json",
    }
    bars = pd.read_csv(out / "bars.csv", index_col=0)
    np.testing.assert_allclose(bars["equity"], direct.equity.to_numpy())
    assert list(pd.read_csv(out / "fills.csv")["symbol"]) == ["AAPL", "MSFT"] * 3
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"]["total_return"] == pytest.approx(m["total_return"])


def test_rich_table_and_data_config_yaml(tf_home: Path, tmp_path: Path) -> None:
    weights = write(tmp_path, GOOD)
    exp = write(
        tmp_path,
        "data:\n  source: bundled\n  symbols: [AAPL, MSFT, IBM]\n  end: 2007-12-31\n"
        "sim:\n  initial_cash: 10000\n  costs:\n    half_spread_bps: 3\n",
        "exp.yaml",
    )
    args = ["backtest", "-w", str(weights), "--data-config", str(exp), "--sim-config", str(exp)]
    result = runner.invoke(app, args)  # the file's last date (2008-06-02) is after the data
    assert "line 4, column 'date': date '2008-06-02' is not a bar" in str(result.exception)
    write(tmp_path, GOOD.rsplit("2008", 1)[0])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "sharpe" in result.stdout
    assert "cost spread" in result.stdout
    assert "2007-12-31" in result.stdout  # data ends where the YAML says
    assert "IBM" in result.stdout  # the file has no IBM column: noted, weight 0


def test_unknown_symbol_is_named(tf_home: Path, tmp_path: Path) -> None:
    weights = write(tmp_path, "date,AAPL,TSLA\n2005-01-03,0.5,0.4\n")
    result = runner.invoke(app, ["backtest", "-w", str(weights), "-s", "AAPL", "-s", "MSFT"])
    assert isinstance(result.exception, BacktestError)
    assert "column 'TSLA' is not a symbol of the data" in str(result.exception)
    result = runner.invoke(app, ["backtest", "-w", str(weights)])  # TSLA is not bundled
    assert isinstance(result.exception, UnknownSymbolError)
    assert "TSLA" in str(result.exception)


def test_date_outside_the_data_is_named(tf_home: Path, tmp_path: Path) -> None:
    weights = write(tmp_path, "date,AAPL\n2005-01-03,0.5\n2025-01-02,0.4\n")
    result = runner.invoke(app, ["backtest", "-w", str(weights)])
    assert isinstance(result.exception, BacktestError)
    assert "line 3, column 'date': date '2025-01-02' is not a bar" in str(result.exception)


def test_limits_fail_or_clip_with_a_note(tf_home: Path, tmp_path: Path) -> None:
    weights = write(tmp_path, "date,AAPL,MSFT\n2005-01-03,0.8,0.7\n2005-02-01,-0.2,0.5\n")
    result = runner.invoke(app, ["backtest", "-w", str(weights)])
    assert isinstance(result.exception, BacktestError)
    assert "line 2 (2005-01-03): gross weight 1.5 exceeds max_leverage" in str(result.exception)
    result = runner.invoke(app, ["backtest", "-w", str(weights), "--clip", "--json"])
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["notes"]
    assert notes == ["3 weight(s) clipped to the position/leverage limits"]
    result = runner.invoke(app, ["backtest", "-w", str(weights), "--allow-short"])
    assert "gross weight 1.5" in str(result.exception)  # shorts allowed, leverage still 1


def test_nan_cell_fails_or_holds(tf_home: Path, tmp_path: Path) -> None:
    weights = write(tmp_path, "date,AAPL,MSFT\n2005-01-03,0.5,0.4\n2005-02-01,,0.3\n")
    result = runner.invoke(app, ["backtest", "-w", str(weights)])
    assert isinstance(result.exception, BacktestError)
    assert "line 3 (2005-02-01), column 'AAPL': empty or NaN weight" in str(result.exception)
    result = runner.invoke(app, ["backtest", "-w", str(weights), "--nan-hold", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["n_fills"] == 3  # AAPL held on 2005-02-01


def test_main_prints_one_line_and_exits_2(
    tf_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "nope.csv"
    monkeypatch.setattr(sys, "argv", ["tradeforge", "backtest", "--weights", str(missing)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "does not exist" in err
    assert "Traceback" not in err
