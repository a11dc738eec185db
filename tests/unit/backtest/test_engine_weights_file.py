"""Weights CSV loader: alignment, holds, and errors that name the line and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tradeforge.backtest.engine import backtest_weights_file, load_weights_csv, run_backtest
from tradeforge.backtest.weights_file import WeightsFileConfig, load_weights_csv_with_report
from tradeforge.core.errors import BacktestError
from tradeforge.data.panel import BarPanel
from tradeforge.sim import SimConfig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "weights.csv"
    path.write_text(text, encoding="utf-8")
    return path


def day(panel: BarPanel, i: int) -> str:
    return str(panel.index[i].date())


def test_rows_align_to_bars_and_other_bars_hold(tmp_path: Path, equities_panel: BarPanel) -> None:
    p = equities_panel
    path = write(
        tmp_path,
        f"date,MSFT,AAPL\n{day(p, 20)},0.5,0.25\n{day(p, 40)},0.0,0.5\n",
    )
    w = load_weights_csv(path, p)
    assert w.shape == (p.n_bars, 3)
    np.testing.assert_array_equal(w[20], [0.25, 0.0, 0.5])  # panel order AAPL, IBM, MSFT
    np.testing.assert_array_equal(w[40], [0.5, 0.0, 0.0])
    assert np.isnan(w[21]).all()
    assert np.isnan(np.delete(w, [20, 40], axis=0)).all()


def test_backtest_weights_file_starts_at_first_date(
    tmp_path: Path, equities_panel: BarPanel
) -> None:
    p = equities_panel.iloc(slice(0, 120))
    path = write(tmp_path, f"date,AAPL,IBM,MSFT\n{day(p, 30)},0.3,0.3,0.3\n")
    config = SimConfig()
    res = backtest_weights_file(path, p, config, kernel="step")
    assert res.equity.index[0] == p.index[30]
    direct = run_backtest(p, load_weights_csv(path, p), config, start=30, kernel="step")
    np.testing.assert_array_equal(res.equity.to_numpy(), direct.equity.to_numpy())
    assert res.notes == ()


def test_unknown_symbol(tmp_path: Path, equities_panel: BarPanel) -> None:
    path = write(tmp_path, f"date,AAPL,TSLA\n{day(equities_panel, 3)},0.1,0.1\n")
    with pytest.raises(BacktestError, match="column 'TSLA' is not a symbol"):
        load_weights_csv(path, equities_panel)


def test_date_outside_the_data(tmp_path: Path, equities_panel: BarPanel) -> None:
    path = write(tmp_path, f"date,AAPL\n{day(equities_panel, 3)},0.1\n2030-01-02,0.2\n")
    with pytest.raises(BacktestError, match="line 3, column 'date': date '2030-01-02'"):
        load_weights_csv(path, equities_panel)


def test_not_a_date_and_not_a_number(tmp_path: Path, equities_panel: BarPanel) -> None:
    path = write(tmp_path, "date,AAPL\nyesterday,0.1\n")
    with pytest.raises(BacktestError, match="line 2, column 'date': 'yesterday' is not a date"):
        load_weights_csv(path, equities_panel)
    path = write(tmp_path, f"date,AAPL\n{day(equities_panel, 3)},abc\n")
    with pytest.raises(BacktestError, match="line 2, column 'AAPL': 'abc' is not a number"):
        load_weights_csv(path, equities_panel)


def test_duplicate_dates(tmp_path: Path, equities_panel: BarPanel) -> None:
    d = day(equities_panel, 3)
    path = write(tmp_path, f"date,AAPL\n{d},0.1\n{d},0.2\n")
    with pytest.raises(BacktestError, match=r"line 3: date .* repeats line 2"):
        load_weights_csv(path, equities_panel)


def test_nan_is_an_error_or_a_hold(tmp_path: Path, equities_panel: BarPanel) -> None:
    path = write(tmp_path, f"date,AAPL,IBM\n{day(equities_panel, 3)},0.1,\n")
    with pytest.raises(BacktestError, match=r"line 2 .*column 'IBM': empty or NaN"):
        load_weights_csv(path, equities_panel)
    w, report = load_weights_csv_with_report(
        path, equities_panel, options=WeightsFileConfig(nan="hold")
    )
    assert np.isnan(w[3, 1])
    assert w[3, 0] == 0.1
    assert report.held_nan_cells == 1


def test_limits_error_or_clip_with_report(tmp_path: Path, equities_panel: BarPanel) -> None:
    d1, d2 = day(equities_panel, 3), day(equities_panel, 4)
    path = write(tmp_path, f"date,AAPL,IBM,MSFT\n{d1},0.5,-0.2,0.1\n{d2},0.6,0.6,0.3\n")
    with pytest.raises(BacktestError, match=r"line 2 .*column 'IBM': weight -0.2 is outside"):
        load_weights_csv(path, equities_panel)
    loose = SimConfig(allow_short=True)
    with pytest.raises(
        BacktestError, match=r"line 3 .*gross weight 1\.5 exceeds max_leverage 1\.0"
    ):
        load_weights_csv(path, equities_panel, loose)
    w, report = load_weights_csv_with_report(
        path, equities_panel, SimConfig(), WeightsFileConfig(on_limit="clip")
    )
    np.testing.assert_allclose(w[3], [0.5, 0.0, 0.1])
    np.testing.assert_allclose(w[4], [0.4, 0.4, 0.2])
    assert report.clipped_cells == 4
    assert "clipped" in report.notes[0]
    short = equities_panel.iloc(slice(0, 50))
    res = backtest_weights_file(
        path, short, SimConfig(), WeightsFileConfig(on_limit="clip"), kernel="step"
    )
    assert res.notes == report.notes


def test_missing_symbol_columns(tmp_path: Path, equities_panel: BarPanel) -> None:
    path = write(tmp_path, f"date,AAPL\n{day(equities_panel, 3)},0.1\n")
    w, report = load_weights_csv_with_report(path, equities_panel)
    np.testing.assert_array_equal(w[3], [0.1, 0.0, 0.0])
    assert report.missing_symbols == ("IBM", "MSFT")
    with pytest.raises(BacktestError, match=r"no column for symbols \['IBM', 'MSFT'\]"):
        load_weights_csv(path, equities_panel, options=WeightsFileConfig(missing_symbols="error"))


def test_missing_file_and_bad_shape(tmp_path: Path, equities_panel: BarPanel) -> None:
    with pytest.raises(BacktestError, match="does not exist"):
        load_weights_csv(tmp_path / "nope.csv", equities_panel)
    with pytest.raises(BacktestError, match="expected a date column and one column per symbol"):
        load_weights_csv(write(tmp_path, "date\n2010-01-04\n"), equities_panel)
