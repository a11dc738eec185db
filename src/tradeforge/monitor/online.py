"""The online drift monitor: one ``update`` per bar, alarms the rollback triggers can act on.

:class:`DriftMonitor` holds, for a :class:`~tradeforge.monitor.profile.ReferenceProfile`:

* ``features`` / ``actions`` / ``values``: a :class:`ChannelWindow` (rolling PSI and KS of the
  last bars against the reference marginals);
* Page-Hinkley and ADWIN on the standardised return, action-mean and value streams;
* the calibrated lower CUSUM on returns.

The trading node calls :meth:`DriftMonitor.update` after each bar; every returned
:class:`DriftAlarm` says whether it is a rollback trigger under ``DriftConfig.rollback_on``
(features count only when at least ``min_drifted_features`` drift together). The batch report
(:func:`tradeforge.monitor.drift_report.drift_report`) runs this same monitor over the stream.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tradeforge.core.errors import FeatureError
from tradeforge.core.types import FloatArray
from tradeforge.monitor.config import DriftConfig
from tradeforge.monitor.detectors import Adwin, Detector, LowerCusum, PageHinkley
from tradeforge.monitor.profile import Marginal, ReferenceProfile, StreamStats
from tradeforge.monitor.stats import (
    bin_counts,
    bin_hits,
    effective_size,
    ks_pvalue,
    ks_statistic,
    padded_bins,
    psi_from_counts,
)


@dataclass(frozen=True)
class DriftAlarm:
    """One alarm: the bar (0-based, counted by the monitor), the detector and what it saw."""

    bar: int
    detector: str
    statistic: float
    threshold: float
    channels: tuple[str, ...] = ()
    rollback: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "bar": self.bar,
            "detector": self.detector,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "channels": list(self.channels),
            "rollback": self.rollback,
        }


class ChannelWindow:
    """Rolling PSI (and KS where PSI passes) of the last ``window`` bars of several channels.

    Each update adds one bar: a row per symbol (``(C,)`` or ``(N, C)``). Every ``step`` bars
    with a full window, a channel drifts when its PSI >= ``psi_threshold`` and its KS p-value is
    below ``ks_alpha / C``; the detector alarms when any channel drifts, then clears its window.
    """

    def __init__(
        self,
        name: str,
        marginals: tuple[Marginal, ...],
        levels: tuple[float, ...],
        config: DriftConfig,
    ) -> None:
        self.name = name
        self.marginals = marginals
        self.levels = np.asarray(levels, dtype=np.float64)
        self.config = config
        self._edges, self._expected = padded_bins(
            [m.psi_edges for m in marginals], [m.psi_fractions for m in marginals]
        )
        self._quantiles = [np.asarray(m.quantiles, dtype=np.float64) for m in marginals]
        self._n_bins = self._expected.shape[1]
        self._counts: FloatArray = np.zeros_like(self._expected)  # bin counts of the window
        self._bars: deque[tuple[FloatArray, FloatArray]] = deque()  # (rows, their bin counts)
        self._since = 0
        self.n_alarms = 0
        self.last_psi: dict[str, float] = {}
        self.last_ks_pvalue: dict[str, float] = {}

    def bar_counts(self, rows: FloatArray) -> FloatArray:
        """``(T, C, B)`` bin counts of T bars at once (``rows`` (T, C) or (T, N, C))."""
        x = np.asarray(rows, dtype=np.float64)
        x = x[:, None, :] if x.ndim == 2 else x
        out: FloatArray = np.empty((x.shape[0], *self._expected.shape))
        step = max(1, 200_000 // max(1, x.shape[1] * x.shape[2] * self._n_bins))
        for start in range(0, x.shape[0], step):
            chunk = x[start : start + step]
            t, n, c = chunk.shape
            hits = bin_hits(chunk.reshape(t * n, c), self._edges, self._n_bins)
            out[start : start + t] = hits.reshape(t, n, c, self._n_bins).sum(axis=1)
        return out

    def update(
        self, bar: int, rows: FloatArray, counts: FloatArray | None = None
    ) -> DriftAlarm | None:
        """Add one bar's rows (``counts``: their bin counts when already computed)."""
        x = np.asarray(rows, dtype=np.float64)
        x = x[None, :] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != len(self.marginals):
            raise FeatureError(
                f"{self.name} row has shape {np.shape(rows)}; expected ({len(self.marginals)},) "
                f"or (N, {len(self.marginals)}) in the profile's order"
            )
        window = self.config.feature_window
        if counts is None:
            counts = bin_counts(x, self._edges, self._n_bins)
        self._bars.append((x, counts))
        self._counts += counts
        if len(self._bars) > window.window:
            self._counts -= self._bars.popleft()[1]
        self._since += 1
        if len(self._bars) < window.window or self._since < window.step:
            return None
        self._since = 0
        return self._check(bar)

    def _check(self, bar: int) -> DriftAlarm | None:
        cfg = self.config
        alpha = cfg.ks_alpha / len(self.marginals)
        drifted: list[str] = []
        worst = 0.0
        values = psi_from_counts(self._counts, self._expected, cfg.psi_epsilon)
        data: FloatArray | None = None
        for j, m in enumerate(self.marginals):
            if m.n == 0:
                continue
            value = float(values[j])
            self.last_psi[m.name] = value
            if not value >= cfg.psi_threshold:
                continue
            if data is None:
                data = np.concatenate([rows for rows, _ in self._bars], axis=0)
            col = data[:, j]
            col = col[~np.isnan(col)]
            d = ks_statistic(col, self.levels, self._quantiles[j])
            p = ks_pvalue(d, effective_size(col.size, m.n, m.rho1))
            self.last_ks_pvalue[m.name] = p
            if p < alpha:
                drifted.append(m.name)
                worst = max(worst, value)
        if not drifted:
            return None
        self.n_alarms += 1
        self._bars.clear()
        self._counts[:] = 0.0
        rollback = self.name in cfg.rollback_on and (
            self.name != "features" or len(drifted) >= cfg.min_drifted_features
        )
        return DriftAlarm(bar, self.name, worst, cfg.psi_threshold, tuple(drifted), rollback)

    def state(self) -> dict[str, Any]:
        return {
            "n_alarms": self.n_alarms,
            "bars_in_window": len(self._bars),
            "psi": dict(self.last_psi),
            "ks_pvalue": dict(self.last_ks_pvalue),
        }


class DriftMonitor:
    """Every drift detector of a profile, fed one bar at a time (see the module docstring)."""

    def __init__(self, profile: ReferenceProfile, config: DriftConfig | None = None) -> None:
        self.profile = profile
        self.config = cfg = config or DriftConfig()
        levels = profile.quantile_levels
        self.windows: dict[str, ChannelWindow] = {
            "features": ChannelWindow("features", profile.features, levels, cfg)
        }
        if profile.actions:
            self.windows["actions"] = ChannelWindow("actions", profile.actions, levels, cfg)
        if profile.values is not None:
            self.windows["values"] = ChannelWindow("values", (profile.values,), levels, cfg)
        self.streams: dict[str, StreamStats] = {}
        for key, stats in (
            ("returns", profile.return_stream),
            ("actions", profile.action_stream),
            ("values", profile.value_stream),
        ):
            if stats is not None:
                self.streams[key] = stats
        self.detectors: dict[str, Detector] = {}
        self._by_stream: dict[str, list[tuple[str, Detector]]] = {}
        for key in self.streams:
            for kind in cfg.stream_detectors:
                name = f"{kind}:{key}"
                detector: Detector = (
                    PageHinkley(cfg.page_hinkley) if kind == "page_hinkley" else Adwin(cfg.adwin)
                )
                self.detectors[name] = detector
                self._by_stream.setdefault(key, []).append((name, detector))
        self.cusum = None if profile.cusum is None else LowerCusum(profile.cusum.k, profile.cusum.h)
        self.bar = -1
        self.alarms: list[DriftAlarm] = []

    def update(
        self,
        features: FloatArray | None = None,
        action: FloatArray | float | None = None,
        ret: float | None = None,
        value: float | None = None,
        *,
        counts: Mapping[str, FloatArray] | None = None,
    ) -> list[DriftAlarm]:
        """Add one bar (any part may be None); the alarms raised on it.

        ``counts`` (batch replay only) holds the bar's bin counts per window, precomputed by
        :meth:`ChannelWindow.bar_counts`.
        """
        pre = counts or {}
        self.bar += 1
        raised: list[DriftAlarm] = []
        cfg = self.config
        if features is not None:
            self._window("features", features, raised, pre.get("features"))
        if action is not None and "actions" in self.windows:
            a = np.atleast_1d(np.asarray(action, dtype=np.float64))
            self._window("actions", a, raised, pre.get("actions"))
            finite = [float(v) for v in a if v == v]  # per-bar mean, without numpy overhead
            if finite:
                self._stream("actions", sum(finite) / len(finite), raised)
        if value is not None and math.isfinite(value):
            if "values" in self.windows:
                self._window("values", np.array([value]), raised, pre.get("values"))
            self._stream("values", float(value), raised)
        if ret is not None and math.isfinite(ret):
            self._stream("returns", float(ret), raised)
            if self.cusum is not None and self.profile.cusum is not None:
                z = (float(ret) - self.profile.cusum.mean) / self.profile.cusum.std
                if self.cusum.update(z):
                    name = "cusum:returns"
                    raised.append(
                        DriftAlarm(
                            self.bar,
                            name,
                            self.cusum.alarm_statistic,
                            self.cusum.h,
                            ("returns",),
                            name in cfg.rollback_on,
                        )
                    )
        self.alarms.extend(raised)
        return raised

    def _window(
        self, key: str, rows: FloatArray, raised: list[DriftAlarm], counts: FloatArray | None
    ) -> None:
        window = self.windows.get(key)
        if window is not None:
            alarm = window.update(self.bar, rows, counts)
            if alarm is not None:
                raised.append(alarm)

    def _stream(self, key: str, x: float, raised: list[DriftAlarm]) -> None:
        stats = self.streams.get(key)
        if stats is None:
            return
        z = (x - stats.mean) / stats.scale
        for name, detector in self._by_stream.get(key, ()):
            if detector.update(z):
                raised.append(
                    DriftAlarm(
                        self.bar,
                        name,
                        detector.alarm_statistic,
                        detector.threshold,
                        (key,),
                        name in self.config.rollback_on,
                    )
                )

    def state(self) -> dict[str, Any]:
        """JSON-ready snapshot: every detector's statistic, threshold and alarm count."""
        out: dict[str, Any] = {name: w.state() for name, w in self.windows.items()}
        for name, detector in self.detectors.items():
            out[name] = detector.state()
        if self.cusum is not None:
            out["cusum:returns"] = self.cusum.state()
        return out

    def rollback_alarms(self) -> list[DriftAlarm]:
        """The alarms so far that are rollback triggers."""
        return [a for a in self.alarms if a.rollback]


def feed(
    monitor: DriftMonitor,
    features: FloatArray | None,
    actions: FloatArray | None,
    returns: FloatArray | None,
    values: FloatArray | None,
) -> None:
    """Run aligned per-bar arrays through ``monitor`` (features (T, F) or (T, N, F))."""
    lengths = {
        name: len(arr)
        for name, arr in (
            ("features", features),
            ("actions", actions),
            ("returns", returns),
            ("values", values),
        )
        if arr is not None
    }
    if len(set(lengths.values())) > 1:
        raise FeatureError(
            f"per-bar inputs have different lengths {lengths}; expected one row per bar each"
        )
    n = next(iter(lengths.values()), 0)
    pre: dict[str, FloatArray] = {}
    for key, arr in (("features", features), ("actions", actions), ("values", values)):
        window = monitor.windows.get(key)
        if window is not None and arr is not None:
            x = np.asarray(arr, dtype=np.float64)
            pre[key] = window.bar_counts(x[:, None] if x.ndim == 1 else x)
    for t in range(n):
        monitor.update(
            None if features is None else features[t],
            None if actions is None else actions[t],
            None if returns is None else float(returns[t]),
            None if values is None else float(values[t]),
            counts={key: c[t] for key, c in pre.items()},
        )


__all__ = ["ChannelWindow", "DriftAlarm", "DriftMonitor", "feed"]
