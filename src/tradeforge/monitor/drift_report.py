"""``drift_report``: a stretch of live or replayed bars against a policy's reference profile.

Two views of the same data:

* **batch**: per feature, action dimension, value and the returns, the PSI on the reference bins
  and the KS statistic and p-value against the reference CDF over the whole stretch. Status
  ``drift`` needs PSI >= ``psi_threshold`` and a KS p-value below ``ks_alpha / C`` (Bonferroni
  over the C channels of the group); ``warn`` needs PSI >= ``psi_warn`` or that p-value alone.
* **online**: the stretch replayed bar by bar through :class:`~tradeforge.monitor.online.DriftMonitor`
  (rolling PSI/KS, Page-Hinkley and ADWIN on the streams, the calibrated CUSUM on returns): every
  alarm with its bar, and each detector's final state.

``rollback_reasons`` lists what would trigger a rollback under ``DriftConfig.rollback_on``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tradeforge.core.errors import FeatureError
from tradeforge.core.types import FloatArray
from tradeforge.monitor.config import DriftConfig
from tradeforge.monitor.online import DriftAlarm, DriftMonitor, feed
from tradeforge.monitor.profile import Marginal, ReferenceProfile, action_matrix, pool
from tradeforge.monitor.stats import effective_size, ks_pvalue, ks_statistic, psi_of

Status = Literal["ok", "warn", "drift", "empty"]


@dataclass(frozen=True)
class ChannelDrift:
    """Batch drift of one channel over the report's stretch."""

    name: str
    kind: str  # feature, action, value, returns
    n: int
    nan_fraction: float
    psi: float
    ks_statistic: float
    ks_pvalue: float
    n_effective: float
    mean: float
    reference_mean: float
    mean_shift: float  # (mean - reference mean) / reference std
    std_ratio: float  # std / reference std
    status: Status

    def to_dict(self) -> dict[str, Any]:
        return {k: _num(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class DetectorSummary:
    """One online detector over the stretch: its alarms and its final state."""

    name: str
    n_alarms: int
    alarm_bars: tuple[int, ...]
    alarm_times: tuple[str, ...]
    statistic: float
    threshold: float
    rollback: bool

    def to_dict(self) -> dict[str, Any]:
        out = {k: _num(v) for k, v in self.__dict__.items()}
        out["alarm_bars"] = list(self.alarm_bars)
        out["alarm_times"] = list(self.alarm_times)
        return out


@dataclass(frozen=True)
class DriftReport:
    """What :func:`drift_report` found; ``to_json`` for machines, ``write_html`` for people."""

    n_bars: int
    start: str | None
    end: str | None
    features: tuple[ChannelDrift, ...]
    actions: tuple[ChannelDrift, ...]
    values: ChannelDrift | None
    returns: ChannelDrift | None
    detectors: tuple[DetectorSummary, ...]
    alarms: tuple[DriftAlarm, ...]
    rollback_reasons: tuple[str, ...]
    config: DriftConfig
    profile_created_at: str
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.features if c.status == "drift")

    @property
    def rollback(self) -> bool:
        return bool(self.rollback_reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_bars": self.n_bars,
            "start": self.start,
            "end": self.end,
            "rollback": self.rollback,
            "rollback_reasons": list(self.rollback_reasons),
            "drifted_features": list(self.drifted_features),
            "features": [c.to_dict() for c in self.features],
            "actions": [c.to_dict() for c in self.actions],
            "values": None if self.values is None else self.values.to_dict(),
            "returns": None if self.returns is None else self.returns.to_dict(),
            "detectors": [d.to_dict() for d in self.detectors],
            "alarms": [{**a.to_dict(), "statistic": _num(a.statistic)} for a in self.alarms],
            "config": self.config.model_dump(mode="json"),
            "profile_created_at": self.profile_created_at,
            "metadata": dict(self.metadata),
        }

    def to_json(self) -> str:
        """The report as JSON (undefined numbers are null)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def write_html(self, path: Path) -> Path:
        """Write a self-contained HTML page (no scripts, no external assets)."""
        from tradeforge.monitor.report_html import render_html

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(self), encoding="utf-8")
        return path


def _num(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def channel_drift(
    m: Marginal,
    kind: str,
    values: FloatArray,
    levels: Sequence[float],
    n_channels: int,
    config: DriftConfig,
) -> ChannelDrift:
    """Batch PSI, KS and moments of ``values`` against the reference marginal ``m``."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = x[~np.isnan(x)]
    nan_fraction = float(1.0 - finite.size / x.size) if x.size else math.nan
    ref_mean = math.nan if m.mean is None else m.mean
    ref_std = math.nan if m.std is None else m.std
    if finite.size == 0 or m.n == 0:
        return ChannelDrift(
            m.name,
            kind,
            int(finite.size),
            nan_fraction,
            math.nan,
            math.nan,
            math.nan,
            0.0,
            math.nan,
            ref_mean,
            math.nan,
            math.nan,
            "empty",
        )
    value = psi_of(finite, np.asarray(m.psi_edges), np.asarray(m.psi_fractions), config.psi_epsilon)
    d = ks_statistic(finite, np.asarray(levels), np.asarray(m.quantiles))
    n_eff = effective_size(finite.size, m.n, m.rho1)
    p = ks_pvalue(d, n_eff)
    alpha = config.ks_alpha / max(1, n_channels)
    status: Status = "ok"
    if value >= config.psi_threshold and p < alpha:
        status = "drift"
    elif value >= config.psi_warn or p < alpha:
        status = "warn"
    mean = float(finite.mean())
    spread = ref_std if ref_std > 0 else math.nan
    return ChannelDrift(
        m.name,
        kind,
        int(finite.size),
        nan_fraction,
        value,
        d,
        p,
        n_eff,
        mean,
        ref_mean,
        (mean - ref_mean) / spread,
        float(finite.std()) / spread,
        status,
    )


def _stamp(index: Sequence[Any] | None, bar: int) -> str:
    if index is None or not 0 <= bar < len(index):
        return str(bar)
    item = index[bar]
    return str(item.isoformat()) if hasattr(item, "isoformat") else str(item)


def _summaries(monitor: DriftMonitor, index: Sequence[Any] | None) -> tuple[DetectorSummary, ...]:
    state = monitor.state()
    out = []
    for name, st in state.items():
        bars = tuple(a.bar for a in monitor.alarms if a.detector == name)
        if name in monitor.windows:
            psis = [v for v in st["psi"].values() if math.isfinite(v)]
            statistic, threshold = (max(psis) if psis else math.nan), monitor.config.psi_threshold
        else:
            statistic, threshold = float(st["statistic"]), float(st["threshold"])
        out.append(
            DetectorSummary(
                name,
                len(bars),
                bars,
                tuple(_stamp(index, b) for b in bars),
                statistic,
                threshold,
                name in monitor.config.rollback_on,
            )
        )
    return tuple(out)


def _reasons(
    features: tuple[ChannelDrift, ...],
    actions: tuple[ChannelDrift, ...],
    alarms: list[DriftAlarm],
    config: DriftConfig,
    index: Sequence[Any] | None,
) -> tuple[str, ...]:
    reasons = []
    drifted = [c.name for c in features if c.status == "drift"]
    if "features" in config.rollback_on and len(drifted) >= config.min_drifted_features:
        reasons.append(
            f"features: {len(drifted)} features drifted (>= {config.min_drifted_features}): "
            + ", ".join(drifted)
        )
    moved = [c.name for c in actions if c.status == "drift"]
    if "actions" in config.rollback_on and moved:
        reasons.append("actions: the action distribution drifted on " + ", ".join(moved))
    seen: set[str] = set()
    for alarm in alarms:
        if alarm.rollback and alarm.detector not in seen:
            seen.add(alarm.detector)
            count = sum(1 for a in alarms if a.detector == alarm.detector)
            what = f" on {', '.join(alarm.channels)}" if alarm.channels else ""
            reasons.append(
                f"{alarm.detector}: {count} alarm(s){what}, first at bar {alarm.bar} "
                f"({_stamp(index, alarm.bar)})"
            )
    return tuple(reasons)


def drift_report(
    profile: ReferenceProfile,
    features: FloatArray,
    actions: FloatArray | None = None,
    returns: FloatArray | None = None,
    values: FloatArray | None = None,
    *,
    config: DriftConfig | None = None,
    index: Sequence[Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> DriftReport:
    """Compare a stretch of bars with ``profile`` (see the module docstring).

    ``features`` (T, F) or (T, N, F) in the profile's feature order; ``actions`` (T,) or (T, A);
    ``returns`` and ``values`` (T,); ``index`` the T bar timestamps (for readable alarm times).
    Rows are bars in time order; NaN rows (no decision yet) are skipped by every detector.
    """
    cfg = config or DriftConfig()
    raw = np.asarray(features, dtype=np.float64)
    n_features = len(profile.feature_names)
    if raw.ndim == 1 and n_features == 1:
        raw = raw[:, None]
    if raw.ndim == 3 and raw.shape[1] != profile.n_symbols:
        raise FeatureError(
            f"features have {raw.shape[1]} symbols; the profile was built on {profile.n_symbols}"
        )
    pooled = pool(raw, n_features)
    levels = profile.quantile_levels
    feats = tuple(
        channel_drift(m, "feature", pooled[:, j], levels, n_features, cfg)
        for j, m in enumerate(profile.features)
    )
    act = None
    acts: tuple[ChannelDrift, ...] = ()
    if actions is not None and profile.actions:
        act, _ = action_matrix(actions)
        if act.shape[1] != len(profile.actions):
            raise FeatureError(
                f"actions have {act.shape[1]} dimensions; the profile has {len(profile.actions)}"
            )
        acts = tuple(
            channel_drift(m, "action", act[:, i], levels, len(profile.actions), cfg)
            for i, m in enumerate(profile.actions)
        )
    v = None if values is None else np.asarray(values, dtype=np.float64).reshape(-1)
    r = None if returns is None else np.asarray(returns, dtype=np.float64).reshape(-1)
    value_drift = (
        None
        if v is None or profile.values is None
        else channel_drift(profile.values, "value", v, levels, 1, cfg)
    )
    return_drift = (
        None
        if r is None or profile.returns is None
        else channel_drift(profile.returns, "returns", r, levels, 1, cfg)
    )
    monitor = DriftMonitor(profile, cfg)
    feed(monitor, raw, act, r, v)
    n_bars = raw.shape[0]
    return DriftReport(
        n_bars=n_bars,
        start=_stamp(index, 0) if index is not None and n_bars else None,
        end=_stamp(index, n_bars - 1) if index is not None and n_bars else None,
        features=feats,
        actions=acts,
        values=value_drift,
        returns=return_drift,
        detectors=_summaries(monitor, index),
        alarms=tuple(monitor.alarms),
        rollback_reasons=_reasons(feats, acts, monitor.alarms, cfg, index),
        config=cfg,
        profile_created_at=profile.created_at,
        metadata={str(k): str(val) for k, val in (metadata or {}).items()},
    )


__all__ = ["ChannelDrift", "DetectorSummary", "DriftReport", "channel_drift", "drift_report"]
