"""Drift values as Prometheus-style samples ``(name, labels, value)`` and their text exposition.

No ``prometheus_client`` dependency: a service registers these samples in its own registry (or
serves :func:`render_prometheus` as ``/metrics``). Names follow the Prometheus conventions:
prefix ``tradeforge_``, snake case, ``_total`` only on counters, bounded labels (feature names,
action dimensions and detector names come from the profile, never ids). Pass the model or sleeve
as ``labels`` (e.g. ``{"model": "spy-ppo", "alias": "canary"}``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from tradeforge.monitor.drift_report import ChannelDrift, DriftReport
from tradeforge.monitor.online import DriftMonitor


class MetricSample(NamedTuple):
    """One sample: metric name, label set and value."""

    name: str
    labels: dict[str, str]
    value: float


# name -> (type, help)
METRICS: dict[str, tuple[str, str]] = {
    "tradeforge_feature_psi": (
        "gauge",
        "Population stability index of a feature against the reference.",
    ),
    "tradeforge_feature_ks_statistic": (
        "gauge",
        "Kolmogorov-Smirnov distance of a feature to the reference CDF.",
    ),
    "tradeforge_feature_ks_pvalue": ("gauge", "KS p-value of a feature (effective sample size)."),
    "tradeforge_feature_drift": (
        "gauge",
        "1 when the feature drifted (PSI and KS both past their thresholds).",
    ),
    "tradeforge_features_drifted": ("gauge", "Number of features that drifted."),
    "tradeforge_action_psi": ("gauge", "Population stability index of an action dimension."),
    "tradeforge_action_ks_pvalue": ("gauge", "KS p-value of an action dimension."),
    "tradeforge_action_drift": ("gauge", "1 when the action dimension drifted."),
    "tradeforge_value_psi": (
        "gauge",
        "Population stability index of the critic's value estimates.",
    ),
    "tradeforge_return_psi": (
        "gauge",
        "Population stability index of bar returns against out-of-sample returns.",
    ),
    "tradeforge_drift_statistic": ("gauge", "Current statistic of an online drift detector."),
    "tradeforge_drift_threshold": ("gauge", "Alarm threshold of an online drift detector."),
    "tradeforge_drift_alarm": ("gauge", "1 when the detector alarmed in the period."),
    "tradeforge_drift_alarms_total": ("counter", "Alarms raised by an online drift detector."),
    "tradeforge_cusum_statistic": ("gauge", "Lower CUSUM statistic on standardised returns."),
    "tradeforge_cusum_threshold": ("gauge", "Calibrated CUSUM alarm threshold h."),
    "tradeforge_drift_rollback": ("gauge", "1 when a drift rollback trigger fired."),
}


def _sample(name: str, labels: Mapping[str, str], value: float, **extra: str) -> MetricSample:
    return MetricSample(name, {**labels, **extra}, float(value))


def _channels(
    kind: str, label: str, rows: Iterable[ChannelDrift], base: Mapping[str, str]
) -> list[MetricSample]:
    out = []
    for c in rows:
        out.append(_sample(f"tradeforge_{kind}_psi", base, c.psi, **{label: c.name}))
        if kind == "feature":
            out.append(
                _sample("tradeforge_feature_ks_statistic", base, c.ks_statistic, feature=c.name)
            )
        out.append(_sample(f"tradeforge_{kind}_ks_pvalue", base, c.ks_pvalue, **{label: c.name}))
        out.append(
            _sample(f"tradeforge_{kind}_drift", base, c.status == "drift", **{label: c.name})
        )
    return out


def drift_metrics(
    report: DriftReport, labels: Mapping[str, str] | None = None
) -> list[MetricSample]:
    """Every number of a drift report as samples (``labels`` are added to each)."""
    base = dict(labels or {})
    out = _channels("feature", "feature", report.features, base)
    out.append(_sample("tradeforge_features_drifted", base, len(report.drifted_features)))
    out += _channels("action", "action", report.actions, base)
    if report.values is not None:
        out.append(_sample("tradeforge_value_psi", base, report.values.psi))
    if report.returns is not None:
        out.append(_sample("tradeforge_return_psi", base, report.returns.psi))
    for d in report.detectors:
        out.append(_sample("tradeforge_drift_statistic", base, d.statistic, detector=d.name))
        out.append(_sample("tradeforge_drift_threshold", base, d.threshold, detector=d.name))
        out.append(_sample("tradeforge_drift_alarm", base, d.n_alarms > 0, detector=d.name))
        out.append(_sample("tradeforge_drift_alarms_total", base, d.n_alarms, detector=d.name))
        if d.name == "cusum:returns":
            out.append(_sample("tradeforge_cusum_statistic", base, d.statistic, stream="returns"))
            out.append(_sample("tradeforge_cusum_threshold", base, d.threshold, stream="returns"))
    out.append(_sample("tradeforge_drift_rollback", base, report.rollback))
    return out


def monitor_metrics(
    monitor: DriftMonitor, labels: Mapping[str, str] | None = None
) -> list[MetricSample]:
    """The live monitor's current state as samples (the last rolling PSI per channel)."""
    base = dict(labels or {})
    out = []
    for key, kind, label in (("features", "feature", "feature"), ("actions", "action", "action")):
        window = monitor.windows.get(key)
        if window is not None:
            for name, value in window.last_psi.items():
                out.append(_sample(f"tradeforge_{kind}_psi", base, value, **{label: name}))
    values = monitor.windows.get("values")
    if values is not None and values.last_psi:
        out.append(_sample("tradeforge_value_psi", base, next(iter(values.last_psi.values()))))
    state = monitor.state()
    for name, st in state.items():
        count = sum(1 for a in monitor.alarms if a.detector == name)
        if name not in monitor.windows:
            out.append(_sample("tradeforge_drift_statistic", base, st["statistic"], detector=name))
            out.append(_sample("tradeforge_drift_threshold", base, st["threshold"], detector=name))
        out.append(_sample("tradeforge_drift_alarms_total", base, count, detector=name))
    if monitor.cusum is not None:
        out.append(
            _sample("tradeforge_cusum_statistic", base, monitor.cusum.statistic, stream="returns")
        )
        out.append(_sample("tradeforge_cusum_threshold", base, monitor.cusum.h, stream="returns"))
    out.append(_sample("tradeforge_drift_rollback", base, bool(monitor.rollback_alarms())))
    return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render_prometheus(samples: Iterable[MetricSample]) -> str:
    """Prometheus text exposition (format 0.0.4): ``# HELP``/``# TYPE`` once per metric name."""
    by_name: dict[str, list[MetricSample]] = {}
    for s in samples:
        by_name.setdefault(s.name, []).append(s)
    lines = []
    for name, group in by_name.items():
        kind, text = METRICS.get(name, ("untyped", name))
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        for s in group:
            labels = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(s.labels.items()))
            lines.append(
                f"{name}{{{labels}}} {_value(s.value)}" if labels else f"{name} {_value(s.value)}"
            )
    return "\n".join(lines) + "\n"


__all__ = ["METRICS", "MetricSample", "drift_metrics", "monitor_metrics", "render_prometheus"]
