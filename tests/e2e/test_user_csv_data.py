"""``tradeforge run`` on a user's own CSV directory: the same job, columns mapped in the config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tradeforge.cli.app import app
from tradeforge.data.bundled import bundled_frame

pytestmark = pytest.mark.usefixtures("tf_home")


def _kaggle_style_dump(directory: Path) -> None:
    """Real S&P 500 bars written like a Kaggle per-ticker dump: odd column names, US dates."""
    directory.mkdir()
    frame = bundled_frame("SP500")
    out = frame.rename(
        columns={"open": "Opening", "high": "Hi", "low": "Lo", "close": "Last", "volume": "Qty"}
    )
    out["Day"] = out["timestamp"].dt.strftime("%m/%d/%Y")
    out[["Day", "Opening", "Hi", "Lo", "Last", "Qty"]].to_csv(directory / "SPX.csv", index=False)


def test_run_on_a_csv_directory(tmp_path: Path, write_experiment, tiny_experiment) -> None:
    _kaggle_style_dump(tmp_path / "dump")
    raw = tiny_experiment(
        data={
            "source": "csv",
            "path": str(tmp_path / "dump"),
            "symbols": ["SPX"],
            "columns": {"Day": "timestamp", "Opening": "open", "Hi": "high", "Lo": "low",
                        "Last": "close", "Qty": "volume"},
            "date_format": "%m/%d/%Y",
            "start": "2009-01-01",
            "end": "2013-12-31",
        },
        ensemble=None,
    )  # fmt: skip
    result = CliRunner().invoke(
        app, ["run", str(write_experiment(raw)), "--out", str(tmp_path / "run"), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["symbols"] == ["SPX"]
    assert summary["folds"] == 2
    assert (Path(summary["run_dir"]) / "report.html").is_file()

    # the same real prices as the bundled series: buy-and-hold over the test windows agrees
    bundled = CliRunner().invoke(
        app, ["run", str(write_experiment(tiny_experiment(ensemble=None), "b.yaml")),
              "--out", str(tmp_path / "bundled"), "--json"],
    )  # fmt: skip
    assert bundled.exit_code == 0, bundled.output
    ours = summary["baselines"]["buy_and_hold"]["total_return"]
    ref = json.loads(bundled.stdout)["baselines"]["buy_and_hold"]["total_return"]
    assert np.isclose(ours, ref, rtol=0, atol=1e-9)
    assert summary["oos_start"] == json.loads(bundled.stdout)["oos_start"]


def test_unmapped_columns_fail_with_a_clear_message(
    tmp_path: Path, write_experiment, tiny_experiment
) -> None:
    _kaggle_style_dump(tmp_path / "dump")
    raw = tiny_experiment(
        data={"source": "csv", "path": str(tmp_path / "dump"), "symbols": ["SPX"]}, ensemble=None
    )
    result = CliRunner().invoke(app, ["run", str(write_experiment(raw))])
    assert result.exit_code != 0
    message = str(result.exception)
    assert "SPX" in message
    assert "column" in message.lower()


def test_run_on_a_long_dump_with_integer_dates(
    tmp_path: Path, write_experiment, tiny_experiment
) -> None:
    """A new user's dump: one long CSV, columns ticker,date,open,high,low,close,volume, dates
    like 20090821 (read by pandas as integers), several tickers, no symbols listed in the
    config. It trains and reports on its real dates and prices, as the bundled series do."""
    parts = []
    for symbol in ("AAPL", "IBM", "MSFT"):
        frame = bundled_frame(symbol)
        parts.append(
            frame.assign(ticker=symbol, date=frame["timestamp"].dt.strftime("%Y%m%d").astype(int))[
                ["ticker", "date", "open", "high", "low", "close", "volume"]
            ]
        )
    dump = tmp_path / "prices.csv"
    pd.concat(parts).sort_values(["date", "ticker"]).to_csv(dump, index=False)
    window = {"start": "2009-01-01", "end": "2013-02-28"}
    raw = tiny_experiment(data={"source": "csv", "path": str(dump), **window}, ensemble=None)
    result = CliRunner().invoke(
        app, ["run", str(write_experiment(raw)), "--out", str(tmp_path / "run"), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["symbols"] == ["AAPL", "IBM", "MSFT"]

    bundled = tiny_experiment(data={"symbols": ["AAPL", "IBM", "MSFT"], **window}, ensemble=None)
    ref = CliRunner().invoke(
        app, ["run", str(write_experiment(bundled, "b.yaml")), "--out", str(tmp_path / "b"),
              "--json"],
    )  # fmt: skip
    assert ref.exit_code == 0, ref.output
    expected = json.loads(ref.stdout)
    assert summary["oos_start"] == expected["oos_start"]
    assert summary["oos_start"].startswith("201")
    ours = summary["baselines"]["buy_and_hold"]["total_return"]
    theirs = expected["baselines"]["buy_and_hold"]["total_return"]
    assert np.isclose(ours, theirs, rtol=0, atol=1e-9)
