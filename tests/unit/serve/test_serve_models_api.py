"""Alias moves through the service's API (issue 13): a version with a failed paper gate is
refused by ``POST /api/v1/models/promote`` (409, audited), allowed with a second approver
(audited as an override); rollback restores the previous champion; no registry -> 422."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_serve_api import KEY, Metrics, StandIn

from tradeforge.agents import PolicyRegistry
from tradeforge.audit import AuditLog
from tradeforge.governance import Check, GateResult, record_gate
from tradeforge.governance.lifecycle import AUDIT_KIND, REFUSED_KIND
from tradeforge.serve.app import create_app
from tradeforge.serve.auth import Authenticator
from tradeforge.serve.config import RegistryConfig
from tradeforge.testing.registry import make_registry_store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
HEADERS = {"Authorization": f"Bearer {KEY}"}


def _gate(name: str, passed: bool) -> GateResult:
    check = Check.of("max_drawdown", 0.05 if passed else 0.31, 0.2, passed, "paper drawdown")
    return GateResult.of(name, [check])  # type: ignore[arg-type]


class RegistryStandIn(StandIn):
    def __init__(self, registry: RegistryConfig | None) -> None:
        super().__init__()
        self.registry_config = registry


@pytest.fixture
def setup(tmp_path: Path) -> tuple[TestClient, RegistryConfig, Path]:
    store = make_registry_store(tmp_path / "mlflow.db", name="spy", versions=2,
                                tags={"registered_by": "trainer"})  # fmt: skip
    cfg = RegistryConfig(model="spy", uri=f"sqlite:///{store}", audit_path=str(tmp_path / "a.db"))
    registry = PolicyRegistry(cfg.uri, create=False)
    with AuditLog(tmp_path / "a.db") as audit:
        for version in (1, 2):
            for name in ("offline", "shadow"):
                record_gate(registry, "spy", version, _gate(name, True), actor="ci", audit=audit)
        record_gate(registry, "spy", 1, _gate("paper", True), actor="ci", audit=audit)
        record_gate(registry, "spy", 2, _gate("paper", False), actor="ci", audit=audit)
    client = TestClient(create_app(RegistryStandIn(cfg), Authenticator(KEY), metrics=Metrics()))
    return client, cfg, tmp_path / "a.db"


def _moves(path: Path) -> list[tuple[str, dict]]:
    with AuditLog(path) as audit:
        return [(e.kind, e.data) for e in audit.entries() if e.kind in (AUDIT_KIND, REFUSED_KIND)]


def test_promote_refuses_a_paper_drawdown_breach_and_allows_it_with_a_second_approver(
    setup: tuple[TestClient, RegistryConfig, Path],
) -> None:
    client, cfg, audit_path = setup
    ok = client.post("/api/v1/models/promote", headers=HEADERS,
                     json={"version": 1, "to": "champion", "actor": "alice"})  # fmt: skip
    assert ok.status_code == 200, ok.text
    assert ok.json()["aliases"]["champion"] == 1
    refused = client.post("/api/v1/models/promote", headers=HEADERS,
                          json={"version": 2, "to": "champion", "actor": "alice"})  # fmt: skip
    assert refused.status_code == 409
    assert "paper" in refused.json()["detail"]
    assert "second approver" in refused.json()["detail"]
    registry = PolicyRegistry(cfg.uri, create=False)
    assert registry.aliases("spy")["champion"] == 1  # unchanged
    same_person = client.post("/api/v1/models/promote", headers=HEADERS,
                              json={"version": 2, "to": "champion", "actor": "alice",
                                    "approver": "alice"})  # fmt: skip
    assert same_person.status_code == 409
    approved = client.post("/api/v1/models/promote", headers=HEADERS,
                           json={"version": 2, "to": "champion", "actor": "alice",
                                 "approver": "bob"})  # fmt: skip
    assert approved.status_code == 200, approved.text
    assert approved.json()["aliases"] == {"challenger": 2, "champion": 2, "previous_champion": 1}
    assert approved.json()["gates"]["paper"] == "failed"
    moves = _moves(audit_path)
    kinds = [k for k, _ in moves]
    assert kinds == [AUDIT_KIND, REFUSED_KIND, REFUSED_KIND, AUDIT_KIND]
    last = moves[-1][1]
    assert (last["to_version"], last["approver"], last["override"]) == (2, "bob", True)
    back = client.post("/api/v1/models/rollback", headers=HEADERS,
                       json={"actor": "alice", "reason": "canary drawdown"})  # fmt: skip
    assert back.status_code == 200, back.text
    assert back.json()["aliases"]["champion"] == 1
    assert _moves(audit_path)[-1][1]["reason"] == "canary drawdown"


def test_alias_moves_need_credentials_a_registry_and_valid_bodies(
    setup: tuple[TestClient, RegistryConfig, Path],
) -> None:
    client, _, _ = setup
    body = {"version": 1, "to": "champion", "actor": "alice"}
    assert client.post("/api/v1/models/promote", json=body).status_code == 401
    bad = client.post("/api/v1/models/promote", headers=HEADERS, json={**body, "to": "nope"})
    assert bad.status_code == 409
    assert "to_alias = 'nope'" in bad.json()["detail"]
    assert client.post("/api/v1/models/promote", headers=HEADERS,
                       json={**body, "actor": " "}).status_code == 422  # fmt: skip
    assert client.post("/api/v1/models/rollback", headers=HEADERS,
                       json={"actor": "alice"}).status_code == 422  # fmt: skip
    bare = TestClient(create_app(RegistryStandIn(None), Authenticator(KEY), metrics=Metrics()))
    none = bare.post("/api/v1/models/promote", headers=HEADERS, json=body)
    assert none.status_code == 422
    assert "registry is not set" in none.json()["detail"]
