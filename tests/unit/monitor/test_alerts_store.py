"""AlertStore: durable records and cooldowns; a restart inside the cooldown still suppresses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tradeforge.core.clock import TestClock
from tradeforge.monitor.alert_sinks import Alert, AlertError, WebhookSink
from tradeforge.monitor.alert_store import AlertStore
from tradeforge.monitor.alerts import AlertManager, AlertsConfig

T0 = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)


class CountingReceiver:
    """Answers 200 to every POST and keeps the alert keys it got."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.keys.append(body["key"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[CountingReceiver]:
    server = CountingReceiver()
    yield server
    server.close()


def alert(key: str = "kill_switch", **fields: str | float | int) -> Alert:
    return Alert(key=key, severity="critical", title="Trading halted", fields=fields, created_at=T0)


def test_restart_inside_cooldown_still_suppresses(
    receiver: CountingReceiver, tmp_path: Path
) -> None:
    path = tmp_path / "state" / "alerts.sqlite"
    config = AlertsConfig(webhooks=[WebhookSink(name="ops", url=receiver.url)], cooldown_s=300)
    clock = TestClock(T0)
    with AlertStore(path) as store, AlertManager(config, store, clock=clock) as manager:
        assert manager.notify(alert()) is True
        assert manager.flush(5.0)

    clock.advance(timedelta(seconds=120))  # the service restarts two minutes later
    with AlertStore(path) as store, AlertManager(config, store, clock=clock) as manager:
        assert manager.notify(alert()) is False
        assert manager.flush(5.0)
        assert store.counts("kill_switch") == {"sent": 1, "failed": 0, "suppressed": 1}
        clock.advance(timedelta(seconds=181))
        assert manager.notify(alert()) is True
        assert manager.flush(5.0)
    assert receiver.keys == ["kill_switch", "kill_switch"]


def test_store_is_wal_with_full_sync(tmp_path: Path) -> None:
    with AlertStore(tmp_path / "a.sqlite") as store:
        assert store.pragmas() == {"journal_mode": "wal", "synchronous": "2"}


def test_records_round_trip_and_list_newest_first(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    delivered = T0 + timedelta(milliseconds=3)
    with AlertStore(path) as store:
        store.record(
            alert(equity_usd=10250.5, reason="manual"),
            alert_id="a1",
            channel="ops",
            status="sent",
            attempts=1,
            delivered_at=delivered,
        )
        store.record(alert(), alert_id="a2", channel="*", status="suppressed", attempts=0)
        store.record(
            alert("limit:max_gross"),
            alert_id="a3",
            channel="email",
            status="failed",
            attempts=3,
            error="email: smtp 127.0.0.1:25: ConnectionRefusedError: Connection refused",
            delivered_at=delivered,
        )
    with AlertStore(path) as reopened:
        recent = reopened.recent()
        failures = reopened.failures()
        assert [r.alert_id for r in reopened.recent(limit=2)] == ["a3", "a2"]
        assert [r.alert_id for r in reopened.for_key("kill_switch")] == ["a2", "a1"]
        assert reopened.counts() == {"sent": 1, "failed": 1, "suppressed": 1}
    assert [(r.alert_id, r.channel, r.status, r.attempts) for r in recent] == [
        ("a3", "email", "failed", 3),
        ("a2", "*", "suppressed", 0),
        ("a1", "ops", "sent", 1),
    ]
    first = recent[2]
    assert first.fields == {"equity_usd": 10250.5, "reason": "manual"}
    assert first.created_at == T0
    assert first.delivered_at == delivered
    assert recent[1].delivered_at is None
    assert [f.alert_id for f in failures] == ["a3"]
    assert (
        failures[0].error == "email: smtp 127.0.0.1:25: ConnectionRefusedError: Connection refused"
    )


def test_cooldown_state_keeps_the_latest_time_per_key(tmp_path: Path) -> None:
    with AlertStore(tmp_path / "a.sqlite") as store:
        store.mark_notified("kill_switch", T0)
        store.mark_notified("kill_switch", T0 + timedelta(seconds=5))
        store.mark_notified("limit:max_gross", T0)
        assert store.last_notified() == {
            "kill_switch": T0 + timedelta(seconds=5),
            "limit:max_gross": T0,
        }


def test_store_rejects_bad_inputs(tmp_path: Path) -> None:
    with AlertStore(tmp_path / "a.sqlite") as store:
        with pytest.raises(AlertError, match=r"limit = 0; expected a positive int"):
            store.recent(0)
        with pytest.raises(AlertError, match=r"status = 'lost'"):
            store.record(alert(), alert_id="x", channel="ops", status="lost", attempts=1)  # type: ignore[arg-type]
        with pytest.raises(AlertError, match=r"naive"):
            store.mark_notified("k", datetime(2026, 1, 1))
