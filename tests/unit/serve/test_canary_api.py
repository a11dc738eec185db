"""The canary's and the shadow's state in /api/v1/status, /api/v1/models and the models page."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi.testclient import TestClient
from test_serve_api import KEY, Metrics, StandIn

from tradeforge.serve.app import create_app
from tradeforge.serve.auth import Authenticator
from tradeforge.serve.snapshot import ModelRow

CANARY: dict[str, Any] = {
    "active": False, "model": "swing", "version": 2, "share": 0.05, "equity": 48_958.69,
    "notional_cap": 49_000.0, "rolled_back": True, "reason": "daily_loss",
    "last_decision": {"bar": 2, "timestamp": "2010-01-06T00:00:00+00:00", "equity": 0.98,
                      "triggers": [{"name": "daily_loss", "value": 0.016, "threshold": 0.002,
                                    "detail": "sleeve down 1.60% today"}]},
    "bars_to_flat": 1,
}  # fmt: skip
SHADOW: dict[str, Any] = {"active": True, "model": "swing", "version": 3, "bars": 14,
                          "agreement": 0.4213, "sign_agreement": 0.5, "errors": 0,
                          "simulated_equity": 1.0123}  # fmt: skip
HEADERS = {"Authorization": f"Bearer {KEY}"}


def _client() -> TestClient:
    service = StandIn()
    service.snap = replace(
        service.snap, canary=CANARY, shadow=SHADOW,
        models=(ModelRow("running", "swing", "swing-v1"),
                ModelRow("canary", "swing", "2", {}, {"share": 0.05, "equity": 48_958.69}),
                ModelRow("shadow", "swing", "3", {}, {"agreement": 0.4213})),
    )  # fmt: skip
    return TestClient(create_app(service, Authenticator(KEY), metrics=Metrics()))


def test_status_and_models_carry_the_canary_and_the_shadow() -> None:
    client = _client()
    status = client.get("/api/v1/status", headers=HEADERS).json()
    assert status["canary"]["rolled_back"] is True
    assert status["canary"]["reason"] == "daily_loss"
    assert status["canary"]["share"] == 0.05
    assert status["shadow"]["agreement"] == 0.4213
    models = client.get("/api/v1/models", headers=HEADERS).json()
    assert [m["alias"] for m in models["models"]] == ["running", "canary", "shadow"]
    assert models["canary"]["last_decision"]["triggers"][0]["name"] == "daily_loss"
    assert models["shadow"]["sign_agreement"] == 0.5


def test_the_models_page_shows_the_sleeve_and_the_shadow_agreement() -> None:
    page = _client().get("/models", headers=HEADERS).text
    assert 'data-testid="canary-row" data-rolled-back="true"' in page
    assert "5.00%" in page
    assert "48,958.69" in page
    assert "daily_loss" in page
    assert "2010-01-06T00:00:00+00:00" in page
    assert 'data-testid="shadow-row"' in page
    assert "0.421" in page


def test_without_a_canary_the_sections_are_absent() -> None:
    service = StandIn()
    client = TestClient(create_app(service, Authenticator(KEY), metrics=Metrics()))
    assert client.get("/api/v1/status", headers=HEADERS).json()["canary"] is None
    assert client.get("/api/v1/models", headers=HEADERS).json()["shadow"] is None
    assert "canary-table" not in client.get("/models", headers=HEADERS).text
