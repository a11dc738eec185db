"""Page-Hinkley, ADWIN and the lower CUSUM on small streams whose alarms can be worked out."""

from __future__ import annotations

import numpy as np
import pytest

from tradeforge.core.errors import ConfigError
from tradeforge.monitor.calibration import cusum_running_max, run_lengths
from tradeforge.monitor.config import AdwinConfig, PageHinkleyConfig
from tradeforge.monitor.detectors import Adwin, LowerCusum, PageHinkley, alarm_bars


def test_page_hinkley_alarms_on_the_bar_its_statistic_passes_the_threshold() -> None:
    # 30 zeros, then ones: after the step the running mean is m_n = (n - 30) / n, and the
    # upward statistic adds 1 - m_n - delta per bar; with delta = 0 and threshold 5 it first
    # exceeds 5 on bar index 35 (0-based): 30 * (1/31 + ... + 1/36) = 5.39 > 5 > 4.56
    x = np.r_[np.zeros(30), np.ones(30)]
    cfg = PageHinkleyConfig(delta=0.0, threshold=5.0, min_instances=1)
    sums = np.cumsum([30.0 / n for n in range(31, 61)])
    expected = 30 + int(np.argmax(sums > 5.0))
    assert alarm_bars(PageHinkley(cfg), x) == [expected]
    assert expected == 35


def test_page_hinkley_is_quiet_on_a_constant_stream_and_skips_nan() -> None:
    detector = PageHinkley(PageHinkleyConfig(threshold=1.0))
    assert alarm_bars(detector, np.r_[np.full(500, 3.0), np.nan, np.full(10, 3.0)]) == []
    assert detector.n == 510
    assert detector.statistic == 0.0


def test_page_hinkley_detects_a_fall_too() -> None:
    x = np.r_[np.zeros(100), -np.ones(200)]
    bars = alarm_bars(PageHinkley(PageHinkleyConfig(delta=0.1, threshold=10.0)), x)
    assert bars
    assert 100 < bars[0] < 130


def test_adwin_drops_the_older_part_of_its_window_after_a_change() -> None:
    rng = np.random.default_rng(0)
    x = np.r_[rng.standard_normal(1000), 3.0 + rng.standard_normal(1000)]
    detector = Adwin(AdwinConfig(clock=8))
    bars = alarm_bars(detector, x)
    assert bars
    assert 1000 < bars[0] < 1100
    # what is left of the window is (almost) all after the change
    assert detector.width < 1000
    assert detector.window.mean() == pytest.approx(3.0, abs=0.3)


def test_adwin_window_is_bounded() -> None:
    detector = Adwin(AdwinConfig(max_window=100, clock=10_000))
    for v in range(1000):
        detector.update(float(v % 7))
    assert detector.width == 100
    np.testing.assert_array_equal(detector.window, [float(v % 7) for v in range(900, 1000)])


def test_online_cusum_equals_lindley_recursion_and_the_vectorised_run_length() -> None:
    rng = np.random.default_rng(5)
    z = rng.standard_normal(400) - 0.3
    k, h = 0.5, 4.0
    s, by_hand = 0.0, []
    for v in z:
        s = max(0.0, s - v - k)
        by_hand.append(s)
    np.testing.assert_allclose(
        cusum_running_max(z[None, :], k)[0], np.maximum.accumulate(by_hand), atol=1e-10
    )
    detector = LowerCusum(k, h)
    first = alarm_bars(detector, z)[0]
    assert first + 1 == run_lengths(z[None, :], k, h)[0]
    assert first + 1 == int(np.argmax(np.array(by_hand) > h)) + 1


def test_cusum_refuses_bad_thresholds() -> None:
    with pytest.raises(ConfigError, match=r"cusum h = 0\.0"):
        LowerCusum(0.5, 0.0)
    with pytest.raises(ConfigError, match="cusum k = -1"):
        LowerCusum(-1, 4.0)
