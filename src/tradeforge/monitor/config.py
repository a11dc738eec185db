"""Frozen configs of the drift detectors and the drift report (defaults calibrated in the tests).

Every detector sees a stream standardised with the reference profile: ``z = (x - mean) / scale``
where ``scale`` is the reference long-run standard deviation, so thresholds are in units of the
reference spread and do not depend on the instrument. The defaults keep each detector at no more
than one false alarm in 5,000 stationary bars (``tests/unit/monitor/test_drift_calibration.py``;
numbers in ``docs/monitor.md``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tradeforge.core.config import FrozenConfig

DETECTOR_NAMES = (
    "features",
    "actions",
    "values",
    "page_hinkley:returns",
    "page_hinkley:actions",
    "page_hinkley:values",
    "adwin:returns",
    "adwin:actions",
    "adwin:values",
    "cusum:returns",
)


class PageHinkleyConfig(FrozenConfig):
    """Two-sided Page-Hinkley test around the stream's running mean (river's formulation).

    ``delta`` is the tolerated drift and ``threshold`` the alarm level, both in reference
    long-run standard deviations; ``alpha`` is the forgetting factor of the cumulative sums. The
    default ``alpha = 1`` (no forgetting) differs from river's 0.9999 on purpose: with forgetting
    the sums settle at ``-delta / (1 - alpha)`` and then wander without drift, so the run length
    without a change is capped near ``1 / (1 - alpha)`` bars (measured: about 10,000 to 20,000).
    """

    delta: float = Field(0.1, ge=0)
    threshold: float = Field(50.0, gt=0)
    min_instances: int = Field(30, ge=1)
    alpha: float = Field(1.0, gt=0, le=1)


class AdwinConfig(FrozenConfig):
    """ADWIN (adaptive windowing, Bifet and Gavalda 2007) on an exact window of the stream.

    Every ``clock`` values, each split of the window into an older and a newer part with at least
    ``min_side`` values each is tested; the older part is dropped when the means differ by more
    than ``eps = sqrt(2 v ln(2 ln(n) / delta) / m) + 2 ln(2 ln(n) / delta) / (3 m)``, with
    ``1/m = 1/n0 + 1/n1``. ``v`` is the larger of the window variance and 1 (the reference
    long-run variance of the standardised stream), so an autocorrelated stream does not alarm on
    its own persistence. ``max_window`` bounds memory and time.
    """

    delta: float = Field(0.002, gt=0, lt=1)
    clock: int = Field(32, ge=1)
    min_side: int = Field(30, ge=2)
    max_window: int = Field(5000, ge=64)


class CusumConfig(FrozenConfig):
    """One-sided lower CUSUM on standardised returns, ``S = max(0, S - z - k)``, alarm at ``S > h``.

    ``h`` is not set here: :func:`tradeforge.monitor.calibration.calibrate_cusum` picks the
    smallest ``h`` whose average run length without a change, on block-bootstrapped
    out-of-sample returns, is at least ``target_arl0 * margin``. The bootstrap streams are made
    pessimistic first: shifted down and widened by the one-sided ``confidence`` bounds of the
    estimated mean and spread, so a finite out-of-sample record that overstates the mean does
    not leave live false alarms more frequent than the target.
    """

    k: float = Field(0.5, ge=0)
    target_arl0: float = Field(250.0, ge=10)
    margin: float = Field(1.0, ge=1)
    confidence: float = Field(0.99, ge=0.5, lt=1)
    block_length: int = Field(5, ge=1)
    n_paths: int = Field(1000, ge=10)
    path_length: int = Field(5000, ge=100)
    seed: int = 0


class FeatureWindowConfig(FrozenConfig):
    """Rolling PSI and KS of the last ``window`` bars against the reference, every ``step`` bars.

    An alarm needs both PSI >= ``DriftConfig.psi_threshold`` and a KS p-value below
    ``DriftConfig.ks_alpha`` divided by the number of channels (Bonferroni). The window is
    cleared after an alarm, so a persisting shift alarms again only after a new full window.
    """

    window: int = Field(250, ge=20)
    step: int = Field(25, ge=1)


class DriftConfig(FrozenConfig):
    """Thresholds of the drift report and of the online monitor; which detectors roll back."""

    psi_warn: float = Field(0.10, gt=0)
    psi_threshold: float = Field(0.25, gt=0)
    psi_epsilon: float = Field(1e-4, gt=0, lt=0.1)
    ks_alpha: float = Field(0.01, gt=0, lt=1)
    min_drifted_features: int = Field(3, ge=1)
    feature_window: FeatureWindowConfig = FeatureWindowConfig()
    page_hinkley: PageHinkleyConfig = PageHinkleyConfig()
    adwin: AdwinConfig = AdwinConfig()
    rollback_on: tuple[str, ...] = ("features", "actions", "page_hinkley:actions", "cusum:returns")
    stream_detectors: tuple[Literal["page_hinkley", "adwin"], ...] = ("page_hinkley", "adwin")

    @model_validator(mode="after")
    def _check(self) -> DriftConfig:
        if self.psi_warn > self.psi_threshold:
            raise ValueError(
                f"psi_warn = {self.psi_warn} is above psi_threshold = "
                f"{self.psi_threshold}; expected psi_warn <= psi_threshold"
            )
        unknown = [name for name in self.rollback_on if name not in DETECTOR_NAMES]
        if unknown:
            raise ValueError(
                f"rollback_on has unknown detector(s) {unknown}; expected names from "
                f"{', '.join(DETECTOR_NAMES)}"
            )
        return self


__all__ = [
    "DETECTOR_NAMES",
    "AdwinConfig",
    "CusumConfig",
    "DriftConfig",
    "FeatureWindowConfig",
    "PageHinkleyConfig",
]
