"""Canary monitor triggers and the rollback: alias restored, one audit event, one alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tradeforge.agents import PolicyRegistry, load_policy
from tradeforge.governance import (
    CanaryBar,
    CanaryConfig,
    CanaryMonitor,
    CanaryReference,
    Check,
    GateResult,
    GovernanceError,
    promote,
    record_gate,
    register_version,
    rollback,
)
from tradeforge.governance.canary import ROLLBACK_KIND
from tradeforge.monitor.config import CusumConfig
from tradeforge.monitor.online import DriftAlarm

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
T0 = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
NO_CUSUM = CanaryConfig(cusum=False)


def minute(i: int) -> datetime:
    return T0 + timedelta(minutes=i)


def quiet(monitor: CanaryMonitor, n: int, equity: float = 10_000.0) -> None:
    for i in range(n):
        assert monitor.update(CanaryBar(minute(i), equity * (1 + 1e-5 * (i % 3)))) is None


@pytest.fixture(scope="module")
def reference() -> CanaryReference:
    rng = np.random.default_rng(7)
    oos = rng.normal(2e-4, 1e-3, 400)
    return CanaryReference.from_returns(
        oos, CusumConfig(target_arl0=1000, n_paths=200, path_length=10_000)
    )


def test_injected_loss_decides_on_that_bar():
    monitor = CanaryMonitor(NO_CUSUM)
    quiet(monitor, 10)
    decision = monitor.update(CanaryBar(minute(10), 9_700.0))
    assert decision is not None
    assert decision.bar == 10
    assert decision.reasons == ["daily_loss"]
    assert decision.triggers[0].value == pytest.approx(0.03, abs=2e-4)
    # the decision is made once; later bars do not return it again
    assert monitor.update(CanaryBar(minute(11), 9_000.0)) is None
    assert monitor.decision is decision


def test_drawdown_across_days_and_the_daily_loss_resets():
    monitor = CanaryMonitor(NO_CUSUM)
    day = timedelta(days=1)
    # -1.5 % a day for four days: never a 2 % day, but 5.9 % below the peak on day 4
    for k, equity in enumerate([100.0, 98.5, 97.0225, 95.5672]):
        assert monitor.update(CanaryBar(T0 + k * day, equity)) is None
    decision = monitor.update(CanaryBar(T0 + 4 * day, 94.1337))
    assert decision is not None
    assert decision.reasons == ["drawdown"]


def test_psi_errors_unknown_orders_drift_and_latency_triggers():
    cases = [
        (CanaryBar(minute(5), 1e4, psi={"a": 0.3, "b": 0.4, "c": 0.26, "d": 0.1}), ["psi"]),
        (CanaryBar(minute(5), 1e4, errors=1), ["errors"]),
        (CanaryBar(minute(5), 1e4, unknown_orders=2), ["unknown_orders"]),
        (CanaryBar(minute(5), 1e4, drift_alarms=(DriftAlarm(5, "features", 0.4, 0.25,
                                                            ("x",), True),)), ["drift:features"]),
    ]  # fmt: skip
    for bar, reasons in cases:
        monitor = CanaryMonitor(NO_CUSUM)
        quiet(monitor, 5)
        decision = monitor.update(bar)
        assert decision is not None
        assert decision.reasons == reasons
    # two drifted features, a non-rollback alarm: nothing
    monitor = CanaryMonitor(NO_CUSUM)
    alarm = DriftAlarm(0, "page_hinkley:values", 60.0, 50.0, ("values",), False)
    bar = CanaryBar(minute(0), 1e4, psi={"a": 0.3, "b": 0.4}, drift_alarms=(alarm,))
    assert monitor.update(bar) is None
    # latency: 2 slow bars, a fast one, then 3 slow in a row -> decided on the third
    monitor = CanaryMonitor(CanaryConfig(cusum=False, latency_slo_s=0.5))
    slow = [0.9, 0.8, 0.1, 0.7, 0.9]
    assert [monitor.update(CanaryBar(minute(i), 1e4, latency_s=s)) for i, s in
            enumerate(slow)] == [None] * 5  # fmt: skip
    decision = monitor.update(CanaryBar(minute(5), 1e4, latency_s=0.6))
    assert decision is not None
    assert decision.reasons == ["latency"]


def test_cusum_is_calibrated_on_the_backtest_returns(reference):
    calibration = reference.cusum
    assert calibration is not None
    assert calibration.h > 0
    monitor = CanaryMonitor(CanaryConfig(max_daily_loss=0.5, max_drawdown=0.5), reference)
    # returns as in the backtest: no alarm over 100 bars
    rng = np.random.default_rng(11)
    equity = 1e4
    for i, r in enumerate(rng.normal(2e-4, 1e-3, 100)):
        equity *= 1 + r
        assert monitor.update(CanaryBar(minute(i), equity, ret=float(r))) is None
    # a steady fall of 3 standard deviations a bar: the CUSUM alarms within a few bars
    for j in range(100, 110):
        decision = monitor.update(CanaryBar(minute(j), equity, ret=-3e-3))
        if decision is not None:
            break
    assert decision is not None
    assert decision.reasons == ["cusum"]
    assert decision.bar <= 103
    with pytest.raises(GovernanceError, match="no CUSUM calibration"):
        CanaryMonitor(CanaryConfig())


def _pass_all(registry, version, audit):
    for g in ("offline", "shadow", "paper"):
        result = GateResult.of(g, [Check.of("x", 1.0, 0.5, True, "synthetic")])  # type: ignore[arg-type]
        record_gate(registry, "spy", version, result, actor="ci", audit=audit)


def test_rollback_restores_the_previous_champion_with_one_audit_event_and_one_alert(
    artifact_copy, mlflow_uri, audit, tmp_path
):
    registry = PolicyRegistry(mlflow_uri)
    old = register_version(registry, artifact_copy, "spy", actor="trainer", audit=audit).version
    (artifact_copy / "note.txt").write_text("retrained")  # a different artifact for v2
    from tradeforge.agents.artifact import write_manifest

    write_manifest(artifact_copy)
    new = register_version(registry, artifact_copy, "spy", actor="trainer", audit=audit).version
    for v in (old, new):
        _pass_all(registry, v, audit)
        promote(registry, "spy", v, "champion", actor="ops", audit=audit)
    assert registry.aliases("spy")["champion"] == new
    assert (registry.download("spy", "champion", tmp_path / "a") / "note.txt").is_file()

    monitor = CanaryMonitor(NO_CUSUM)
    quiet(monitor, 30)
    before = len(audit.entries())
    decision = monitor.update(CanaryBar(minute(30), 9_600.0))  # injected 4 % loss
    assert decision is not None
    assert decision.bar == 30
    alerts: list[dict] = []
    alert = rollback(registry, "spy", decision, audit, notify=alerts.append)
    assert registry.aliases("spy") == {"champion": old, "challenger": new}
    # reloading through the registry (a new client on the same store) gives the old version
    again = PolicyRegistry(mlflow_uri)
    assert again.get("spy", "champion").version == old
    restored = again.download("spy", "champion", tmp_path / "b")
    assert not (restored / "note.txt").exists()
    assert load_policy(restored).spec == load_policy(artifact_copy).spec
    events = audit.entries()[before:]
    assert [e.kind for e in events] == [ROLLBACK_KIND]
    assert events[0].data["from_version"] == new
    assert events[0].data["to_version"] == old
    assert events[0].data["reasons"] == ["daily_loss"]
    assert alerts == [alert]
    assert alert["action"] == "restore_previous_champion"


def test_rollback_of_a_canary_removes_the_alias(artifact_copy, mlflow_uri, audit):
    registry = PolicyRegistry(mlflow_uri)
    v = register_version(registry, artifact_copy, "spy", actor="trainer", audit=audit).version
    _pass_all(registry, v, audit)
    promote(registry, "spy", v, "canary", actor="ops", audit=audit)
    monitor = CanaryMonitor(NO_CUSUM)
    decision = monitor.update(CanaryBar(minute(0), 1e4, errors=1))
    assert decision is not None
    calls: list[dict] = []
    rollback(registry, "spy", decision, audit, notify=calls.append)
    assert "canary" not in registry.aliases("spy")
    assert len(calls) == 1
    assert calls[0]["action"] == "remove_canary"
    assert len(audit.entries(kind=ROLLBACK_KIND)) == 1
    with pytest.raises(GovernanceError, match="no champion to roll back"):
        rollback(registry, "spy", decision, audit)
