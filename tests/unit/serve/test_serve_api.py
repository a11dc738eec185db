"""API v1 and auth: 401 on every route but /healthz, key headers, session cookie + CSRF, kill and
resume with a reason, scoring errors that name the field."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tradeforge.core.errors import ConfigError
from tradeforge.serve.app import create_app
from tradeforge.serve.auth import SESSION_COOKIE, Authenticator
from tradeforge.serve.snapshot import PositionRow, Snapshot

KEY = "k" * 20
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _snapshot(**changes: Any) -> Snapshot:
    base = Snapshot(
        generated_at=NOW, version="v1", mode="paper", venue="local", strategy_id="swing",
        symbols=("AAPL", "IBM"), trading_state="active", killed=False, kill_reason="",
        state_reason="initial", broker_connected=True, reconciled=True, equity=101_000.0,
        cash=1_000.0, day_pnl=250.0, realized_pnl=0.0, unrealized_pnl=500.0, drawdown=-0.01,
        drawdown_limit=0.2, gross_exposure=0.99, net_exposure=0.99, max_gross=1.0, max_net=None,
        last_bar_time=NOW, data_age_s=1.0, last_decision_time=NOW,
        last_decision={"AAPL": 0.5, "IBM": 0.49}, next_bar_time=None, decision_latency_ms=0.4,
        positions=(PositionRow("AAPL", 10.0, 100.0, 105.0, 1050.0, 50.0, 0.0, 0.0104),),
        open_orders=(), recent_orders=(), fills=(), denials=(), limits=(), models=(),
        equity_curve=(), alerts=(), audit=(), audit_head_seq=3,
    )  # fmt: skip
    return replace(base, **changes)


class StandIn:
    """A service with a fixed snapshot that records kills, resumes and scores."""

    def __init__(self) -> None:
        self.snap = _snapshot()
        self.calls: list[tuple[str, str, str]] = []

    def snapshot(self) -> Snapshot:
        return self.snap

    def kill(self, reason: str, *, source: str = "api") -> Snapshot:
        self.calls.append(("kill", reason, source))
        self.snap = replace(self.snap, trading_state="halted", killed=True, kill_reason=reason)
        return self.snap

    def resume(self, reason: str, *, source: str = "api") -> Snapshot:
        self.calls.append(("resume", reason, source))
        self.snap = replace(self.snap, trading_state="active", killed=False)
        return self.snap

    def readiness(self) -> tuple[bool, list[str]]:
        return (not self.snap.problems, list(self.snap.problems))

    def score(self, observation: Any = None, symbol: str | None = None) -> dict[str, Any]:
        if symbol is not None and symbol not in self.snap.symbols:
            raise ConfigError(f"score: symbol = {symbol!r}; expected one of ['AAPL', 'IBM']")
        return {"model": "swing", "version": "v1", "action": [0.1, 0.2],
                "weights": {"AAPL": 0.1, "IBM": 0.2}, "latency_ms": 0.1, "bar_time": None}  # fmt: skip


class Metrics:
    def render(self) -> tuple[bytes, str]:
        return b"tradeforge_up 1\n", "text/plain; version=0.0.4"


@pytest.fixture
def service() -> StandIn:
    return StandIn()


@pytest.fixture
def client(service: StandIn) -> TestClient:
    return TestClient(create_app(service, Authenticator(KEY), metrics=Metrics()))


def _routes(client: TestClient) -> list[tuple[str, str]]:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    return [(m.upper(), p) for p, ops in schema["paths"].items() for m in ops]


def test_every_route_but_healthz_needs_credentials(client: TestClient) -> None:
    routes = _routes(client)
    assert ("GET", "/api/v1/status") in routes
    assert ("POST", "/api/v1/kill") in routes
    assert len(routes) >= 12
    for method, path in routes:
        answer = client.request(method, path.replace("{name}", "tiles"), json={})
        expected = 200 if path == "/healthz" else 401
        assert answer.status_code == expected, (method, path, answer.status_code)
    for path in ("/openapi.json", "/docs", "/events", "/static/plotly.min.js", "/"):
        assert client.get(path, headers={"accept": "application/json"}).status_code == 401, path


def test_both_key_headers_work_and_a_wrong_key_does_not(client: TestClient) -> None:
    bearer = client.get("/api/v1/status", headers={"Authorization": f"Bearer {KEY}"})
    assert bearer.status_code == 200
    body = bearer.json()
    assert body["equity"] == 101_000.0
    assert body["trading_state"] == "active"
    assert body["positions"] == 1
    assert body["ready"] is True
    assert client.get("/api/v1/positions", headers={"X-API-Key": KEY}).json()["positions"][0][
        "symbol"] == "AAPL"  # fmt: skip
    assert client.get("/api/v1/status", headers={"X-API-Key": KEY + "x"}).status_code == 401
    assert client.get("/api/v1/status", headers={"Authorization": "Basic abc"}).status_code == 401


def test_kill_and_resume_need_a_reason_and_are_passed_on(client: TestClient,
                                                         service: StandIn) -> None:  # fmt: skip
    headers = {"X-API-Key": KEY}
    empty = client.post("/api/v1/kill", json={"reason": "   "}, headers=headers)
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["field"] == "body.reason"
    missing = client.post("/api/v1/kill", json={}, headers=headers)
    assert missing.status_code == 422
    killed = client.post("/api/v1/kill", json={"reason": "fat finger"}, headers=headers)
    assert killed.status_code == 200
    assert killed.json()["trading_state"] == "halted"
    assert service.calls == [("kill", "fat finger", "api:key")]
    resumed = client.post("/api/v1/resume", json={"reason": "checked"}, headers=headers)
    assert resumed.json()["trading_state"] == "active"
    assert service.calls[-1] == ("resume", "checked", "api:key")


def test_a_session_cookie_reads_but_must_show_its_csrf_token_to_change_state(
    service: StandIn,
) -> None:
    auth = Authenticator(KEY)
    client = TestClient(create_app(service, auth, metrics=Metrics()))
    cookie, csrf = auth.issue_session()
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get("/api/v1/status").status_code == 200
    refused = client.post("/api/v1/kill", json={"reason": "x"})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    wrong = client.post("/api/v1/kill", json={"reason": "x"}, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    assert service.calls == []
    ok = client.post("/api/v1/kill", json={"reason": "x"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200
    assert service.calls == [("kill", "x", "api:session")]


def test_forged_or_expired_sessions_are_refused() -> None:
    now = [1000.0]
    auth = Authenticator(KEY, session_ttl_s=60, clock=lambda: now[0])
    cookie, _ = auth.issue_session()
    assert auth.read_session(cookie) is not None
    payload, _, sig = cookie.partition(".")
    assert auth.read_session(payload + "." + sig[:-2] + "AA") is None
    assert auth.read_session(payload[:-2] + "xx." + sig) is None
    assert Authenticator(KEY).read_session(cookie) is None  # another process: another secret
    now[0] += 61
    assert auth.read_session(cookie) is None


def test_short_keys_are_refused_with_the_rule() -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        Authenticator("short")


def test_readyz_metrics_and_score(client: TestClient, service: StandIn) -> None:
    headers = {"X-API-Key": KEY}
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz", headers=headers).status_code == 200
    service.snap = replace(service.snap, problems=("data stale: 40 s",))
    not_ready = client.get("/readyz", headers=headers)
    assert not_ready.status_code == 503
    assert not_ready.json()["problems"] == ["data stale: 40 s"]
    assert client.get("/metrics", headers=headers).text == "tradeforge_up 1\n"
    scored = client.post("/api/v1/score", json={"symbol": "AAPL"}, headers=headers)
    assert scored.status_code == 200
    assert scored.json()["weights"] == {"AAPL": 0.1, "IBM": 0.2}
    bad = client.post("/api/v1/score", json={"symbol": "TSLA"}, headers=headers)
    assert bad.status_code == 422
    assert "TSLA" in bad.json()["detail"]
    typo = client.post("/api/v1/score", json={"observations": [1]}, headers=headers)
    assert typo.status_code == 422
    assert typo.json()["detail"][0]["field"] == "body.observations"


def test_the_scrape_token_opens_metrics_and_nothing_else(service: StandIn) -> None:
    app = create_app(service, Authenticator(KEY), metrics=Metrics(), metrics_token="scrape-tok")
    client = TestClient(app)
    scrape = {"Authorization": "Bearer scrape-tok"}
    assert client.get("/metrics", headers=scrape).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/v1/status", headers=scrape).status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200


def test_serve_cli_refuses_a_bad_port_and_a_missing_run(capsys, tmp_path, monkeypatch) -> None:
    from tradeforge.testing.cli import run_cli

    config = tmp_path / "serve.yaml"
    config.write_text("serve:\n  policy: latest:quickstart\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "serve", str(config))
    assert code == 2
    assert "latest:quickstart" in err
    assert "tradeforge run configs/quickstart.yaml" in err
    (tmp_path / "policy").mkdir()
    code, _, err = run_cli(capsys, "serve", str(config), "--policy", str(tmp_path / "policy"),
                           "--port", "99999")  # fmt: skip
    assert code == 2
    assert "port = 99999" in err
