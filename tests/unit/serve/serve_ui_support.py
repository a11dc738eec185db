"""A stand-in ServiceHandle with a mutable Snapshot, the dashboard app around it, and a real
uvicorn server in a thread, for the dashboard's unit and browser tests.

Prices are the bundled daily closes of AAPL and MSFT (the last 40 bars of the bundled history);
the book, P&L and equity curve follow from them.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI

from tradeforge.core.errors import ConfigError
from tradeforge.data.bundled import bundled_frame
from tradeforge.serve.auth import Authenticator
from tradeforge.serve.snapshot import (
    AlertRow,
    AuditRow,
    DenialRow,
    EquityPoint,
    FillRow,
    LimitUse,
    ModelRow,
    OrderRow,
    PositionRow,
    Snapshot,
)
from tradeforge.serve.ui import make_ui_router

API_KEY = "dashboard-test-key-0123456789"
BARS = 40
START_CASH = 50_000.0
HOLDINGS = {"AAPL": 300.0, "MSFT": 400.0}


@functools.cache
def _closes(symbol: str, n: int) -> tuple[tuple[datetime, float], ...]:
    frame = bundled_frame(symbol).tail(n)
    return tuple(
        (ts.to_pydatetime(), float(c))
        for ts, c in zip(frame["timestamp"], frame["close"], strict=True)
    )


def closes(symbol: str, n: int = BARS + 1) -> list[tuple[datetime, float]]:
    """The last ``n`` bundled daily closes of ``symbol`` as (UTC time, close)."""
    return list(_closes(symbol, n))


def _order(coid: str, symbol: str, side: str, qty: float, filled: float, status: str,
           price: float, at: datetime, reason: str = "rebalance") -> OrderRow:  # fmt: skip
    return OrderRow(
        client_order_id=coid, symbol=symbol, side=side, quantity=qty, filled_quantity=filled,
        order_type="market", limit_price=None, status=status,
        avg_fill_price=price if filled else None, fees=round(0.0005 * filled * price, 2),
        reason=reason, created_at=at, updated_at=at + timedelta(seconds=2),
    )  # fmt: skip


def make_snapshot() -> Snapshot:
    """The service after 40 bars: long AAPL and MSFT, one open order, one denial, one failed
    alert. The newest bar is held back for :func:`simulate_fill`."""
    aapl, msft = closes("AAPL")[:-1], closes("MSFT")[:-1]
    entry_a, entry_m = aapl[0][1], msft[0][1]
    cost = HOLDINGS["AAPL"] * entry_a + HOLDINGS["MSFT"] * entry_m
    cash = START_CASH
    curve = tuple(
        EquityPoint(ts, cash + HOLDINGS["AAPL"] * pa + HOLDINGS["MSFT"] * pm)
        for (ts, pa), (_, pm) in zip(aapl, msft, strict=True)
    )
    last_ts, last_a = aapl[-1]
    last_m = msft[-1][1]
    equity = curve[-1].equity
    peak = max(p.equity for p in curve)
    mv_a, mv_m = HOLDINGS["AAPL"] * last_a, HOLDINGS["MSFT"] * last_m
    at = last_ts + timedelta(hours=21)
    positions = (
        PositionRow("AAPL", HOLDINGS["AAPL"], entry_a, last_a, mv_a, mv_a - HOLDINGS["AAPL"] * entry_a, 0.0, mv_a / equity),
        PositionRow("MSFT", HOLDINGS["MSFT"], entry_m, last_m, mv_m, mv_m - HOLDINGS["MSFT"] * entry_m, 0.0, mv_m / equity),
    )  # fmt: skip
    open_order = _order(
        "tf-demo-20130228T2100-0", "MSFT", "buy", 50.0, 20.0, "partially_filled", last_m, at
    )
    done = _order(
        "tf-demo-20130227T2100-0",
        "AAPL",
        "sell",
        10.0,
        10.0,
        "filled",
        aapl[-2][1],
        at - timedelta(days=1),
    )
    return Snapshot(
        generated_at=at, version="v0", mode="paper", venue="local", strategy_id="demo",
        symbols=("AAPL", "MSFT"), trading_state="active", killed=False, kill_reason="",
        state_reason="", broker_connected=True, reconciled=True, equity=equity, cash=cash,
        day_pnl=equity - curve[-2].equity, realized_pnl=0.0,
        unrealized_pnl=equity - cash - cost, drawdown=equity / peak - 1.0, drawdown_limit=0.2,
        gross_exposure=(mv_a + mv_m) / equity, net_exposure=(mv_a + mv_m) / equity,
        max_gross=1.5, max_net=1.0, last_bar_time=last_ts, data_age_s=95.0,
        last_decision_time=at + timedelta(seconds=30),
        last_decision={"AAPL": mv_a / equity, "MSFT": mv_m / equity},
        next_bar_time=at + timedelta(days=3), decision_latency_ms=4.2,
        positions=positions, open_orders=(open_order,), recent_orders=(open_order, done),
        fills=(FillRow(done.client_order_id, "fill-1", "AAPL", "sell", 10.0, aapl[-2][1], 1.2, done.updated_at),),
        denials=(DenialRow(last_ts, "tf-demo-20130226T2100-1", "max_order_notional: 60,000 > 50,000"),),
        limits=(
            LimitUse("max_gross_exposure", 1.5, (mv_a + mv_m) / equity, "ratio"),
            LimitUse("max_drawdown", 0.2, abs(equity / peak - 1.0), "ratio"),
            LimitUse("max_orders_per_day", 20.0, 19.0, "count"),
        ),
        models=(
            ModelRow("running", "ppo-demo", "7", {"sharpe": 1.12, "max_drawdown": -0.18}, {"sharpe": 0.84, "max_drawdown": -0.05}),
            ModelRow("champion", "ppo-demo", "7", {"sharpe": 1.12}, {}),
            ModelRow("challenger", "ppo-demo", "8", {"sharpe": 1.31}, {}),
        ),
        equity_curve=curve,
        alerts=(
            AlertRow("stale-data:AAPL", "warning", "AAPL data is stale", "webhook", "failed", 3, "connection refused", at),
            AlertRow("daily-report", "info", "Daily report", "email", "sent", 1, "", at - timedelta(hours=1)),
        ),
        audit=(
            AuditRow(42, at, "decision", "corr-42", "targets AAPL 0.45, MSFT 0.41"),
            AuditRow(41, at - timedelta(minutes=1), "order.submitted", "corr-41", "MSFT buy 50"),
        ),
        audit_head_seq=42,
        time_in_state_s={"active": 86_400.0 * 39, "reducing": 3_600.0, "halted": 0.0},
    )  # fmt: skip


class StandInService:
    """A ServiceHandle whose snapshot tests change by hand; kill/resume act like the real one
    (non-empty reason, HALTED state, an audit entry) and are recorded in ``calls``."""

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        self._lock = threading.Lock()
        self._snap = snapshot or make_snapshot()
        self._n = 0
        self.calls: list[tuple[str, str, str]] = []  # (action, reason, source)
        self.snapshot_calls = 0

    def snapshot(self) -> Snapshot:
        with self._lock:
            self.snapshot_calls += 1
            return self._snap

    def update(self, **changes: Any) -> Snapshot:
        """Apply ``changes`` and give the snapshot a new version."""
        with self._lock:
            self._n += 1
            self._snap = replace(self._snap, version=f"v{self._n}", **changes)
            return self._snap

    def _audited(self, action: str, reason: str, source: str, **changes: Any) -> Snapshot:
        if not reason.strip():
            raise ConfigError(f"{action} reason is {reason!r}; expected a non-empty reason")
        self.calls.append((action, reason, source))
        snap = self.snapshot()
        entry = AuditRow(snap.audit_head_seq + 1, snap.generated_at, action, f"{action}-1", reason)
        return self.update(audit=(entry, *snap.audit), audit_head_seq=entry.seq, **changes)

    def kill(self, reason: str, *, source: str = "api") -> Snapshot:
        return self._audited("kill", reason, source, trading_state="halted", killed=True,
                             kill_reason=reason, state_reason=f"kill switch: {reason}",
                             open_orders=())  # fmt: skip

    def resume(self, reason: str, *, source: str = "api") -> Snapshot:
        return self._audited("resume", reason, source, trading_state="active", killed=False,
                             kill_reason="", state_reason="")  # fmt: skip


def simulate_fill(service: StandInService) -> Snapshot:
    """The next bundled bar arrives and the open MSFT order fills; IBM is bought too: new
    position rows, new equity and P&L."""
    snap = service.snapshot()
    (ts, pa), (_, pm), (_, pi) = closes("AAPL")[-1], closes("MSFT")[-1], closes("IBM")[-1]
    msft_qty = HOLDINGS["MSFT"] + 50.0
    ibm_qty = 40.0
    cash = (snap.cash or 0.0) - 30.0 * pm - ibm_qty * pi
    mv = {"AAPL": HOLDINGS["AAPL"] * pa, "MSFT": msft_qty * pm, "IBM": ibm_qty * pi}
    equity = cash + sum(mv.values())
    old = {p.symbol: p for p in snap.positions}
    positions = (
        replace(old["AAPL"], last_price=pa, market_value=mv["AAPL"],
                unrealized_pnl=mv["AAPL"] - HOLDINGS["AAPL"] * old["AAPL"].avg_price, weight=mv["AAPL"] / equity),
        replace(old["MSFT"], quantity=msft_qty, last_price=pm, market_value=mv["MSFT"],
                unrealized_pnl=mv["MSFT"] - HOLDINGS["MSFT"] * old["MSFT"].avg_price - 50.0 * pm, weight=mv["MSFT"] / equity),
        PositionRow("IBM", ibm_qty, pi, pi, mv["IBM"], 0.0, 0.0, mv["IBM"] / equity),
    )  # fmt: skip
    fill = FillRow(snap.open_orders[0].client_order_id, "fill-2", "MSFT", "buy", 30.0, pm, 0.8, ts)
    return service.update(
        equity=equity, cash=cash, day_pnl=equity - snap.equity_curve[-1].equity,
        unrealized_pnl=sum(p.unrealized_pnl or 0.0 for p in positions), positions=positions,
        open_orders=(), fills=(fill, *snap.fills), last_bar_time=ts,
        equity_curve=(*snap.equity_curve, EquityPoint(ts, equity)),
    )  # fmt: skip


def make_app(
    service: Any, *, api_key: str = API_KEY, poll_s: float = 0.05, heartbeat_s: float = 1.0
) -> FastAPI:
    """The dashboard alone, wired the way ``serve.app.create_app`` wires it."""
    app = FastAPI()
    app.state.service = service
    app.state.auth = Authenticator(api_key)
    app.state.stopping = threading.Event()
    app.include_router(make_ui_router(poll_s=poll_s, heartbeat_s=heartbeat_s))
    return app


@dataclass
class RunningServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


@contextmanager
def serve_in_thread(app: FastAPI, *, graceful_s: float = 3.0) -> Iterator[RunningServer]:
    """Run ``app`` under uvicorn on 127.0.0.1 (a free port) in a thread; stop it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none",
                            timeout_graceful_shutdown=int(graceful_s))  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              name="dashboard-uvicorn", daemon=True)  # fmt: skip
    thread.start()
    deadline = time.monotonic() + 10.0
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 10 s")
        time.sleep(0.02)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", server, thread)
    finally:
        app.state.stopping.set()
        server.should_exit = True
        thread.join(timeout=graceful_s + 5.0)
        sock.close()
