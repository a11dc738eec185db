"""Drift calibration on seeded streams (issue 13, "Done when").

* every detector but the CUSUM: at most 1 false alarm in 5,000 stationary bars;
* a 1-sigma shift of one feature (and of each watched stream) flagged within 500 bars;
* the CUSUM, calibrated by bootstrapping 750 out-of-sample returns, has an average run length of
  at least 250 bars between false alarms and detects a -1 sigma shift of the mean within 15 bars
  on average.

Synthetic streams are the point here: the change point and the stationary law must be known.
"""

from __future__ import annotations

import numpy as np
import pytest

from tradeforge.monitor import DriftMonitor, build_reference_profile, drift_report
from tradeforge.monitor.calibration import average_run_length, calibrate_cusum
from tradeforge.monitor.config import CusumConfig
from tradeforge.monitor.detectors import LowerCusum
from tradeforge.monitor.online import feed
from tradeforge.monitor.profile import ReferenceProfile, StreamStats

F = 10
NAMES = [f"f{i}" for i in range(F)]
SEEDS = range(8)
STREAM_DETECTORS = (
    "page_hinkley:returns",
    "adwin:returns",
    "page_hinkley:actions",
    "adwin:actions",
    "page_hinkley:values",
    "adwin:values",
)
WINDOW_DETECTORS = ("features", "actions", "values")


def _profile(rng: np.random.Generator) -> ReferenceProfile:
    return build_reference_profile(
        rng.standard_normal((5000, F)),
        NAMES,
        actions=rng.uniform(-1, 1, (5000, 2)),
        values=rng.standard_normal(5000),
        oos_returns=0.0005 + 0.01 * rng.standard_normal(750),
        cusum=CusumConfig(n_paths=200),  # the CUSUM's own calibration is tested below
    )


def _alarms(monitor: DriftMonitor, name: str, after: int = 0) -> list[int]:
    return [a.bar for a in monitor.alarms if a.detector == name and a.bar >= after]


@pytest.fixture(scope="module")
def profiles() -> dict[int, ReferenceProfile]:
    return {seed: _profile(np.random.default_rng(seed)) for seed in SEEDS}


def test_no_detector_but_cusum_alarms_twice_in_5000_stationary_bars(profiles) -> None:
    worst: dict[str, int] = {}
    for seed in SEEDS:
        rng = np.random.default_rng(100 + seed)
        monitor = DriftMonitor(profiles[seed])
        feed(
            monitor,
            rng.standard_normal((5000, F)),
            rng.uniform(-1, 1, (5000, 2)),
            0.0005 + 0.01 * rng.standard_normal(5000),
            rng.standard_normal(5000),
        )
        for name in (*WINDOW_DETECTORS, *STREAM_DETECTORS):
            worst[name] = max(worst.get(name, 0), len(_alarms(monitor, name)))
    assert set(worst) == {*WINDOW_DETECTORS, *STREAM_DETECTORS}
    assert max(worst.values()) <= 1, worst


def test_a_one_sigma_shift_of_one_feature_is_flagged_within_500_bars(profiles) -> None:
    for seed in SEEDS:
        rng = np.random.default_rng(200 + seed)
        x = rng.standard_normal((1000, F))
        x[500:, 3] += 1.0
        monitor = DriftMonitor(profiles[seed])
        feed(monitor, x, None, None, None)
        alarms = [a for a in monitor.alarms if a.detector == "features"]
        assert alarms, f"seed {seed}: no alarm"
        first = alarms[0]
        assert 500 <= first.bar < 1000
        assert first.channels == ("f3",)
        # the batch view of the 500 shifted bars: PSI > 0.25 and KS p < 0.01 on f3 only
        report = drift_report(profiles[seed], x[500:])
        f3 = report.features[3]
        assert f3.status == "drift"
        assert f3.psi > 0.25
        assert f3.ks_pvalue < 0.01
        assert report.drifted_features == ("f3",)


def test_every_stream_detector_flags_a_one_sigma_shift_within_500_bars(profiles) -> None:
    for seed in SEEDS:
        rng = np.random.default_rng(300 + seed)
        prof = profiles[seed]
        assert prof.action_stream is not None
        assert prof.return_stream is not None
        a = rng.uniform(-1, 1, (1500, 2))
        a[1000:] += prof.action_stream.std  # the per-bar action mean moves by 1 sigma
        r = 0.0005 + 0.01 * rng.standard_normal(1500)
        r[1000:] -= prof.return_stream.std
        v = rng.standard_normal(1500)
        v[1000:] += 1.0
        monitor = DriftMonitor(prof)
        feed(monitor, None, a, r, v)
        for name in (*STREAM_DETECTORS, "actions", "values"):
            bars = _alarms(monitor, name, after=1000)
            assert bars, (seed, name)
            assert bars[0] - 1000 < 500, (seed, name, bars)


def _ar1(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    e = rng.standard_normal(n) * np.sqrt(1 - rho**2)
    x = np.empty(n)
    x[0] = rng.standard_normal()
    for t in range(1, n):
        x[t] = rho * x[t - 1] + e[t]
    return x


def test_a_persistent_action_stream_does_not_alarm_thanks_to_the_long_run_scale() -> None:
    """Positions persist from bar to bar; scaled by the plain sd, the same stream alarms often."""
    counts, naive = [], []
    for seed in SEEDS:
        rng = np.random.default_rng(400 + seed)
        prof = build_reference_profile(
            rng.standard_normal((500, 1)), ["f"], actions=_ar1(rng, 5000, 0.9)
        )
        live = _ar1(rng, 5000, 0.9)
        monitor = DriftMonitor(prof)
        feed(monitor, None, live, None, None)
        counts.append(
            max(len(_alarms(monitor, n)) for n in ("page_hinkley:actions", "adwin:actions"))
        )
        stats = prof.action_stream
        assert stats is not None
        assert stats.scale > 3 * stats.std
        plain = prof.model_copy(
            update={"action_stream": StreamStats(**{**stats.model_dump(), "scale": stats.std})}
        )
        monitor = DriftMonitor(plain)
        feed(monitor, None, live, None, None)
        naive.append(len(_alarms(monitor, "page_hinkley:actions")))
    assert max(counts) <= 1, counts
    assert min(naive) >= 2, naive


@pytest.mark.parametrize("law", ["normal", "student_t4"])
def test_cusum_calibrated_on_oos_returns_keeps_arl0_250_and_catches_minus_one_sigma(
    law: str,
) -> None:
    arl0, arl1, steady = [], [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)

        def draw(shape, rng=rng):
            if law == "normal":
                return rng.standard_normal(shape)
            return rng.standard_t(4, shape) / np.sqrt(2.0)  # unit variance

        cal = calibrate_cusum(0.0005 + 0.01 * draw(750))
        assert cal.arl0_bootstrap >= 250
        z = (0.0005 + 0.01 * draw((400, 5000)) - cal.mean) / cal.std
        arl0.append(average_run_length(z, cal.k, cal.h))
        shift = 0.01 / cal.std  # -1 sigma of the true returns, in calibrated units
        arl1.append(average_run_length(z[:, :400] - shift, cal.k, cal.h))
        # steady state: 300 quiet bars (restarting after any false alarm), then the fall
        delays = []
        for path in z[:100, :400]:
            detector = LowerCusum(cal.k, cal.h)
            for v in path[:300]:
                detector.update(v)
            t = next((i for i, v in enumerate(path[300:] - shift) if detector.update(v)), 100)
            delays.append(t + 1)
        steady.append(np.mean(delays))
    assert min(arl0) >= 250, arl0
    assert np.mean(arl1) <= 15, arl1
    assert np.mean(steady) <= 15, steady
