"""The service end to end on the local venue: the node trades the same bars as a paper run,
the snapshot shows its fills, a kill cancels and halts within a second and reaches a webhook,
and a restart carries on without deciding a bar twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("alpaca")

from tradeforge.execution.node import NodeConfig
from tradeforge.experiment.paper import PaperConfig, paper_trade
from tradeforge.monitor.alerts import AlertsConfig
from tradeforge.risk import RiskConfig
from tradeforge.serve.config import ReplayConfig, ServeConfig
from tradeforge.serve.runtime import TradingService
from tradeforge.testing.programs import numpy_program

START, END = "2010-01-04", "2010-01-15"
PAPER = PaperConfig(node=NodeConfig(strategy_id="swing"), risk=RiskConfig(max_gross=2.0))


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps each JSON body and when it came."""

    def __init__(self) -> None:
        self.bodies: list[tuple[float, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length", "0"))
                outer.bodies.append((time.monotonic(), json.loads(self.rfile.read(size))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """A stopped service leaves no node, watcher, venue or trade-updates thread behind."""
    yield
    names = ("tradeforge-node", "tradeforge-watch", "tradeforge-venue", "alpaca-trade-updates")
    deadline = time.monotonic() + 5.0
    while True:
        left = [t.name for t in threading.enumerate() if t.name.startswith(names) and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert left == [], f"threads left running: {left}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _config(state: Path, hook: str, interval: float = 0.15) -> ServeConfig:
    return ServeConfig(
        policy=str(state / "unused"), venue="local", state_dir=str(state),
        replay=ReplayConfig(start=START, end=END, bar_interval_s=interval), paper=PAPER,
        alerts=AlertsConfig.model_validate({"webhooks": [{"url": hook, "name": "hook"}],
                                            "cooldown_s": 60, "retries": 1}),
    )  # fmt: skip


def _until(check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def test_the_service_trades_what_a_paper_run_trades(tmp_path: Path, receiver: Receiver) -> None:
    program = numpy_program()
    with TradingService(_config(tmp_path / "svc", receiver.url), program) as service:
        _until(lambda: service._ended.is_set(), timeout=60)
        snap = service.snapshot()
    reference = paper_trade(PAPER, numpy_program(), venue="sim", start=START, end=END)
    curve = [(p.ts, p.equity) for p in snap.equity_curve]
    expected = [(ts.to_pydatetime(), float(v)) for ts, v in reference.equity.items()]
    assert curve[-len(expected) :] == expected
    assert len(snap.fills) > 0
    assert snap.trading_state == "active"
    assert snap.equity == pytest.approx(expected[-1][1], rel=1e-9)
    assert {p.symbol for p in snap.positions} <= {"AAPL", "IBM", "MSFT"}
    live = snap.models[0].live  # the running program's live metrics come from its marks
    assert live["total_return"] == pytest.approx(curve[-1][1] / curve[0][1] - 1.0, rel=1e-12)
    assert live["max_drawdown"] <= 0.0
    assert service.error is None


def test_a_kill_halts_cancels_alerts_and_survives_a_restart(tmp_path: Path,
                                                            receiver: Receiver) -> None:  # fmt: skip
    state = tmp_path / "svc"
    service = TradingService(_config(state, receiver.url, interval=0.4), numpy_program()).start()
    try:
        _until(lambda: len(service.snapshot().fills) > 0, what="a fill")
        started, killed_at = time.monotonic(), datetime.now(UTC)
        snap = service.kill("operator test")
        assert snap.trading_state == "halted"
        assert snap.killed
        assert snap.time_in_state_s["active"] > 0.0  # the risk page's time in each state
        assert set(snap.time_in_state_s) == {"active", "halted"}
        _until(lambda: any(b.get("key") == "kill_switch" for _, b in receiver.bodies), 5.0)
        arrived = next(t for t, b in receiver.bodies if b.get("key") == "kill_switch")
        assert arrived - started < 5.0
        _until(lambda: not service.snapshot().open_orders, 1.0, "cancels")  # within a second
        time.sleep(1.0)  # more bars while halted: they are decided, but no order gets out
        after = service.snapshot()
        late = [o for o in after.recent_orders if o.created_at > killed_at + timedelta(seconds=0.1)]
        assert late == []  # an order of the bar in flight at the kill may exist; none after
        assert {o.status for o in after.recent_orders} <= {"filled", "canceled"}
        assert "trading_halted" in {d.reason.split(":")[0] for d in after.denials}
    finally:
        service.stop()
    again = TradingService(_config(state, receiver.url), numpy_program())
    try:
        assert again.snapshot().trading_state == "halted"  # the latch survives a restart
        again.resume("checked")
        assert again.snapshot().trading_state == "active"
    finally:
        again.stop()


def test_a_limit_breach_reaches_the_webhook_once_per_cooldown(tmp_path: Path,
                                                              receiver: Receiver) -> None:  # fmt: skip
    tight = PAPER.model_copy(update={"risk": RiskConfig(max_gross=1.0, max_drawdown=0.01)})
    config = _config(tmp_path / "svc", receiver.url, interval=0.3).model_copy(
        update={"paper": tight}
    )
    with TradingService(config, numpy_program()) as service:
        _until(lambda: bool(service.snapshot().denials), what="a risk denial")
        seen_at = time.monotonic()
        key = "denial:gross_exposure_exceeds_max"
        _until(lambda: any(b.get("key") == key for _, b in receiver.bodies), 5.0, "the alert")
        arrived = next(t for t, b in receiver.bodies if b.get("key") == key)
        assert arrived - seen_at < 5.0
        _until(lambda: service.snapshot().trading_state == "halted", 30.0, "the drawdown breaker")
        _until(lambda: any(b.get("key") == "state:halted" for _, b in receiver.bodies), 5.0,
               "the breaker's alert")  # fmt: skip
        denials = len(service.snapshot().denials)
        time.sleep(1.0)
    keys = [b.get("key") for _, b in receiver.bodies]
    assert denials > 1  # the same limit was hit again and again...
    assert keys.count(key) == 1  # ...and alerted once inside the cooldown
    assert keys.count("state:halted") == 1


def test_the_broker_calendar_is_checked_and_a_closure_is_alerted(tmp_path: Path,
                                                                 receiver: Receiver) -> None:  # fmt: skip
    from alpaca.trading.client import TradingClient
    from test_paper_support import start_venue

    from tradeforge.serve.calendar import BarCalendar

    service = TradingService(_config(tmp_path / "svc", receiver.url), numpy_program())
    server = start_venue(date(2010, 1, 4))
    client = TradingClient("k", "s", paper=True, url_override=server.url)
    try:
        agree = service.check_calendar(BarCalendar(), client, today=date(2010, 1, 20))
        assert agree.ok
        assert receiver.bodies == []

        class Closed:  # the broker says 2010-01-25 is closed (say, a national day of mourning)
            def get_calendar(self, request: Any) -> list[Any]:
                return [r for r in client.get_calendar(request) if r.date != date(2010, 1, 25)]

        calendar = BarCalendar()
        differ = service.check_calendar(calendar, Closed(), today=date(2010, 1, 20))
        assert differ.closed == (date(2010, 1, 25),)
        assert not calendar.is_trading_day(date(2010, 1, 25))  # no bar job that day
        _until(lambda: any(b.get("key") == "calendar" for _, b in receiver.bodies), 5.0, "alert")
    finally:
        client._session.close()
        server.stop()
        service.stop()


def test_the_drift_check_compares_the_node_history_with_the_reference(
    tmp_path: Path, receiver: Receiver
) -> None:
    from tradeforge.monitor import build_reference_profile, read_history
    from tradeforge.testing.programs import bundled_panel

    program = numpy_program()
    train = program.pipeline.transform(bundled_panel()).values[:2000]  # training years only
    policy = tmp_path / "policy"
    build_reference_profile(train, program.pipeline.names).save(policy)
    config = _config(tmp_path / "svc", receiver.url).model_copy(update={"policy": str(policy)})
    with TradingService(config, program) as service:
        assert service.drift_check() is None  # no bar yet: nothing to compare
        _until(lambda: service._ended.is_set(), 60.0, "the replay to end")
        report = service.drift_check()
        history = read_history(tmp_path / "svc")
    decided = [p.ts for p in service.snapshot().equity_curve]
    assert len(history.timestamps) >= len(decided) - 1 > 3
    assert history.features.shape[1:] == (3, len(program.pipeline.names))
    assert report is not None
    assert {c.name for c in report.features} == set(program.pipeline.names)
    body = service.metrics.render()[0].decode()
    assert "tradeforge_feature_psi" in body


def test_node_log_lines_carry_the_bar_correlation_id(tmp_path: Path, receiver: Receiver) -> None:
    import io
    import json as jsonlib

    from tradeforge.monitor.logs import configure_logging, reset_logging

    stream = io.StringIO()
    configure_logging(run_id="svc-test", stream=stream)
    tight = PAPER.model_copy(update={"risk": RiskConfig(max_gross=1.0)})  # denials get logged
    config = _config(tmp_path / "svc", receiver.url).model_copy(update={"paper": tight})
    try:
        with TradingService(config, numpy_program()) as service:
            _until(lambda: bool(service.snapshot().denials), what="a risk denial")
    finally:
        reset_logging()
    lines = [jsonlib.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    denied = [x for x in lines if "risk denied" in x["event"]]
    assert denied
    assert all(x["run_id"] == "svc-test" for x in lines)
    assert all(x["correlation_id"].startswith("swing|2010-01-") for x in denied)
    assert all(x["strategy"] == "swing" for x in denied)
