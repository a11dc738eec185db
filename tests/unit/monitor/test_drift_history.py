"""A trading node's drift history: JSON lines written per bar, read back (crash-tolerant)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeforge.core.errors import DataValidationError
from tradeforge.monitor import HistoryWriter, read_history
from tradeforge.monitor.drift_history import HISTORY_FILE


def _write(state: Path, n: int = 5) -> None:
    writer = HistoryWriter(state)
    for t in range(n):
        stamp = pd.Timestamp("2024-03-01", tz="UTC") + pd.Timedelta(days=t)
        feats = np.array([[t, np.nan], [t + 0.5, 1.0]])
        writer.append(stamp, feats, action=[0.1 * t, -0.1], ret=0.001 * t, value=None)


def test_history_round_trip(tmp_path: Path) -> None:
    _write(tmp_path)
    history = read_history(tmp_path)
    assert history.timestamps[0] == "2024-03-01T00:00:00+00:00"
    assert history.features.shape == (5, 2, 2)
    assert history.features[3, 1, 0] == 3.5
    assert np.isnan(history.features[3, 0, 1])
    np.testing.assert_allclose(history.actions[:, 0], [0.0, 0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(history.returns, [0.0, 0.001, 0.002, 0.003, 0.004])
    assert history.values is None
    part = history.between("2024-03-02", "2024-03-03")
    assert part.timestamps == ("2024-03-02T00:00:00+00:00", "2024-03-03T00:00:00+00:00")
    np.testing.assert_array_equal(part.features, history.features[1:3])


def test_a_line_cut_short_by_a_crash_is_ignored_but_not_a_bad_middle_line(tmp_path: Path) -> None:
    _write(tmp_path, 3)
    path = tmp_path / HISTORY_FILE
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"timestamp": "2024-03-04", "feat')
    assert len(read_history(tmp_path).timestamps) == 3
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0], "garbage", *lines[1:]]) + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="line 2 is not valid JSON"):
        read_history(tmp_path)


def test_missing_or_inconsistent_history_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="does not exist"):
        read_history(tmp_path)
    writer = HistoryWriter(tmp_path)
    writer.append("2024-01-01", np.zeros(3))
    writer.append("2024-01-02", np.zeros(4))
    with pytest.raises(DataValidationError, match=r"bar 1 .* shape \(1, 4\); expected \(1, 3\)"):
        read_history(tmp_path)
