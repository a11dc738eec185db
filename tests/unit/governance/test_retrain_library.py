"""``retrain``: a real tiny walk-forward on bundled S&P 500 bars, then a challenger and the shadow
alias only through the offline gate; a refusal is audited and names the failed check; a second
approver overrides it, audited; the champion is never moved."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tradeforge.agents.registry import PolicyRegistry
from tradeforge.audit.log import AuditLog
from tradeforge.core.errors import ConfigError
from tradeforge.experiment.retrain import RETRAIN_REFUSED_EXIT, retrain, with_end
from tradeforge.governance.gates import GateConfig
from tradeforge.testing.tiny_runs import run_tiny_experiment


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One real walk-forward, shared: ``runner`` hands it to every retrain of this module."""
    root = tmp_path_factory.mktemp("retrain")
    _, config, result = run_tiny_experiment(root, ("buy_and_hold", "momentum", "cash"), costs=True)
    seen: list[Any] = []

    def runner(cfg, out_dir):
        seen.append(cfg)
        return result

    return config, result, runner, seen


@pytest.fixture
def store(tmp_path: Path, tiny_run):
    """A registry whose v1 is the champion (the same artifact), and its audit log."""
    _, result, _, _ = tiny_run
    registry = PolicyRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    copy = tmp_path / "champion"
    shutil.copytree(result.folds[-1].artifact, copy)
    registry.register(copy, "spx", alias="champion", tags={"registered_by": "alice"})
    return registry, AuditLog(tmp_path / "audit.db")


def test_a_passing_retrain_registers_the_challenger_and_moves_shadow_never_champion(
    tiny_run, store
):
    config, result, runner, seen = tiny_run
    registry, audit = store
    out = retrain(config, actor="bot", model="spx", registry=registry, audit=audit,
                  runner=runner, end="2013-06-28")  # fmt: skip
    assert seen[-1].data.end == date(2013, 6, 28)
    assert out.gate.passed
    assert out.registered
    assert out.exit_code == 0
    assert out.version == 2
    assert out.refused is None
    aliases = registry.aliases("spx")
    assert aliases["challenger"] == 2
    assert aliases["shadow"] == 2
    assert aliases["champion"] == 1  # retrain never replaces the champion
    info = registry.get("spx", 2)
    assert info.tags["gate.offline"] == "passed"
    assert info.tags["configurations_tried"] == str(result.summary["configurations_tried"])
    assert info.tags["registered_by"] == "bot"
    assert float(info.tags["oos_sharpe"]) == result.metrics["sharpe"]
    assert info.tags["model_card"] == out.card == "model_card/spx-v2.md"
    moves = [(e.kind, e.data.get("alias"), e.data.get("to_version")) for e in audit.entries()]
    assert moves == [("governance.alias", "challenger", 2), ("governance.gate", None, None),
                     ("governance.alias", "shadow", 2)]  # fmt: skip
    # the card was logged as an artifact of the version's run and holds this run's values
    local = registry.client.download_artifacts(info.run_id, out.card, str(Path(out.run_dir)))
    text = Path(local).read_text(encoding="utf-8")
    assert "# Model card: spx v2" in text
    assert f"{result.metrics['sharpe']:.3f}" in text


def test_a_drawdown_breach_is_refused_by_the_retrain_job_and_audited(tiny_run, store):
    config, result, runner, _ = tiny_run
    registry, audit = store
    tight = GateConfig(max_drawdown=1e-6)
    out = retrain(config, actor="bot", model="spx", registry=registry, audit=audit,
                  runner=runner, gate_config=tight)  # fmt: skip
    assert not out.registered
    assert out.exit_code == RETRAIN_REFUSED_EXIT == 1
    assert out.gate.failed() == ["max_drawdown"]
    dd = -float(result.metrics["max_drawdown"])
    assert out.refused is not None
    assert f"max_drawdown = {dd:.6g} (threshold 1e-06" in out.refused
    assert [v.version for v in registry.versions("spx")] == [1]  # nothing registered
    assert registry.aliases("spx") == {"champion": 1}
    (entry,) = audit.entries()
    assert entry.kind == "governance.refused"
    assert entry.data["action"] == "retrain"
    assert entry.data["unmet_gates"] == ["offline"]
    assert entry.data["reason"] == out.refused


def test_a_second_approver_lets_a_failed_retrain_into_shadow_audited(tiny_run, store):
    config, _, runner, _ = tiny_run
    registry, audit = store
    tight = GateConfig(max_drawdown=1e-6)
    with pytest.raises(ConfigError, match="approver = 'bot' is the actor"):
        retrain(config, actor="bot", model="spx", registry=registry, audit=audit,
                runner=runner, gate_config=tight, approver="bot")  # fmt: skip
    out = retrain(config, actor="bot", model="spx", registry=registry, audit=audit,
                  runner=runner, gate_config=tight, approver="risk-officer")  # fmt: skip
    assert out.registered
    assert out.approver == "risk-officer"
    assert not out.gate.passed
    info = registry.get("spx", out.version)
    assert info.tags["gate.offline"] == "failed"
    assert info.tags["approval.shadow"] == "risk-officer"
    assert registry.aliases("spx")["shadow"] == out.version
    assert registry.aliases("spx")["champion"] == 1
    shadow = [e.data for e in audit.entries(kind="governance.alias") if e.data["alias"] == "shadow"]
    assert shadow[-1]["override"] is True
    assert shadow[-1]["approver"] == "risk-officer"


def test_with_end_cuts_the_data_and_switches_off_the_configs_own_registration(tiny_run):
    config, _, _, _ = tiny_run
    from tradeforge.experiment.config import TrackingOptions

    options = TrackingOptions.model_validate({"register": True, "model_name": "x"})
    tracked = config.model_copy(update={"tracking": options})
    cut = with_end(tracked, "2012-12-31")
    assert cut.data.end == date(2012, 12, 31)
    assert cut.tracking is not None
    assert cut.tracking.register_policy is False
    with pytest.raises(ConfigError, match=r"end = 2008-01-01 is before data\.start"):
        with_end(config, "2008-01-01")
    with pytest.raises(ConfigError, match="expected a date"):
        with_end(config, "soon")


def test_without_an_audit_log_the_refusal_goes_to_the_one_next_to_the_registry(
    tiny_run, store, tmp_path
):
    config, _, runner, _ = tiny_run
    registry, _ = store
    out = retrain(config, actor="bot", model="spx", registry=registry, runner=runner,
                  gate_config=GateConfig(max_drawdown=1e-6))  # fmt: skip
    assert not out.registered
    with AuditLog(tmp_path / "audit.db") as audit:  # next to mlflow.db
        (entry,) = audit.entries(kind="governance.refused")
    assert entry.data["reason"] == out.refused
