"""Registration tags, guarded and audited alias moves, and a property test of the guard."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeforge.agents import PolicyRegistry
from tradeforge.agents.artifact import git_sha
from tradeforge.audit import AuditLog
from tradeforge.audit.verify import verify_chain
from tradeforge.core.errors import AgentError
from tradeforge.governance import (
    Check,
    GateResult,
    GovernanceError,
    PromotionRefused,
    RollbackDecision,
    default_audit_path,
    promote,
    record_gate,
    register_version,
    rollback,
    rollback_champion,
)
from tradeforge.governance.lifecycle import AUDIT_KIND, REFUSED_KIND, REQUIRED_GATES, gate_status

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


def gate(name: str, passed: bool) -> GateResult:
    check = Check.of("x", 1.0 if passed else 0.0, 0.5, passed, "synthetic")
    return GateResult.of(name, [check])  # type: ignore[arg-type]


def pass_all(registry: PolicyRegistry, name: str, version: int, audit: AuditLog) -> None:
    for g in ("offline", "shadow", "paper"):
        record_gate(registry, name, version, gate(g, True), actor="ci", audit=audit)


def test_registration_tags_provenance_and_audits_the_challenger(artifact_copy, mlflow_uri, audit):
    registry = PolicyRegistry(mlflow_uri)
    info = register_version(registry, artifact_copy, "spy", actor="trainer", audit=audit,
                            n_trials=24)  # fmt: skip
    assert (info.version, info.aliases) == (1, ("challenger",))
    manifest = json.loads((artifact_copy / "manifest.json").read_text())["files"]
    digest = hashlib.sha256(
        f"data.json:{manifest['data.json']}\nconfig.json:{manifest['config.json']}\n".encode()
    ).hexdigest()
    spec = json.loads((artifact_copy / "spec.json").read_text())
    assert info.tags["data_checksum"] == digest
    assert info.tags["feature_pipeline_hash"] == spec["feature_hash"]
    assert info.tags["git_commit"] == (git_sha() or "unknown")
    assert info.tags["configurations_tried"] == "24"
    assert info.tags["registered_by"] == "trainer"
    [entry] = audit.entries(kind=AUDIT_KIND)
    assert entry.data["alias"] == "challenger"
    assert (entry.data["from_version"], entry.data["to_version"]) == (None, 1)
    assert entry.data["actor"] == "trainer"
    # a plain registry registration carries the provenance tags too
    plain = registry.register(artifact_copy, "other")
    assert plain.tags["data_checksum"] == digest
    assert plain.tags["registered_by"]


def test_guarded_promotion_path_and_audit_trail(artifact_copy, mlflow_uri, audit):
    registry = PolicyRegistry(mlflow_uri)
    v1 = register_version(registry, artifact_copy, "m", actor="trainer", audit=audit).version
    v2 = register_version(registry, artifact_copy, "m", actor="trainer", audit=audit).version
    with pytest.raises(PromotionRefused, match=r"gates \['offline', 'shadow'\] not passed"):
        promote(registry, "m", v1, "canary", actor="ops", audit=audit)
    record_gate(registry, "m", v1, gate("offline", True), actor="ci", audit=audit)
    record_gate(registry, "m", v1, gate("shadow", True), actor="ci", audit=audit)
    assert registry.get("m", v1).tags["gate.offline"] == "passed"
    stored = GateResult.from_json(registry.get("m", v1).tags["gate.offline.json"])
    assert stored == gate("offline", True)
    promote(registry, "m", v1, "canary", actor="ops", audit=audit)
    assert registry.aliases("m")["canary"] == v1
    with pytest.raises(PromotionRefused, match=r"gates \['paper'\] not passed"):
        promote(registry, "m", v1, "champion", actor="ops", audit=audit)
    record_gate(registry, "m", v1, gate("paper", True), actor="ci", audit=audit)
    promote(registry, "m", v1, "champion", actor="ops", audit=audit)
    assert registry.aliases("m") == {"champion": v1, "challenger": v2}  # canary graduated
    # v2 fails paper: only a second approver (not the actor, not the trainer) gets it through
    pass_all(registry, "m", v2, audit)
    record_gate(registry, "m", v2, gate("paper", False), actor="ci", audit=audit)
    for approver, why in ((None, "no second approver"), ("  ", "no second approver"),
                          ("ops", "is the actor"), ("trainer", "registered \\(trained\\)")):  # fmt: skip
        with pytest.raises(PromotionRefused, match=why):
            promote(registry, "m", v2, "champion", actor="ops", audit=audit, approver=approver)
    assert registry.aliases("m")["champion"] == v1
    promote(registry, "m", v2, "champion", actor="ops", audit=audit, approver="risk-officer")
    assert registry.aliases("m") == {"champion": v2, "previous_champion": v1, "challenger": v2}
    assert registry.get("m", v2).tags["approval.champion"] == "risk-officer"
    moves = [e.data for e in audit.entries(kind=AUDIT_KIND)]
    last = moves[-1]
    assert (last["alias"], last["from_version"], last["to_version"]) == ("champion", v1, v2)
    assert (last["approver"], last["override"], last["previous_champion"]) == (
        "risk-officer", True, v1,
    )  # fmt: skip
    assert last["gates"] == {"offline": "passed", "shadow": "passed", "paper": "failed"}
    assert last["gate_results"]["paper"]["passed"] is False
    assert len(audit.entries(kind=REFUSED_KIND)) == 6
    # the manual rollback goes through the guard and is audited; v1 passed every gate
    back = rollback_champion(registry, "m", actor="ops", audit=audit)
    assert back.version == v1
    assert registry.aliases("m") == {"champion": v1, "challenger": v2}
    assert audit.entries(kind=AUDIT_KIND)[-1].data["action"] == "rollback"
    with pytest.raises(AgentError, match="no alias 'previous_champion'"):
        rollback_champion(registry, "m", actor="ops", audit=audit)
    assert verify_chain(audit.connection).ok


def test_a_gate_failing_later_takes_the_alias_away(artifact_copy, mlflow_uri, audit):
    registry = PolicyRegistry(mlflow_uri)
    v1 = register_version(registry, artifact_copy, "m", actor="t", audit=audit).version
    v2 = register_version(registry, artifact_copy, "m", actor="t", audit=audit).version
    pass_all(registry, "m", v1, audit)
    pass_all(registry, "m", v2, audit)
    promote(registry, "m", v1, "champion", actor="ops", audit=audit)
    promote(registry, "m", v2, "champion", actor="ops", audit=audit)
    record_gate(registry, "m", v2, gate("paper", False), actor="ci", audit=audit)
    assert registry.aliases("m") == {"champion": v1, "challenger": v2}
    demote = audit.entries(kind=AUDIT_KIND)[-1].data
    assert (demote["action"], demote["from_version"], demote["to_version"]) == ("demote", v2, v1)


def test_default_audit_path_sits_next_to_a_sqlite_store(tmp_path, monkeypatch):
    assert default_audit_path(f"sqlite:///{tmp_path}/r/mlflow.db") == tmp_path / "r" / "audit.db"
    monkeypatch.setenv("TRADEFORGE_HOME", str(tmp_path / "home"))
    expected = (tmp_path / "home" / "registry" / "audit.db").resolve()
    assert default_audit_path("http://mlflow:5000") == expected
    assert default_audit_path(None) == expected


# -- property: a version that failed or lacks a gate never holds canary/champion unapproved ----
@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory):
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("gov_property")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
    log = AuditLog(root / "audit.db")
    yield PolicyRegistry(uri), log
    log.close()


_names = itertools.count()
ACTOR, TRAINER = "ops", "trainer"
VALID_APPROVER = "second"
approvers = st.sampled_from([None, "", " ", ACTOR, TRAINER, VALID_APPROVER])
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("gate"),
            st.integers(1, 3),
            st.sampled_from(["offline", "shadow", "paper"]),
            st.booleans(),
        ),
        st.tuples(
            st.just("promote"),
            st.integers(1, 3),
            st.sampled_from(["shadow", "canary", "champion"]),
            approvers,
        ),
        st.tuples(st.just("rollback"), approvers),
        st.tuples(st.just("canary_rollback")),
    ),
    min_size=1,
    max_size=10,
)


def _invariant(registry: PolicyRegistry, name: str, audit: AuditLog) -> None:
    aliases = registry.aliases(name)
    for alias in ("canary", "champion"):
        version = aliases.get(alias)
        if version is None:
            continue
        info = registry.get(name, version)
        gates = gate_status(info)
        if all(gates[g] == "passed" for g in REQUIRED_GATES[alias]):
            continue
        approval = info.tags.get(f"approval.{alias}")
        assert approval == VALID_APPROVER, (alias, version, gates, info.tags)
        recorded = [e.data for e in audit.entries(kind=AUDIT_KIND, correlation_id=f"{name}:v{version}")
                    if e.data.get("alias") == alias and e.data.get("approver") == VALID_APPROVER]  # fmt: skip
        assert recorded, f"no audited approval of {name} v{version} as {alias}"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=ops)
def test_failed_gate_version_never_holds_canary_or_champion_unapproved(shared, sequence):
    registry, audit = shared
    name = f"prop-{next(_names)}"
    client = registry.client
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, source=f"/tmp/{name}", tags={"registered_by": TRAINER})
    for op in sequence:
        try:
            if op[0] == "gate":
                _, v, g, ok = op
                record_gate(registry, name, v, gate(g, ok), actor="ci", audit=audit)
            elif op[0] == "promote":
                _, v, alias, approver = op
                promote(registry, name, v, alias, actor=ACTOR, audit=audit, approver=approver)
            elif op[0] == "rollback":
                rollback_champion(registry, name, actor=ACTOR, audit=audit, approver=op[1])
            else:
                decision = RollbackDecision(0, datetime.now(UTC), (), 1.0)
                rollback(registry, name, decision, audit)
        except (PromotionRefused, AgentError, GovernanceError):
            pass
        _invariant(registry, name, audit)
