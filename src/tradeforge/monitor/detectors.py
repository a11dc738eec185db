"""Online change detectors on one standardised stream: Page-Hinkley, ADWIN and a lower CUSUM.

``river`` is not a dependency of tradeforge, so these are small numpy/stdlib implementations of
the published algorithms (river's ``drift.PageHinkley`` and ``drift.ADWIN`` follow the same
papers). Each detector takes one value per bar through :meth:`update`, which returns True on
the bar it alarms; after an alarm it restarts (Page-Hinkley, CUSUM) or keeps only the newer part
of its window (ADWIN). ``state()`` is a JSON-ready snapshot for reports and metrics.
NaN inputs are skipped (no update, no alarm).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from tradeforge.core.errors import ConfigError
from tradeforge.core.types import FloatArray
from tradeforge.monitor.config import AdwinConfig, PageHinkleyConfig


class Detector(Protocol):
    """What the monitor needs from a detector."""

    n_alarms: int
    alarm_statistic: float  # the statistic when the last alarm fired
    threshold: float

    def update(self, value: float) -> bool: ...

    def state(self) -> dict[str, Any]: ...


class PageHinkley:
    """Two-sided Page-Hinkley test of a change in mean around the running mean since the restart."""

    def __init__(self, config: PageHinkleyConfig | None = None) -> None:
        self.config = config or PageHinkleyConfig()
        self.n_alarms = 0
        self.alarm_statistic = math.nan
        self.threshold = self.config.threshold
        self._restart()

    def _restart(self) -> None:
        self.n = 0
        self.mean = 0.0
        self._up = 0.0  # sum of (x - mean - delta): grows when the mean goes up
        self._up_min = 0.0
        self._down = 0.0  # sum of (x - mean + delta): falls when the mean goes down
        self._down_max = 0.0

    @property
    def statistic(self) -> float:
        """The larger of the upward and downward test statistics."""
        return max(self._up - self._up_min, self._down_max - self._down)

    def update(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        cfg = self.config
        self.n += 1
        self.mean += (value - self.mean) / self.n
        self._up = cfg.alpha * self._up + (value - self.mean - cfg.delta)
        self._up_min = min(self._up_min, self._up)
        self._down = cfg.alpha * self._down + (value - self.mean + cfg.delta)
        self._down_max = max(self._down_max, self._down)
        if self.n >= cfg.min_instances and self.statistic > cfg.threshold:
            self.n_alarms += 1
            self.alarm_statistic = self.statistic
            self._restart()
            return True
        return False

    def state(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "threshold": self.config.threshold,
            "n": self.n,
            "n_alarms": self.n_alarms,
        }


class Adwin:
    """ADWIN on an exact window (numpy cumulative sums; every split is tested each ``clock``)."""

    def __init__(self, config: AdwinConfig | None = None) -> None:
        self.config = config or AdwinConfig()
        self.n_alarms = 0
        self.alarm_statistic = math.nan
        self.threshold = 1.0
        self._buffer: FloatArray = np.empty(2 * self.config.max_window, dtype=np.float64)
        self._start = 0
        self._stop = 0
        self._seen = 0
        self.last_gap = 0.0  # the largest |mean difference| / eps at the last check

    @property
    def width(self) -> int:
        return self._stop - self._start

    @property
    def window(self) -> FloatArray:
        out: FloatArray = self._buffer[self._start : self._stop].copy()
        return out

    def _append(self, value: float) -> None:
        if self._stop == self._buffer.size:  # compact: keep the live window at the front
            live = self._buffer[self._start : self._stop].copy()
            self._buffer[: live.size] = live
            self._start, self._stop = 0, live.size
        self._buffer[self._stop] = value
        self._stop += 1
        if self.width > self.config.max_window:
            self._start += 1

    def update(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        self._append(float(value))
        self._seen += 1
        if self._seen % self.config.clock != 0 or self.width < 2 * self.config.min_side:
            return False
        cut = self._find_cut()
        if cut is None:
            return False
        self._start += cut
        self.n_alarms += 1
        self.alarm_statistic = self.last_gap
        return True

    def _find_cut(self) -> int | None:
        """Index (within the window) of the newest split whose two means differ significantly."""
        cfg = self.config
        w = self._buffer[self._start : self._stop]
        n = w.size
        n0 = np.arange(cfg.min_side, n - cfg.min_side + 1)
        n1 = n - n0
        csum = np.cumsum(w)
        total = csum[-1]
        head = csum[n0 - 1]
        diff = np.abs(head / n0 - (total - head) / n1)
        variance = max(float(np.var(w)), 1.0)
        dd = math.log(2.0 * math.log(n) / cfg.delta)
        m_recip = 1.0 / n0 + 1.0 / n1
        eps = np.sqrt(2.0 * m_recip * variance * dd) + (2.0 / 3.0) * dd * m_recip
        ratio = diff / eps
        self.last_gap = float(ratio.max()) if ratio.size else 0.0
        hits = np.flatnonzero(ratio > 1.0)
        return int(n0[hits[-1]]) if hits.size else None

    def state(self) -> dict[str, Any]:
        w = self._buffer[self._start : self._stop]
        return {
            "statistic": self.last_gap,
            "threshold": 1.0,
            "width": int(w.size),
            "mean": float(w.mean()) if w.size else None,
            "n_alarms": self.n_alarms,
        }


class LowerCusum:
    """One-sided CUSUM for a fall in the mean: ``S = max(0, S - z - k)``, alarm when ``S > h``."""

    def __init__(self, k: float, h: float) -> None:
        if not (math.isfinite(h) and h > 0):
            raise ConfigError(f"cusum h = {h!r}; expected a finite threshold > 0")
        if not (math.isfinite(k) and k >= 0):
            raise ConfigError(f"cusum k = {k!r}; expected a finite reference value >= 0")
        self.k = float(k)
        self.h = float(h)
        self.threshold = self.h
        self.statistic = 0.0
        self.n_alarms = 0
        self.alarm_statistic = math.nan

    def update(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        self.statistic = max(0.0, self.statistic - value - self.k)
        if self.statistic > self.h:
            self.n_alarms += 1
            self.alarm_statistic = self.statistic
            self.statistic = 0.0
            return True
        return False

    def state(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "threshold": self.h,
            "k": self.k,
            "n_alarms": self.n_alarms,
        }


def alarm_bars(detector: Detector, values: FloatArray) -> list[int]:
    """Feed ``values`` one by one; the indices at which ``detector`` alarmed."""
    return [i for i, v in enumerate(np.asarray(values, dtype=np.float64)) if detector.update(v)]


__all__ = ["Adwin", "Detector", "LowerCusum", "PageHinkley", "alarm_bars"]
