"""Alert delivery against real local receivers on 127.0.0.1: webhook (JSON, Slack), SMTP."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tradeforge.core.clock import TestClock
from tradeforge.core.config import validate_config
from tradeforge.core.errors import ConfigError
from tradeforge.monitor.alert_sinks import (
    Alert,
    AlertConnectionError,
    AlertDeliveryError,
    AlertError,
    AlertHTTPStatusError,
    AlertTimeoutError,
    JsonWebhookSender,
    SlackWebhookSender,
    SmtpSender,
    SmtpSink,
    WebhookSink,
    redact_url,
)
from tradeforge.monitor.alert_store import AlertStore
from tradeforge.monitor.alerts import AlertManager, AlertsConfig

T0 = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)


class Receiver:
    """A webhook receiver in a thread: records every POST, answers ``status`` after ``delay``."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.perf_counter()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._cond:
                    receiver.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": json.loads(body),
                            "arrived": arrived,
                        }
                    )
                    receiver._cond.notify_all()
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"nope" if receiver.status >= 300 else b"ok")

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.requests) >= count, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AlertStore]:
    with AlertStore(tmp_path / "alerts.sqlite") as opened:
        yield opened


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def kill_alert(**overrides: Any) -> Alert:
    values: dict[str, Any] = {
        "key": "kill_switch",
        "severity": "critical",
        "title": "Trading halted",
        "text": "kill switch engaged by operator",
        "fields": {"reason": "manual", "equity_usd": 10250.5, "open_orders": 3},
        "created_at": T0,
    }
    values.update(overrides)
    return Alert(**values)


def config(*sinks: WebhookSink, **overrides: Any) -> AlertsConfig:
    values: dict[str, Any] = {"webhooks": list(sinks), "backoff_s": 0.01, "timeout_s": 2.0}
    values.update(overrides)
    return AlertsConfig(**values)


def test_json_webhook_receives_alert_within_5s_and_notify_does_not_block(
    receiver: Receiver, store: AlertStore
) -> None:
    receiver.delay = 0.5  # a slow webhook must not hold up the caller
    cfg = config(WebhookSink(name="ops", url=receiver.url()))
    with AlertManager(cfg, store) as manager:
        started = time.perf_counter()
        accepted = manager.notify(kill_alert())
        returned = time.perf_counter() - started
        assert receiver.wait_for(1, timeout=5.0)
        latency = receiver.requests[0]["arrived"] - started
        assert manager.flush(5.0)
    assert accepted is True
    assert returned < 0.1
    assert latency < 5.0
    body = receiver.requests[0]["body"]
    assert body == {
        "source": "tradeforge",
        "key": "kill_switch",
        "severity": "critical",
        "title": "Trading halted",
        "text": "kill switch engaged by operator",
        "fields": {"reason": "manual", "equity_usd": 10250.5, "open_orders": 3},
        "created_at": "2026-11-30T14:30:00+00:00",
    }
    assert receiver.requests[0]["headers"]["Content-Type"] == "application/json"
    [record] = store.recent()
    assert (record.channel, record.status, record.attempts, record.error) == (
        "ops",
        "sent",
        1,
        None,
    )
    assert record.delivered_at is not None
    assert record.delivered_at >= record.created_at


def test_slack_webhook_body_has_text_and_blocks(receiver: Receiver, store: AlertStore) -> None:
    cfg = config(WebhookSink(name="slack", url=receiver.url(), format="slack"))
    with AlertManager(cfg, store) as manager:
        manager.notify(kill_alert(title="Halted <now> & flat"))
        assert manager.flush(5.0)
    body = receiver.requests[0]["body"]
    assert body["text"].startswith(":rotating_light: *[CRITICAL] Halted &lt;now&gt; &amp; flat*")
    assert "kill switch engaged by operator" in body["text"]
    field_texts = [item["text"] for item in body["blocks"][1]["fields"]]
    assert field_texts == ["*reason*\nmanual", "*equity_usd*\n10250.5", "*open_orders*\n3"]


def test_same_key_inside_cooldown_is_delivered_once_then_again_after_it(
    receiver: Receiver, store: AlertStore
) -> None:
    clock = TestClock(T0)
    outcomes: list[tuple[str, str]] = []
    cfg = config(WebhookSink(name="ops", url=receiver.url()), cooldown_s=300)
    with AlertManager(
        cfg, store, clock=clock, on_delivery=lambda c, o: outcomes.append((c, o))
    ) as m:
        results = [m.notify(kill_alert())]
        clock.advance(timedelta(seconds=10))
        results.append(m.notify(kill_alert()))
        clock.advance(timedelta(seconds=289))  # 299 s after the first: still inside
        results.append(m.notify(kill_alert()))
        assert m.flush(5.0)
        assert len(receiver.requests) == 1
        assert store.counts("kill_switch") == {"sent": 1, "failed": 0, "suppressed": 2}
        other = m.notify(kill_alert(key="limit:max_gross"))  # another key is not held back
        clock.advance(timedelta(seconds=1))  # exactly 300 s after the first: out of cooldown
        again = m.notify(kill_alert())
        assert m.flush(5.0)
    assert results == [True, False, False]
    assert other is True
    assert again is True
    assert [r["body"]["key"] for r in receiver.requests] == [
        "kill_switch",
        "limit:max_gross",
        "kill_switch",
    ]
    assert sorted(outcomes) == [("*", "suppressed")] * 2 + [("ops", "sent")] * 3


def test_http_500_is_tried_exactly_retries_times_with_doubling_backoff(store: AlertStore) -> None:
    failing = Receiver(status=500)
    outcomes: list[tuple[str, str]] = []
    try:
        cfg = config(
            WebhookSink(name="ops", url=failing.url("/services/T0001/B0002/SeCrEtToKeN42")),
            retries=3,
            backoff_s=0.1,
        )
        with AlertManager(cfg, store, on_delivery=lambda c, o: outcomes.append((c, o))) as m:
            m.notify(kill_alert())
            assert m.flush(10.0)
            failures = m.failures()
    finally:
        failing.close()
    assert len(failing.requests) == 3
    arrivals = [request["arrived"] for request in failing.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert gaps[0] >= 0.1
    assert gaps[1] >= 0.2
    [failure] = failures
    assert (failure.status, failure.attempts, failure.channel) == ("failed", 3, "ops")
    assert failure.error is not None
    assert "HTTP 500" in failure.error
    assert f"127.0.0.1:{failing.server.server_address[1]}/***" in failure.error
    assert "SeCrEtToKeN42" not in failure.error
    assert "T0001" not in failure.error
    assert outcomes == [("ops", "failed")]


def test_webhook_token_never_reaches_the_logs(receiver: Receiver, store: AlertStore) -> None:
    import io
    import logging

    from tradeforge.monitor.logs import configure_logging, reset_logging

    root_level = logging.getLogger().level
    out = io.StringIO()
    configure_logging(run_id="run-1", level="DEBUG", stream=out)
    try:
        token_url = receiver.url("/services/T0001/B0002/SeCrEtToKeN42")
        cfg = config(
            WebhookSink(name="ok", url=token_url),
            WebhookSink(name="down", url=f"http://127.0.0.1:{closed_port()}/hooks/Tok3nDown9"),
            retries=2,
        )
        with AlertManager(cfg, store) as manager:
            manager.notify(kill_alert())
            assert manager.flush(10.0)
    finally:
        reset_logging()
        logging.getLogger().setLevel(root_level)
    text = out.getvalue()
    assert "HTTP Request: POST http://127.0.0.1:" in text  # httpx logged the request
    assert "not delivered to down after 2 attempt(s)" in text
    assert "SeCrEtToKeN42" not in text
    assert "Tok3nDown9" not in text


def test_http_404_is_not_retried(store: AlertStore) -> None:
    missing = Receiver(status=404)
    try:
        with AlertManager(config(WebhookSink(name="ops", url=missing.url())), store) as m:
            m.notify(kill_alert())
            assert m.flush(5.0)
    finally:
        missing.close()
    assert len(missing.requests) == 1
    [failure] = store.failures()
    assert failure.attempts == 1
    assert failure.error is not None
    assert "HTTP 404" in failure.error


def test_receiver_down_fails_after_retries_and_is_listed_in_failures(store: AlertStore) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hooks/abcdef0123456789"
    with AlertManager(config(WebhookSink(name="ops", url=url), retries=3), store) as m:
        assert m.notify(kill_alert()) is True
        assert m.flush(10.0)
        [failure] = m.failures()
        recent = m.recent()
    assert recent == [failure]
    assert (failure.key, failure.status, failure.attempts) == ("kill_switch", "failed", 3)
    assert failure.error is not None
    assert "ConnectError" in failure.error
    assert "abcdef0123456789" not in failure.error
    # the failed attempt still starts the cooldown
    assert store.last_notified()["kill_switch"] is not None


def test_sender_errors_name_the_failure_kind() -> None:
    sink = WebhookSink(name="ops", url=f"http://127.0.0.1:{closed_port()}/x")
    sender = JsonWebhookSender(sink, timeout_s=1.0)
    with pytest.raises(AlertConnectionError, match=r"ops: POST http://127\.0\.0\.1:\d+/\*\*\*"):
        sender.send(kill_alert())
    sender.close()
    slow = Receiver(status=503)
    try:
        slack = SlackWebhookSender(
            WebhookSink(name="s", url=slow.url(), format="slack"), timeout_s=1
        )
        with pytest.raises(AlertHTTPStatusError) as caught:
            slack.send(kill_alert())
        slack.close()
    finally:
        slow.close()
    assert caught.value.status == 503
    assert caught.value.retryable is True


def test_full_queue_drops_with_a_failed_record(store: AlertStore) -> None:
    slow = Receiver(delay=0.3)
    try:
        cfg = config(WebhookSink(name="ops", url=slow.url()), queue_size=1)
        with AlertManager(cfg, store) as manager:
            assert manager.notify(kill_alert(key="first")) is True
            assert manager.notify(kill_alert(key="second")) is True
            assert manager.flush(5.0)
    finally:
        slow.close()
    assert [request["body"]["key"] for request in slow.requests] == ["first"]
    [failure] = store.failures()
    assert failure.key == "second"
    assert failure.error == "ops: delivery queue full (1 pending); dropped"


def test_slow_webhook_is_a_timeout_error() -> None:
    slow = Receiver(delay=1.0)
    try:
        sender = JsonWebhookSender(WebhookSink(name="ops", url=slow.url()), timeout_s=0.2)
        started = time.perf_counter()
        with pytest.raises(
            AlertTimeoutError, match=r"ops: POST http://127\.0\.0\.1:\d+/\*\*\* timed out"
        ):
            sender.send(kill_alert())
        waited = time.perf_counter() - started
        sender.close()
    finally:
        slow.close()
    assert waited < 0.9


def test_no_channel_configured_is_recorded_as_failed(store: AlertStore) -> None:
    with AlertManager(AlertsConfig(), store) as manager:
        assert manager.notify(kill_alert()) is True
        assert manager.flush(5.0)
    [failure] = store.failures()
    assert failure.channel == "none"
    assert failure.error == "no alert channel is configured"


def test_notify_after_close_is_refused(receiver: Receiver, store: AlertStore) -> None:
    manager = AlertManager(config(WebhookSink(name="ops", url=receiver.url())), store)
    assert manager.close() is True
    assert manager.notify(kill_alert()) is False
    assert receiver.requests == []


# --- SMTP -----------------------------------------------------------------------------------


class _Mailbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.received = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.received.set()
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Mailbox, int]]:
    from aiosmtpd.controller import Controller

    mailbox = _Mailbox()
    port = closed_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


def test_smtp_email_arrives_with_subject_and_body(
    smtp_server: tuple[_Mailbox, int], store: AlertStore
) -> None:
    mailbox, port = smtp_server
    sink = SmtpSink(
        host="127.0.0.1",
        port=port,
        sender="bot@tradeforge.test",
        recipients=["ops@tradeforge.test", "risk@tradeforge.test"],
        starttls=False,
    )
    with AlertManager(AlertsConfig(email=sink, timeout_s=5.0), store) as manager:
        manager.notify(kill_alert())
        assert manager.flush(10.0)
    assert mailbox.received.wait(5.0)
    [envelope] = mailbox.envelopes
    assert envelope.mail_from == "bot@tradeforge.test"
    assert envelope.rcpt_tos == ["ops@tradeforge.test", "risk@tradeforge.test"]
    from email import message_from_bytes, policy

    message = message_from_bytes(envelope.original_content, policy=policy.default)
    assert message["Subject"] == "[CRITICAL] Trading halted"
    body = message.get_content()
    assert "kill switch engaged by operator" in body
    assert "equity_usd: 10250.5" in body
    assert "key: kill_switch" in body
    [record] = store.recent()
    assert (record.channel, record.status) == ("email", "sent")


def test_smtp_login_reads_the_password_from_the_named_env_var(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    logins: list[tuple[str, str]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"s3cret-pass")

    mailbox = _Mailbox()
    port = closed_port()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiosmtpd warns about AUTH without TLS (test only)
        controller = Controller(
            mailbox,
            hostname="127.0.0.1",
            port=port,
            authenticator=authenticator,
            auth_require_tls=False,
        )
        controller.start()
    try:
        sink = SmtpSink(
            host="127.0.0.1",
            port=port,
            sender="bot@tradeforge.test",
            recipients=["ops@tradeforge.test"],
            starttls=False,
            username="bot",
            password_env="TF_TEST_SMTP_PASSWORD",
        )
        sender = SmtpSender(sink, timeout_s=5.0)
        monkeypatch.delenv("TF_TEST_SMTP_PASSWORD", raising=False)
        with pytest.raises(AlertDeliveryError) as missing:
            sender.send(kill_alert())
        monkeypatch.setenv("TF_TEST_SMTP_PASSWORD", "s3cret-pass")
        sender.send(kill_alert())
    finally:
        controller.stop()
    assert "TF_TEST_SMTP_PASSWORD" in str(missing.value)
    assert missing.value.retryable is False
    assert logins == [("bot", "s3cret-pass")]
    assert len(mailbox.envelopes) == 1


def test_smtp_server_down_is_a_connection_error() -> None:
    sink = SmtpSink(
        host="127.0.0.1", port=closed_port(), sender="a@b.c", recipients=["d@e.f"], starttls=False
    )
    with pytest.raises(AlertConnectionError, match=r"email: smtp 127\.0\.0\.1:\d+"):
        SmtpSender(sink, timeout_s=2.0).send(kill_alert())


# --- config and payload validation ----------------------------------------------------------


def test_config_rejects_non_http_url_naming_field_and_hiding_the_path() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config(
            AlertsConfig,
            {"webhooks": [{"name": "ops", "url": "ftp://hooks.example.com/T/B/tok"}]},
            source="alerts.yaml",
        )
    message = str(caught.value)
    assert "alerts.yaml: webhooks.0.url" in message
    assert "'ftp://hooks.example.com/***'" in message
    assert "expected an http:// or https:// URL with a host" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"retries": 0},
            "alerts: retries = 0: Value error, retries 0 is out of range; expected 1..20",
        ),
        (
            {"cooldown_s": -1},
            "alerts: cooldown_s = -1: Value error, value -1.0 must be >= 0 seconds",
        ),
        ({"timeout_s": 0}, "alerts: timeout_s = 0: Value error, timeout_s 0.0 must be > 0 seconds"),
        (
            {"webhooks": [{"name": "a", "url": "https://x.test/1"}] * 2},
            "channel names ['a'] clash",
        ),
        (
            {"email": {"host": "h", "sender": "a@b", "recipients": ["c@d"], "username": "u"}},
            "set both to log in, or neither",
        ),
        (
            {
                "email": {
                    "host": "h",
                    "sender": "a@b",
                    "recipients": ["c@d"],
                    "username": "u",
                    "password_env": "hunter 2!",
                }
            },
            "email.password_env = 'hunter 2!': Value error, smtp password_env must be the NAME",
        ),
        (
            {"webhook": []},
            "alerts: webhook = []: unknown key; allowed keys: backoff_s, cooldown_s, email",
        ),
    ],
)
def test_config_errors_name_the_field(raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config(AlertsConfig, raw, source="alerts")
    assert expected in str(caught.value)


def test_defaults() -> None:
    cfg = AlertsConfig()
    assert (cfg.cooldown_s, cfg.retries, cfg.backoff_s, cfg.timeout_s) == (300.0, 3, 0.5, 5.0)
    assert SmtpSink(host="h", sender="a@b", recipients=["c@d"]).starttls is True


def test_redact_url_keeps_only_scheme_host_and_port() -> None:
    assert redact_url("https://hooks.slack.com/services/T0/B0/XYZ") == "https://hooks.slack.com/***"
    assert redact_url("http://user:pw@10.0.0.1:8080/h?token=abc") == "http://10.0.0.1:8080/***"
    assert redact_url("https://example.com") == "https://example.com"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"severity": "fatal"},
            "Alert severity = 'fatal'; expected one of info, warning, critical",
        ),
        ({"key": " "}, "Alert key = ' '"),
        ({"fields": {"x": [1]}}, "Alert fields['x'] = [1]"),
        ({"created_at": datetime(2026, 1, 1)}, "is naive"),
    ],
)
def test_invalid_alerts_are_rejected(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(AlertError) as caught:
        kill_alert(**overrides)
    assert expected in str(caught.value)


def test_non_finite_field_values_stay_valid_json() -> None:
    assert kill_alert(fields={"psi": float("nan")}).to_json_dict()["fields"] == {"psi": "nan"}
