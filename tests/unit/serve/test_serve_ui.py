"""The dashboard (serve.ui, serve.events, serve.charts) against a stand-in service, over real
HTTP: uvicorn on 127.0.0.1 in a thread, httpx as the client."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import anyio
import httpx
import pytest
from serve_ui_support import (
    API_KEY,
    RunningServer,
    StandInService,
    make_app,
    serve_in_thread,
    simulate_fill,
)

from tradeforge.core.errors import ConfigError
from tradeforge.serve.charts import equity_figure
from tradeforge.serve.events import HEARTBEAT_S, POLL_S, snapshot_events
from tradeforge.serve.ui import (
    CONTENT_SECURITY_POLICY,
    FRAGMENTS,
    KILL_REASON_MISSING,
    PAGES,
    fmt_age,
    fmt_money,
    fmt_qty,
    make_ui_router,
    plotly_js_path,
)

PAGE_PATHS = [path for path, _t, _l in PAGES]
HTML = {"Accept": "text/html,application/xhtml+xml"}
PROTECTED_GETS = [
    *PAGE_PATHS, "/events", "/ui/chart/equity", *[f"/ui/fragments/{n}" for n in FRAGMENTS],
    "/static/plotly.min.js", "/static/dashboard.js", "/static/dashboard.css",
]  # fmt: skip


@dataclass
class Dash:
    service: StandInService
    server: RunningServer
    client: httpx.Client


@pytest.fixture
def dash() -> Iterator[Dash]:
    service = StandInService()
    app = make_app(service)
    with serve_in_thread(app) as server, httpx.Client(base_url=server.url, timeout=5.0) as client:
        yield Dash(service, server, client)


def login(client: httpx.Client) -> str:
    """Log in through the form; the page's CSRF token."""
    r = client.post("/login", data={"api_key": API_KEY})
    assert r.status_code == 303
    page = client.get("/")
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert match, page.text[:500]
    return match.group(1)


def text_of(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


# -- login ----------------------------------------------------------------------------------------
def test_login_sets_an_httponly_samesite_strict_session_cookie(dash: Dash) -> None:
    r = dash.client.post("/login", data={"api_key": API_KEY, "next": "/risk"})
    assert r.status_code == 303
    assert r.headers["location"] == "/risk"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("tf_session=")
    attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert "httponly" in attrs
    assert "samesite=strict" in attrs
    assert "path=/" in attrs
    page = dash.client.get("/risk")
    assert page.status_code == 200
    token = re.search(r'<meta name="csrf-token" content="([^"]*)">', page.text)
    assert token
    assert len(token.group(1)) >= 20


def test_login_with_a_wrong_key_is_401_with_the_form_and_no_cookie(dash: Dash) -> None:
    r = dash.client.post("/login", data={"api_key": "not-the-key-at-all-0000"})
    assert r.status_code == 401
    assert "set-cookie" not in r.headers
    assert 'data-testid="login-error"' in r.text
    assert "That API key is not valid." in r.text
    assert 'data-testid="login-form"' in r.text
    assert dash.client.get("/", headers=HTML).status_code == 401


def test_login_never_redirects_off_the_host(dash: Dash) -> None:
    r = dash.client.post("/login", data={"api_key": API_KEY, "next": "//evil.example/x"})
    assert r.headers["location"] == "/"


def test_logout_needs_csrf_and_clears_the_cookie(dash: Dash) -> None:
    token = login(dash.client)
    assert dash.client.post("/logout").status_code == 403
    r = dash.client.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    assert 'tf_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    assert dash.client.get("/positions").status_code == 401


# -- auth on every route --------------------------------------------------------------------------
@pytest.mark.parametrize("path", PROTECTED_GETS)
def test_every_route_is_401_without_credentials(dash: Dash, path: str) -> None:
    r = dash.client.get(path, headers={"Accept": "application/json"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "log in at /login" in r.json()["detail"]


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_a_browser_without_a_session_gets_the_login_page_with_401(dash: Dash, path: str) -> None:
    r = dash.client.get(path, headers=HTML)
    assert r.status_code == 401
    assert 'data-testid="login-form"' in r.text
    assert f'name="next" value="{path}"' in r.text
    assert ".badge-halted" in r.text  # the stylesheet is inlined: /static needs a session
    assert "/static/" not in r.text
    assert "77,089" not in r.text  # nothing of the snapshot leaks


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_every_page_is_200_with_a_session_and_with_the_key(dash: Dash, path: str) -> None:
    with httpx.Client(base_url=dash.server.url, timeout=5.0) as keyed:
        r = keyed.get(path, headers={"Authorization": f"Bearer {API_KEY}"})
        assert r.status_code == 200
    login(dash.client)
    r = dash.client.get(path)
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["x-frame-options"] == "DENY"
    assert 'data-testid="trading-state"' in r.text
    assert 'data-testid="mode-banner"' in r.text


def test_post_routes_are_401_without_credentials(dash: Dash) -> None:
    for path in ("/ui/kill", "/ui/resume", "/logout"):
        assert dash.client.post(path, data={"reason": "x"}).status_code == 401
    assert dash.service.calls == []


# -- page content ---------------------------------------------------------------------------------
def test_overview_shows_the_snapshots_values(dash: Dash) -> None:
    login(dash.client)
    snap = dash.service.snapshot()
    html = dash.client.get("/").text
    text = text_of(html)
    assert snap.equity is not None
    assert snap.day_pnl is not None
    assert fmt_money(snap.equity) in text  # e.g. 77,089.57
    assert f"{snap.equity:,.2f}" == fmt_money(snap.equity)
    assert f"{snap.day_pnl:+,.2f}" in text
    assert "PAPER TRADING" in text
    assert 'data-state="active"' in html
    assert "ACTIVE" in text
    assert "95 s" in text  # data age
    assert "2013-02-28 00:00:00 UTC" in text  # last bar (bundled AAPL)
    assert "connected" in text
    assert "reconciled" in text
    assert 'data-testid="equity-chart"' in html
    figure = json.loads(re.search(r'id="equity-figure">(.*?)</script>', html, re.S).group(1))
    assert figure["data"][0]["y"][-1] == pytest.approx(snap.equity)
    assert len(figure["data"][0]["x"]) == len(snap.equity_curve) == 40


def test_positions_page_lists_positions_orders_fills_and_denials(dash: Dash) -> None:
    login(dash.client)
    html = dash.client.get("/positions").text
    rows = re.findall(r'data-testid="position-row" data-symbol="(\w+)"', html)
    assert rows == ["AAPL", "MSFT"]
    assert 'data-order="tf-demo-20130228T2100-0" data-status="partially_filled"' in html
    assert "fill-1" in html
    assert "max_order_notional: 60,000 &gt; 50,000" in html


def test_models_risk_audit_alerts_pages_show_their_data(dash: Dash) -> None:
    login(dash.client)
    models = dash.client.get("/models").text
    assert re.findall(r'data-testid="model-row" data-alias="(\w+)"', models) == [
        "running", "champion", "challenger",
    ]  # fmt: skip
    assert "1.120" in models
    assert "0.840" in models
    assert "1.310" in models
    risk = dash.client.get("/risk").text
    assert 'data-limit="max_orders_per_day" data-level="warn"' in risk  # 19 of 20
    assert 'data-limit="max_gross_exposure" data-level="ok"' in risk
    assert "936:00:00" in risk  # 39 days active
    audit = dash.client.get("/audit").text
    assert 'data-testid="audit-head-seq">42<' in audit
    assert re.findall(r'data-testid="audit-row" data-seq="(\d+)"', audit) == ["42", "41"]
    alerts = dash.client.get("/alerts").text
    assert 'data-status="failed" class="row-failed"' in alerts
    assert "connection refused" in alerts
    assert 'data-testid="alerts-failed"' in alerts


def test_the_halted_badge_shows_when_the_service_is_halted(dash: Dash) -> None:
    login(dash.client)
    dash.service.update(trading_state="halted", state_reason="drawdown 21% > 20%")
    html = dash.client.get("/").text
    assert re.search(
        r'class="badge badge-halted" data-testid="trading-state" data-state="halted">HALTED<', html
    )
    assert "drawdown 21% &gt; 20%" in html
    assert re.search(r'data-testid="resume-form"(?! hidden)', html)


def test_fragments_render_the_live_regions(dash: Dash) -> None:
    login(dash.client)
    simulate_fill(dash.service)
    rows = dash.client.get("/ui/fragments/positions").text
    assert re.findall(r'data-symbol="(\w+)"', rows) == ["AAPL", "MSFT", "IBM"]
    assert "<html" not in rows
    tiles = dash.client.get("/ui/fragments/tiles").text
    assert fmt_money(dash.service.snapshot().equity) in tiles
    r = dash.client.get("/ui/fragments/secrets")
    assert r.status_code == 404
    assert "expected one of" in r.json()["detail"]
    chart = dash.client.get("/ui/chart/equity").json()
    assert len(chart["data"][0]["y"]) == 41


# -- kill / resume --------------------------------------------------------------------------------
def test_kill_without_the_csrf_token_is_403_and_does_nothing(dash: Dash) -> None:
    login(dash.client)
    r = dash.client.post("/ui/kill", data={"reason": "test", "confirm": "yes"})
    assert r.status_code == 403
    r = dash.client.post(
        "/ui/kill", data={"reason": "test", "confirm": "yes", "csrf_token": "wrong"}
    )
    assert r.status_code == 403
    assert dash.service.calls == []
    assert dash.service.snapshot().trading_state == "active"


def test_kill_asks_for_confirmation_then_halts_and_the_page_shows_halted(dash: Dash) -> None:
    token = login(dash.client)
    r = dash.client.post("/ui/kill", data={"reason": "broker outage", "csrf_token": token})
    assert r.status_code == 200
    assert 'data-testid="kill-confirm"' in r.text
    assert 'data-testid="confirm-reason">broker outage<' in r.text
    assert dash.service.calls == []  # not yet
    r = dash.client.post(
        "/ui/kill", data={"reason": "broker outage", "confirm": "yes", "csrf_token": token}
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/"
    assert dash.service.calls == [("kill", "broker outage", "dashboard")]
    html = dash.client.get("/").text
    assert re.search(r'data-state="halted">HALTED<', html)
    assert 'data-testid="kill-switch"' in html
    assert re.search(r'data-testid="kill-form" hidden', html)


def test_kill_with_an_empty_reason_is_rejected_with_a_clear_message(dash: Dash) -> None:
    token = login(dash.client)
    for reason in ("", "   "):
        r = dash.client.post(
            "/ui/kill", data={"reason": reason, "confirm": "yes", "csrf_token": token}
        )
        assert r.status_code == 400
        assert 'data-testid="form-error"' in r.text
        assert KILL_REASON_MISSING in unescape(r.text)
    assert dash.service.calls == []


def test_a_service_error_is_shown_not_swallowed(dash: Dash) -> None:
    token = login(dash.client)

    def refuse(reason: str, *, source: str = "api") -> None:
        raise ConfigError("kill reason is too long; expected at most 200 characters")

    dash.service.kill = refuse  # type: ignore[method-assign]
    r = dash.client.post("/ui/kill", data={"reason": "x", "confirm": "yes", "csrf_token": token})
    assert r.status_code == 400
    assert "expected at most 200 characters" in r.text


def test_resume_after_kill_goes_back_to_active(dash: Dash) -> None:
    token = login(dash.client)
    dash.service.kill("drill", source="api")
    r = dash.client.post(
        "/ui/resume", data={"reason": "drill over", "confirm": "yes", "csrf_token": token}
    )
    assert r.status_code == 303
    assert dash.service.calls[-1] == ("resume", "drill over", "dashboard")
    assert 'data-state="active">ACTIVE<' in dash.client.get("/").text


def test_key_clients_need_no_csrf_token(dash: Dash) -> None:
    r = dash.client.post(
        "/ui/kill", data={"reason": "scripted", "confirm": "yes"},
        headers={"X-API-Key": API_KEY},
    )  # fmt: skip
    assert r.status_code == 303
    assert dash.service.calls == [("kill", "scripted", "dashboard")]


# -- static files ---------------------------------------------------------------------------------
def test_static_files_come_from_this_host(dash: Dash) -> None:
    login(dash.client)
    r = dash.client.get("/static/plotly.min.js")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "private, max-age=86400"
    assert "etag" in r.headers
    assert len(r.content) == plotly_js_path().stat().st_size > 1_000_000
    assert dash.client.get("/static/dashboard.js").text.count("EventSource") >= 1
    assert "badge-halted" in dash.client.get("/static/dashboard.css").text
    assert dash.client.get("/static/../ui.py").status_code == 404
    assert dash.client.get("/static/other.js").status_code == 404


def test_pages_reference_no_other_host(dash: Dash) -> None:
    login(dash.client)
    for path in PAGE_PATHS:
        html = dash.client.get(path).text
        urls = re.findall(r'(?:src|href|action)="([^"]*)"', html)
        assert urls, path
        assert all(u.startswith("/") or u.startswith("data:") for u in urls), (path, urls)
    assert "http" not in dash.client.get("/static/dashboard.js").text


# -- formatting and charts ------------------------------------------------------------------------
def test_formatters() -> None:
    assert fmt_money(1234.5) == "1,234.50"
    assert fmt_money(-3.0, True) == "-3.00"
    assert fmt_money(None) == "—"
    assert fmt_qty(300.0) == "300"
    assert fmt_qty(0.125) == "0.125"
    assert fmt_age(95.0) == "95 s"
    assert fmt_age(600.0) == "10.0 min"


def test_equity_figure_follows_the_curve() -> None:
    snap = StandInService().snapshot()
    fig = equity_figure(snap)
    assert fig["data"][0]["x"][0] == snap.equity_curve[0].ts.isoformat()
    assert fig["data"][0]["y"] == [p.equity for p in snap.equity_curve]
    assert fig["config"]["displaylogo"] is False


def test_router_rejects_bad_intervals() -> None:
    with pytest.raises(ConfigError, match="heartbeat_s"):
        make_ui_router(poll_s=1.0, heartbeat_s=0.5)


# -- live events ----------------------------------------------------------------------------------
def _read_events(lines: Iterator[str], want: int, timeout_s: float) -> list[tuple[str, dict]]:
    """The next ``want`` events from an SSE stream's line iterator (fewer after ``timeout_s``)."""
    events: list[tuple[str, dict]] = []
    name, data = "", ""
    deadline = time.monotonic() + timeout_s
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and name:
            events.append((name, json.loads(data)))
            name, data = "", ""
            if len(events) >= want:
                break
        if time.monotonic() > deadline:
            break
    return events


def test_sse_sends_a_snapshot_when_the_version_changes_and_heartbeats(dash: Dash) -> None:
    login(dash.client)
    with dash.client.stream("GET", "/events") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        first = _read_events(lines, 1, 5.0)
        assert first[0][0] == "snapshot"
        assert first[0][1]["version"] == "v0"
        # nothing changes: only heartbeats (heartbeat_s=1.0 in the test app)
        quiet = _read_events(lines, 1, 5.0)
        assert quiet[0][0] == "heartbeat"
        assert quiet[0][1]["version"] == "v0"
        snap = simulate_fill(dash.service)
        events = _read_events(lines, 2, 5.0)
        changed = [d for n, d in events if n == "snapshot"]
        assert changed, events
        assert changed[0]["version"] == snap.version
        assert changed[0]["equity"] == pytest.approx(snap.equity)
        assert [p["symbol"] for p in changed[0]["positions"]] == ["AAPL", "MSFT", "IBM"]


def test_sse_stream_ends_when_stopping_is_set(dash: Dash) -> None:
    login(dash.client)
    stopping: threading.Event = dash.server.server.config.app.state.stopping
    with dash.client.stream("GET", "/events") as r:
        lines = r.iter_lines()
        assert _read_events(lines, 1, 5.0)[0][0] == "snapshot"
        threading.Timer(0.3, stopping.set).start()
        started = time.monotonic()
        rest = list(lines)  # returns only when the server ends the stream
        elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert all(not line.startswith("event: snapshot") for line in rest)


def test_server_with_three_open_streams_shuts_down_promptly() -> None:
    """The hang users hit: an open SSE client keeps uvicorn alive after SIGTERM. With the
    ``stopping`` event set (as the service does on SIGTERM) it exits in well under 10 s."""
    service = StandInService()
    app = make_app(service, poll_s=POLL_S, heartbeat_s=HEARTBEAT_S)
    with serve_in_thread(app, graceful_s=30.0) as server, ExitStack() as stack:
        readers = []  # keep each line iterator alive: dropping it closes the connection
        for _ in range(3):
            client = stack.enter_context(httpx.Client(base_url=server.url, timeout=10.0))
            response = stack.enter_context(
                client.stream("GET", "/events", headers={"X-API-Key": API_KEY})
            )
            lines = response.iter_lines()
            assert _read_events(lines, 1, 5.0)[0][0] == "snapshot"
            readers.append(lines)
        # uvicorn alone waits for the open streams (this is the hang) ...
        server.server.should_exit = True
        server.thread.join(timeout=1.0)
        assert server.thread.is_alive()
        # ... until the service says it is stopping: then every stream ends by itself
        started = time.monotonic()
        app.state.stopping.set()
        server.thread.join(timeout=10.0)
        elapsed = time.monotonic() - started
        assert not server.thread.is_alive()
        assert elapsed < 3.0  # the graceful timeout is 30 s
        for lines in readers:
            assert all(not line.startswith("event: snapshot") for line in lines)


def test_snapshot_events_generator_stops_on_disconnect_and_validates() -> None:
    service = StandInService()
    stopping = threading.Event()
    polls = 0

    async def gone_after_three() -> bool:
        nonlocal polls
        polls += 1
        return polls > 3

    async def collect() -> list[str]:
        names = []
        async for ev in snapshot_events(
            service, stopping=stopping, is_disconnected=gone_after_three, poll_s=0.01,
            heartbeat_s=0.02,
        ):  # fmt: skip
            names.append(ev.event or "")
        return names

    names = anyio.run(collect)
    assert names[0] == "snapshot"
    assert "heartbeat" in names
    assert polls == 4

    async def bad() -> None:
        async for _ in snapshot_events(service, stopping=stopping, poll_s=0.0):
            pass

    with pytest.raises(ConfigError, match="poll_s"):
        anyio.run(bad)


def test_a_quiet_stream_beats_within_5_s_with_the_defaults() -> None:
    service = StandInService()
    stopping = threading.Event()

    async def first_gap() -> float:
        started = 0.0
        async for ev in snapshot_events(service, stopping=stopping):
            if ev.event == "snapshot":
                started = time.monotonic()
            else:
                assert ev.event == "heartbeat"
                return time.monotonic() - started
        raise AssertionError("the stream ended")

    gap = anyio.run(first_gap)
    assert HEARTBEAT_S <= gap <= 5.0


def test_sse_stops_polling_when_the_client_goes(dash: Dash) -> None:
    keyed = httpx.Client(base_url=dash.server.url, headers={"X-API-Key": API_KEY})
    with keyed, keyed.stream("GET", "/events") as r:
        lines = r.iter_lines()
        assert _read_events(lines, 1, 5.0)[0][0] == "snapshot"
        time.sleep(0.3)
        assert dash.service.snapshot_calls >= 3  # it polls while the client listens
    time.sleep(0.3)
    settled = dash.service.snapshot_calls
    time.sleep(0.5)  # 10 poll intervals of the test app
    assert dash.service.snapshot_calls == settled


SERVE_SCRIPT = """
import sys
from serve_ui_support import API_KEY, StandInService
from tradeforge.serve.app import create_app, serve
from tradeforge.serve.auth import Authenticator
serve(create_app(StandInService(), Authenticator(API_KEY)), "127.0.0.1", int(sys.argv[1]),
      graceful_s=30.0)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_with_three_open_dashboards_exits_within_10_s() -> None:
    """The real process (``serve.app.serve``) with three open event streams: SIGTERM ends it
    long before its 30 s graceful timeout."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT, str(port)], cwd=Path(__file__).parent,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60.0
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start within 60 s"
            time.sleep(0.2)
        with ExitStack() as stack:
            readers = []
            for _ in range(3):
                client = stack.enter_context(httpx.Client(base_url=url, timeout=15.0))
                response = stack.enter_context(
                    client.stream("GET", "/events", headers={"X-API-Key": API_KEY})
                )
                lines = response.iter_lines()
                assert _read_events(lines, 1, 10.0)[0][0] == "snapshot"
                readers.append(lines)
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10.0)
            elapsed = time.monotonic() - started
        assert elapsed < 10.0
        print(f"exit after SIGTERM with 3 open streams: {elapsed:.2f} s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5.0)
        if proc.stderr:
            proc.stderr.close()
