"""The service's retraining job (``schedule.retrain``): the retrain runs in a worker thread, one at
a time, each cadence slot once (JobLedger); a model that breaches the drawdown budget is refused
by the job and audited; a recorded second approver lets it into shadow, audited; the champion is
never moved. The walk-forward is one real tiny run on bundled S&P 500 bars."""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tradeforge.agents.registry import PolicyRegistry
from tradeforge.audit.log import AuditLog
from tradeforge.core.config import validate_config
from tradeforge.core.errors import ConfigError
from tradeforge.serve.jobs import RETRAIN_RUN, JobLedger, RetrainJobConfig, RetrainWorker
from tradeforge.serve.scheduler import ScheduleConfig
from tradeforge.testing.tiny_runs import run_tiny_experiment


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrain-job")
    path, _, result = run_tiny_experiment(root, costs=True)
    return path, result


@pytest.fixture
def service(tmp_path: Path, tiny):
    """A registry with a champion (v1), its audit log, a job ledger, and a recording notify."""
    _, result = tiny
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    copy = tmp_path / "champion"
    shutil.copytree(result.folds[-1].artifact, copy)
    PolicyRegistry(uri).register(copy, "spx", alias="champion", tags={"registered_by": "alice"})
    ledger = JobLedger(tmp_path / "jobs.sqlite")
    alerts: list = []
    yield uri, tmp_path / "audit.db", ledger, alerts
    ledger.close()


def _job(config: Path, uri: str, audit: Path, **extra) -> RetrainJobConfig:
    raw = {"config": str(config), "model": "spx", "registry_uri": uri, "audit": str(audit),
           "actor": "svc", **extra}  # fmt: skip
    return validate_config(RetrainJobConfig, raw)


def _runner(result, started=None, release=None):
    def run(cfg, out_dir):
        if started is not None:
            started.set()
            release.wait(30)
        return result

    return run


def test_a_drawdown_breach_is_refused_by_the_retrain_job_and_audited(tiny, service):
    path, result = tiny
    uri, audit_path, ledger, alerts = service
    job = _job(path, uri, audit_path, gates={"max_drawdown": 1e-6})
    worker = RetrainWorker(ledger, job, notify=alerts.append, runner=_runner(result))
    assert worker.submit("every7d:1") is True
    assert worker.join(60)
    run = ledger.get(RETRAIN_RUN, "every7d:1")
    assert run is not None
    assert run.status == "ok"
    assert run.detail.startswith("refused: offline gate failed: max_drawdown = ")
    registry = PolicyRegistry(uri)
    assert [v.version for v in registry.versions("spx")] == [1]
    assert registry.aliases("spx") == {"champion": 1}
    (alert,) = alerts
    assert alert.severity == "warning"
    assert "refused by the offline gate" in alert.title
    with AuditLog(audit_path) as audit:
        (entry,) = audit.entries()
    assert entry.kind == "governance.refused"
    assert entry.data["action"] == "retrain"
    assert entry.data["actor"] == "svc"


def test_with_a_recorded_second_approver_the_job_lets_it_into_shadow_audited(tiny, service):
    path, result = tiny
    uri, audit_path, ledger, alerts = service
    job = _job(path, uri, audit_path, gates={"max_drawdown": 1e-6}, approver="risk-officer")
    worker = RetrainWorker(ledger, job, notify=alerts.append, runner=_runner(result))
    assert worker.submit("every7d:2")
    assert worker.join(60)
    run = ledger.get(RETRAIN_RUN, "every7d:2")
    assert run is not None
    assert run.detail == (
        "registered spx v2 (challenger, shadow); offline gate failed, approved by risk-officer"
    )
    registry = PolicyRegistry(uri)
    assert registry.aliases("spx") == {"champion": 1, "challenger": 2, "shadow": 2}
    assert registry.get("spx", 2).tags["approval.shadow"] == "risk-officer"
    assert alerts[0].severity == "info"
    with AuditLog(audit_path) as audit:
        shadow = [e.data for e in audit.entries(kind="governance.alias")
                  if e.data["alias"] == "shadow"]  # fmt: skip
    assert len(shadow) == 1
    assert shadow[0]["override"] is True
    assert shadow[0]["approver"] == "risk-officer"
    assert shadow[0]["gates"]["offline"] == "failed"


def test_one_retrain_at_a_time_and_each_slot_once(tiny, service):
    path, result = tiny
    uri, audit_path, ledger, alerts = service
    started, release = threading.Event(), threading.Event()
    job = _job(path, uri, audit_path)
    worker = RetrainWorker(ledger, job, notify=alerts.append,
                           runner=_runner(result, started, release))  # fmt: skip
    assert worker.submit("every7d:3")
    assert started.wait(30)
    assert worker.running
    assert worker.submit("every7d:4") is False  # still running: that slot is skipped
    skipped = ledger.get(RETRAIN_RUN, "every7d:4")
    assert skipped is not None
    assert skipped.status == "skipped"
    release.set()
    assert worker.join(60)
    assert ledger.get(RETRAIN_RUN, "every7d:3").status == "ok"  # type: ignore[union-attr]
    assert worker.submit("every7d:3") is False  # a slot runs once
    assert [r.key for r in ledger.runs(RETRAIN_RUN)] == ["every7d:4", "every7d:3"]
    assert PolicyRegistry(uri).aliases("spx") == {"champion": 1, "challenger": 2, "shadow": 2}


def test_a_failing_retrain_is_ledgered_as_error_and_alerted(service, tmp_path):
    uri, audit_path, ledger, alerts = service
    job = _job(tmp_path / "missing.yaml", uri, audit_path)
    worker = RetrainWorker(ledger, job, notify=alerts.append)
    assert worker.submit("every7d:5")
    assert worker.join(30)
    run = ledger.get(RETRAIN_RUN, "every7d:5")
    assert run is not None
    assert run.status == "error"
    assert "missing.yaml" in run.detail
    assert alerts[0].title == "Retraining failed"


def test_schedule_retrain_needs_a_cadence_and_keys_by_slot():
    with pytest.raises(ConfigError, match="retrain_every_days = None"):
        validate_config(ScheduleConfig, {"retrain": {"config": "x.yaml"}})
    config = validate_config(
        ScheduleConfig, {"retrain_every_days": 7, "retrain": {"config": "x.yaml"}}
    )
    # 7-day slots counted from 1970-01-01 (a Thursday), in exchange time
    first = datetime(2024, 11, 28, 23, 0, tzinfo=UTC)
    assert config.retrain_key(first) == "every7d:2865"
    assert config.retrain_key(datetime(2024, 12, 4, 23, tzinfo=UTC)) == "every7d:2865"
    assert config.retrain_key(datetime(2024, 12, 5, 23, tzinfo=UTC)) == "every7d:2866"


def test_the_services_retrain_callback_hands_the_slot_to_one_worker(tmp_path: Path):
    from types import SimpleNamespace

    from tradeforge.serve.runtime import TradingService

    alerts: list = []
    ledger = JobLedger(tmp_path / "jobs.sqlite")
    raw = {"retrain_every_days": 7, "retrain": {"config": str(tmp_path / "missing.yaml")}}
    schedule = validate_config(ScheduleConfig, raw)
    service = SimpleNamespace(config=SimpleNamespace(schedule=schedule),
                              scheduler=SimpleNamespace(ledger=ledger),
                              _notify=alerts.append)  # fmt: skip
    when = datetime(2024, 11, 28, 23, 0, tzinfo=UTC)
    TradingService._retrain_due(service, when)  # type: ignore[arg-type]
    worker = service._retrainer
    assert worker.join(30)
    run = ledger.get(RETRAIN_RUN, "every7d:2865")
    assert run is not None
    assert run.status == "error"  # the missing experiment YAML, reported, not raised
    TradingService._retrain_due(service, when)  # type: ignore[arg-type]
    assert service._retrainer is worker  # one worker; the slot is not run again
    assert worker.join(30)
    assert len(ledger.runs(RETRAIN_RUN)) == 1
    assert [a.title for a in alerts] == ["Retraining failed"]
    # without schedule.retrain the job only says that retraining is due
    told: list = []
    plain = SimpleNamespace(config=SimpleNamespace(schedule=ScheduleConfig(retrain_every_days=7)),
                            alerts=SimpleNamespace(notify=told.append),
                            program=SimpleNamespace(name="spx"))  # fmt: skip
    TradingService._retrain_due(plain, when)  # type: ignore[arg-type]
    assert [a.title for a in told] == ["Retraining is due"]
    ledger.close()
