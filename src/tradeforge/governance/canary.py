"""The canary rollback decision: watch a canary sleeve bar by bar, decide, roll back.

:class:`CanaryMonitor` is fed one :class:`CanaryBar` per bar (the sleeve's equity, the bar's
return, drift alarms from :class:`~tradeforge.monitor.online.DriftMonitor` and/or per-feature
PSI values, error and unknown-order counts, the decision latency) and returns a
:class:`RollbackDecision` on the FIRST bar on which any trigger fires:

* ``daily_loss``: the sleeve lost more than ``max_daily_loss`` since the last close of the
  previous day (the first bar's equity on the first day);
* ``drawdown``: the sleeve is more than ``max_drawdown`` below its running peak;
* ``cusum``: the lower CUSUM on standardised returns alarmed; ``k``, ``h`` and the
  standardisation come from :func:`~tradeforge.monitor.calibration.calibrate_cusum` on the
  backtest out-of-sample returns (:meth:`CanaryReference.from_returns`);
* ``psi``: at least ``min_drifted_features`` features have PSI above ``psi_threshold``;
* ``drift``: a drift alarm that its monitor marks as a rollback trigger;
* ``errors`` / ``unknown_orders``: any error or order in an unknown state;
* ``latency``: the decision latency above ``latency_slo_s`` on ``latency_breaches`` bars in a row.

:func:`rollback` then removes the ``canary`` alias (when there is one), else restores
``champion`` to ``previous_champion``; it writes ONE audit event and calls ``notify`` once.

Out of scope here: flattening the canary sleeve (REDUCING -> flat) inside the running service
and its risk engine; the caller (the service) does that when it gets the decision.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from pydantic import Field

from tradeforge.agents.registry import CANARY, CHAMPION, PREVIOUS_CHAMPION, PolicyRegistry
from tradeforge.audit.log import AuditLogBase
from tradeforge.core.config import FrozenConfig
from tradeforge.core.types import FloatArray
from tradeforge.governance.errors import GovernanceError
from tradeforge.governance.lifecycle import champion_eligible, correlation_id
from tradeforge.monitor.calibration import CusumCalibration, calibrate_cusum
from tradeforge.monitor.config import CusumConfig
from tradeforge.monitor.detectors import LowerCusum
from tradeforge.monitor.online import DriftAlarm

log = logging.getLogger(__name__)
ROLLBACK_KIND = "governance.rollback"


class CanaryConfig(FrozenConfig):
    """Rollback triggers of a canary sleeve (module docstring); fractions of sleeve equity."""

    max_daily_loss: float = Field(0.02, gt=0, lt=1)
    max_drawdown: float = Field(0.05, gt=0, lt=1)
    psi_threshold: float = Field(0.25, gt=0)
    min_drifted_features: int = Field(3, ge=1)
    latency_slo_s: float = Field(1.0, gt=0)
    latency_breaches: int = Field(3, ge=1)
    cusum: bool = True


@dataclass(frozen=True)
class CanaryReference:
    """What the canary is compared with: the calibrated CUSUM on the backtest OOS returns."""

    cusum: CusumCalibration | None = None

    @classmethod
    def from_returns(
        cls, oos_returns: FloatArray, config: CusumConfig | None = None
    ) -> CanaryReference:
        """Calibrate the CUSUM on the backtest out-of-sample returns (seeded bootstrap)."""
        return cls(cusum=calibrate_cusum(np.asarray(oos_returns, dtype=np.float64), config))


@dataclass(frozen=True)
class CanaryBar:
    """One bar of the canary sleeve. ``ret`` defaults to the equity change since the last bar."""

    timestamp: datetime
    equity: float
    ret: float | None = None
    psi: Mapping[str, float] | None = None
    drift_alarms: Sequence[DriftAlarm] = ()
    errors: int = 0
    unknown_orders: int = 0
    latency_s: float | None = None


@dataclass(frozen=True)
class Trigger:
    """One fired trigger."""

    name: str
    value: float
    threshold: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": _json_float(self.value),
                "threshold": _json_float(self.threshold), "detail": self.detail}  # fmt: skip


@dataclass(frozen=True)
class RollbackDecision:
    """The monitor's decision: the bar (0-based) and time it fired on and every trigger."""

    bar: int
    timestamp: datetime
    triggers: tuple[Trigger, ...]
    equity: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reasons(self) -> list[str]:
        return [t.name for t in self.triggers]

    def to_dict(self) -> dict[str, Any]:
        return {"bar": self.bar, "timestamp": self.timestamp.isoformat(),
                "equity": _json_float(self.equity),
                "triggers": [t.to_dict() for t in self.triggers], **self.extra}  # fmt: skip


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


class CanaryMonitor:
    """Feeds the triggers bar by bar (module docstring); :meth:`update` returns the decision on
    the bar a trigger first fires and None on every other bar (also after the decision, which
    stays in :attr:`decision`)."""

    def __init__(
        self, config: CanaryConfig | None = None, reference: CanaryReference | None = None
    ) -> None:
        self.config = cfg = config or CanaryConfig()
        self.reference = reference or CanaryReference()
        calibration = self.reference.cusum
        if cfg.cusum and calibration is None:
            raise GovernanceError(
                "canary cusum = True but the reference has no CUSUM calibration; expected "
                "CanaryReference.from_returns(backtest OOS returns) or cusum = False"
            )
        self._cusum = (
            LowerCusum(calibration.k, calibration.h)
            if cfg.cusum and calibration is not None
            else None
        )
        self.bar = -1
        self.peak = math.nan
        self.last_equity = math.nan
        self.day_open = math.nan
        self.day: Any = None
        self.latency_run = 0
        self.decision: RollbackDecision | None = None

    def update(self, bar: CanaryBar) -> RollbackDecision | None:
        self.bar += 1
        cfg = self.config
        equity = float(bar.equity)
        if not (math.isfinite(equity) and equity > 0):
            raise GovernanceError(
                f"canary bar {bar.timestamp}: equity = {bar.equity}; expected a finite value > 0"
            )
        ret = bar.ret
        if ret is None and math.isfinite(self.last_equity):
            ret = equity / self.last_equity - 1.0
        day = bar.timestamp.date()
        if day != self.day:
            self.day = day
            self.day_open = self.last_equity if math.isfinite(self.last_equity) else equity
        self.last_equity = equity
        self.peak = equity if not math.isfinite(self.peak) else max(self.peak, equity)
        fired: list[Trigger] = []
        loss = 1.0 - equity / self.day_open
        if loss > cfg.max_daily_loss:
            fired.append(Trigger("daily_loss", loss, cfg.max_daily_loss,
                                 f"sleeve down {loss:.2%} today"))  # fmt: skip
        dd = 1.0 - equity / self.peak
        if dd > cfg.max_drawdown:
            fired.append(Trigger("drawdown", dd, cfg.max_drawdown,
                                 f"sleeve {dd:.2%} below its peak"))  # fmt: skip
        calibration = self.reference.cusum
        if self._cusum is not None and calibration is not None and ret is not None:
            z = (float(ret) - calibration.mean) / calibration.std
            if self._cusum.update(z):
                fired.append(Trigger("cusum", self._cusum.alarm_statistic, self._cusum.h,
                                     "lower CUSUM on returns alarmed"))  # fmt: skip
        if bar.psi:
            drifted = sorted(k for k, v in bar.psi.items() if v > cfg.psi_threshold)
            if len(drifted) >= cfg.min_drifted_features:
                fired.append(Trigger("psi", float(len(drifted)), float(cfg.min_drifted_features),
                                     f"PSI > {cfg.psi_threshold} on {drifted}"))  # fmt: skip
        for alarm in bar.drift_alarms:
            if alarm.rollback:
                fired.append(Trigger(f"drift:{alarm.detector}", alarm.statistic, alarm.threshold,
                                     f"drift alarm on {list(alarm.channels)}"))  # fmt: skip
        if bar.errors > 0:
            fired.append(Trigger("errors", float(bar.errors), 0.0, f"{bar.errors} errors"))
        if bar.unknown_orders > 0:
            fired.append(Trigger("unknown_orders", float(bar.unknown_orders), 0.0,
                                 f"{bar.unknown_orders} orders in an unknown state"))  # fmt: skip
        if bar.latency_s is not None and bar.latency_s > cfg.latency_slo_s:
            self.latency_run += 1
        else:
            self.latency_run = 0
        if self.latency_run >= cfg.latency_breaches:
            fired.append(Trigger("latency", float(self.latency_run), float(cfg.latency_breaches),
                                 f"decision latency above {cfg.latency_slo_s} s on "
                                 f"{self.latency_run} bars in a row"))  # fmt: skip
        if not fired or self.decision is not None:
            return None
        self.decision = RollbackDecision(self.bar, bar.timestamp, tuple(fired), equity)
        return self.decision


Notify = Callable[[dict[str, Any]], Any]


def rollback(
    registry: PolicyRegistry,
    name: str,
    decision: RollbackDecision,
    audit: AuditLogBase,
    notify: Notify | None = None,
    *,
    actor: str = "canary-monitor",
    target: Literal["auto", "canary", "champion"] = "auto",
) -> dict[str, Any]:
    """Act on ``decision``: remove ``canary`` (``target="canary"``, or ``auto`` when a canary
    alias exists), else point ``champion`` back at ``previous_champion`` (dropping that alias;
    when the previous champion no longer qualifies for champion the alias is removed instead:
    no version is left trading). ONE audit event (kind ``governance.rollback``) is written in the
    same transaction as the alias moves, then ``notify(alert)`` is called once with the alert
    (also returned). A failing ``notify`` raises after the rollback is committed."""
    aliases = registry.aliases(name)
    mode = target
    if mode == "auto":
        mode = "canary" if CANARY in aliases else "champion"
    alert: dict[str, Any] = {
        "kind": ROLLBACK_KIND, "severity": "critical", "model": name, "actor": actor,
        "reasons": decision.reasons, "decision": decision.to_dict(),
    }  # fmt: skip
    if mode == "canary":
        if CANARY not in aliases:
            raise GovernanceError(f"{name!r} has no alias 'canary' to remove; aliases: {aliases}")
        alert.update(action="remove_canary", alias=CANARY, from_version=aliases[CANARY],
                     to_version=None)  # fmt: skip
    else:
        if CHAMPION not in aliases:
            raise GovernanceError(f"{name!r} has no champion to roll back; aliases: {aliases}")
        previous = aliases.get(PREVIOUS_CHAMPION)
        restore = previous is not None and champion_eligible(registry.get(name, previous))
        alert.update(action="restore_previous_champion" if restore else "remove_champion",
                     alias=CHAMPION, from_version=aliases[CHAMPION],
                     to_version=previous if restore else None)  # fmt: skip
    with audit.transaction() as cur:
        if mode == "canary":
            registry.delete_alias(name, CANARY)
        else:
            if alert["to_version"] is not None:
                registry.set_alias(name, CHAMPION, int(alert["to_version"]))
            else:
                registry.delete_alias(name, CHAMPION)
            if PREVIOUS_CHAMPION in aliases:
                registry.delete_alias(name, PREVIOUS_CHAMPION)
        audit.record(cur, ROLLBACK_KIND, alert, correlation_id(name, "rollback"))
    log.warning("rolled back %s (%s): %s", name, alert["action"], ", ".join(decision.reasons))
    if notify is not None:
        notify(dict(alert))
    return alert


__all__ = [
    "ROLLBACK_KIND",
    "CanaryBar",
    "CanaryConfig",
    "CanaryMonitor",
    "CanaryReference",
    "RollbackDecision",
    "Trigger",
    "rollback",
]
