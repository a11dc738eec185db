"""tradeforge.monitor: drift detection against a policy's training-time reference profile.

At training time, summarise what the policy saw and store it in the artifact::

    from tradeforge.monitor import build_reference_profile

    profile = build_reference_profile(
        features, pipeline.names, actions=weights, values=None, oos_returns=returns
    )
    profile.save(artifact_dir)  # writes reference_profile.json

Later, compare a stretch of bars with it (batch), or feed a live node bar by bar::

    from tradeforge.monitor import DriftMonitor, ReferenceProfile, drift_report

    report = drift_report(ReferenceProfile.load(artifact_dir), features, actions, returns)
    report.rollback_reasons, report.to_json(), report.write_html("drift.html")

    monitor = DriftMonitor(profile)
    alarms = monitor.update(features_row, action, bar_return)  # each says if it rolls back

Values leave as Prometheus-style samples (:func:`drift_metrics`, :func:`monitor_metrics`).
scipy loads on the first KS p-value or CUSUM calibration, so importing the package is cheap.
"""

from __future__ import annotations

from tradeforge.monitor.calibration import CusumCalibration, calibrate_cusum
from tradeforge.monitor.config import (
    AdwinConfig,
    CusumConfig,
    DriftConfig,
    FeatureWindowConfig,
    PageHinkleyConfig,
)
from tradeforge.monitor.detectors import Adwin, LowerCusum, PageHinkley
from tradeforge.monitor.drift_history import HistoryWriter, NodeHistory, read_history
from tradeforge.monitor.drift_metrics import (
    MetricSample,
    drift_metrics,
    monitor_metrics,
    render_prometheus,
)
from tradeforge.monitor.drift_report import (
    ChannelDrift,
    DetectorSummary,
    DriftReport,
    drift_report,
)
from tradeforge.monitor.online import DriftAlarm, DriftMonitor
from tradeforge.monitor.profile import (
    PROFILE_FILE,
    Marginal,
    ReferenceProfile,
    StreamStats,
    build_reference_profile,
)

# ``drift_report`` names both a submodule and its function; the function wins here.
__all__ = [
    "PROFILE_FILE",
    "Adwin",
    "AdwinConfig",
    "ChannelDrift",
    "CusumCalibration",
    "CusumConfig",
    "DetectorSummary",
    "DriftAlarm",
    "DriftConfig",
    "DriftMonitor",
    "DriftReport",
    "FeatureWindowConfig",
    "HistoryWriter",
    "LowerCusum",
    "Marginal",
    "MetricSample",
    "NodeHistory",
    "PageHinkley",
    "PageHinkleyConfig",
    "ReferenceProfile",
    "StreamStats",
    "build_reference_profile",
    "calibrate_cusum",
    "drift_metrics",
    "drift_report",
    "monitor_metrics",
    "read_history",
    "render_prometheus",
]
