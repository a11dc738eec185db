"""``tradeforge backtest --risk CONFIG``: the risk engine's counts in ``--json``, ``metrics.json``
and the table, on bundled AAPL/MSFT bars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tradeforge.backtest.engine import backtest_weights_file
from tradeforge.data import DataConfig, load_panel
from tradeforge.risk import RiskConfig
from tradeforge.sim import SimConfig
from tradeforge.testing.cli import run_cli

# AAPL ~$250,000 and MSFT ~$600,000 at the start: a $300,000 order limit denies MSFT's buys
WEIGHTS = "date,AAPL,MSFT\n2012-06-01,0.25,0.6\n2012-09-04,0.3,0.5\n2012-12-03,0.0,0.0\n"


def _files(tmp_path: Path, risk: object) -> tuple[Path, Path]:
    weights = tmp_path / "w.csv"
    weights.write_text(WEIGHTS, encoding="utf-8")
    config = tmp_path / "risk.yaml"
    config.write_text(yaml.safe_dump(risk), encoding="utf-8")
    return weights, config


@pytest.mark.parametrize(
    "layout",
    [
        {"risk": {"max_order_notional": 300000}},  # an experiment YAML's section
        {"paper": {"risk": {"max_order_notional": 300000}}},  # a paper config
        {"max_order_notional": 300000},  # a bare RiskConfig
    ],
)
def test_json_and_metrics_json_carry_the_risk_counts(
    layout: object, tf_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights, config = _files(tmp_path, layout)
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "backtest", "--weights", str(weights), "--risk",
                                str(config), "--out", str(out), "--json")  # fmt: skip
    assert code == 0, err
    payload = json.loads(stdout)
    panel = load_panel(DataConfig(symbols=["AAPL", "MSFT"]))
    direct = backtest_weights_file(weights, panel, SimConfig(),
                                   risk=RiskConfig(max_order_notional=300000))  # fmt: skip
    assert direct.risk is not None
    assert payload["risk"] == direct.risk.to_json()
    assert payload["final_equity"] == pytest.approx(float(direct.equity.iloc[-1]), rel=1e-12)
    assert payload["risk"]["denied"]["order_notional_exceeds_max"] > 0
    assert float(direct.positions["MSFT"].abs().max()) == 0.0
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved["risk"] == payload["risk"]


def test_the_table_lists_the_risk_rows_and_no_risk_means_no_rows(
    tf_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights, config = _files(tmp_path, {"risk": {"max_order_notional": 300000}})
    code, out, err = run_cli(capsys, "backtest", "--weights", str(weights), "--risk", str(config))
    assert code == 0, err
    text = " ".join(out.split())
    assert "risk: orders checked" in text
    assert "risk: denied order_notional_exceeds_max" in text
    assert "risk: bars active" in text
    code, out, err = run_cli(capsys, "backtest", "--weights", str(weights), "--json")
    assert code == 0, err
    assert json.loads(out)["risk"] is None


def test_a_bad_risk_config_is_one_line_naming_the_key(
    tf_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights, config = _files(tmp_path, {"risk": {"stop_los": 0.05}})
    code, _, err = run_cli(capsys, "backtest", "--weights", str(weights), "--risk", str(config))
    assert code == 2
    assert "stop_los" in err
    assert "Traceback" not in err
    weights, config = _files(tmp_path, {"risk": [1, 2]})
    code, _, err = run_cli(capsys, "backtest", "--weights", str(weights), "--risk", str(config))
    assert code == 2
    assert "expected a mapping of limits" in err
