"""tradeforge.risk.RiskEngine in memory: the throttle and duplicate window on a test clock,
run-time tightening, stops and breakers, the loss streak, the kill switch with a fake OMS,
resume, and the counts a report shows."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from risk_helpers import BUY, SELL, T0, D, FakeOMS, open_order, order, view

from tradeforge.core.clock import TestClock
from tradeforge.core.errors import RiskError
from tradeforge.domain import ClientOrderId, FillId, OrderFilled, Position, Symbol
from tradeforge.risk import (
    Breaker,
    DenyReason,
    ExitReason,
    RiskConfig,
    RiskEngine,
    TradingState,
)


def engine(**limits: object) -> tuple[RiskEngine, TestClock]:
    clock = TestClock(T0)
    return RiskEngine(RiskConfig(**limits), clock=clock), clock  # type: ignore[arg-type]


def reasons(eng: RiskEngine, orders: list[object], v: object = None) -> list[object]:
    out = []
    for o in orders:
        denied = eng.validate(o, v or view())  # type: ignore[arg-type]
        out.append(None if denied is None else denied.reason)
    return out


def test_rate_throttle_per_second_and_per_minute_on_the_clock() -> None:
    eng, clock = engine(max_orders_per_second=2, max_orders_per_minute=3)
    got = reasons(eng, [order(BUY, 1), order(BUY, 2), order(BUY, 3)])
    assert got == [None, None, DenyReason.RATE_LIMIT_PER_SECOND]
    clock.advance(timedelta(seconds=1))  # the first two leave the one-second window
    assert reasons(eng, [order(BUY, 4), order(BUY, 5)]) == [None, DenyReason.RATE_LIMIT_PER_MINUTE]
    clock.advance(timedelta(seconds=59))  # 60 s after the first two: they leave the minute
    assert reasons(eng, [order(BUY, 6), order(BUY, 7)]) == [None, None]
    assert eng.stats.approved == 5
    assert dict(eng.stats.denied) == {"rate_limit_per_second": 1, "rate_limit_per_minute": 1}


def test_denied_orders_use_no_rate_budget() -> None:
    eng, _ = engine(max_orders_per_second=1, max_order_quantity=5)
    assert reasons(eng, [order(BUY, 9), order(BUY, 1)]) == [
        DenyReason.ORDER_QUANTITY_EXCEEDS_MAX, None,
    ]  # fmt: skip


def test_duplicate_window() -> None:
    eng, clock = engine(duplicate_window_s=5)
    assert reasons(eng, [order(BUY, 10), order(BUY, 10), order(BUY, 11)]) == [
        None, DenyReason.DUPLICATE_ORDER, None,
    ]  # fmt: skip
    clock.advance(timedelta(seconds=5))
    assert reasons(eng, [order(BUY, 10)]) == [None]
    assert reasons(eng, [order(BUY, 10, limit="100")]) == [None]  # a different order


def test_tighten_only_tighter_and_it_applies_at_once() -> None:
    eng, clock = engine(max_order_quantity=100, max_orders_per_second=10, restricted_symbols=["X"])
    new = eng.tighten("desk asked", max_order_quantity=50, restricted_symbols=["X", "MSFT"])
    assert new.max_order_quantity == 50
    assert eng.config is new
    assert reasons(eng, [order(BUY, 60), order(BUY, 1, "MSFT"), order(BUY, 50)]) == [
        DenyReason.ORDER_QUANTITY_EXCEEDS_MAX, DenyReason.RESTRICTED_SYMBOL, None,
    ]  # fmt: skip
    with pytest.raises(RiskError, match=r"tighten max_order_quantity: 50 -> 51 would loosen"):
        eng.tighten("oops", max_order_quantity=51)
    with pytest.raises(RiskError, match="restricted_symbols"):
        eng.tighten("oops", restricted_symbols=["MSFT"])
    with pytest.raises(RiskError, match="max_orders_per_second: 10 -> None would loosen"):
        eng.tighten("oops", max_orders_per_second=None)
    with pytest.raises(RiskError, match="reason = ''"):
        eng.tighten("", max_order_quantity=10)
    assert eng.config.max_order_quantity == 50  # refused changes change nothing
    eng.tighten("slow down", max_orders_per_second=1)
    clock.advance(timedelta(seconds=1))
    assert reasons(eng, [order(BUY, 2), order(BUY, 3)]) == [
        None, DenyReason.RATE_LIMIT_PER_SECOND,
    ]  # fmt: skip


def test_stop_loss_exits_net_of_pending_exits() -> None:
    eng, _ = engine(stop_loss=0.05)
    held = {"AAPL": (10, 100), "MSFT": (-4, 50)}
    report = eng.update(view(positions=held, prices={"AAPL": 95.01, "MSFT": 52.49}))
    assert report.exits == ()
    report = eng.update(view(positions=held, prices={"AAPL": 95, "MSFT": 52.5}))
    assert [(e.symbol, e.side, e.quantity, e.reason) for e in report.exits] == [
        ("AAPL", SELL, 10, ExitReason.STOP_LOSS), ("MSFT", BUY, 4, ExitReason.STOP_LOSS),
    ]  # fmt: skip
    pending = view(positions=held, prices={"AAPL": 90, "MSFT": 60},
                   open_orders=[open_order(SELL, 6), open_order(BUY, 4, "MSFT")])  # fmt: skip
    assert [(e.symbol, e.quantity) for e in eng.update(pending).exits] == [("AAPL", D(4))]
    assert eng.stats.exits["stop_loss"] == 3


def test_trailing_stop_follows_the_best_price_since_entry() -> None:
    eng, _ = engine(trailing_stop=0.1)
    held = {"AAPL": (10, 100)}
    for price in (105, 120, 110):
        assert eng.update(view(positions=held, prices={"AAPL": price})).exits == ()
    assert eng.memory.trail[Symbol("AAPL")] == (1, D(120))
    exits = eng.update(view(positions=held, prices={"AAPL": 108})).exits
    assert [(e.reason, e.quantity, e.reference_price) for e in exits] == [
        (ExitReason.TRAILING_STOP, D(10), D(108)),
    ]
    # flat, then a new short: the peak restarts from its entry
    eng.update(view(positions={}, prices={"AAPL": 108}))
    assert eng.memory.trail == {}
    short = {"AAPL": (-5, 108)}
    assert eng.update(view(positions=short, prices={"AAPL": 100})).exits == ()
    assert eng.memory.trail[Symbol("AAPL")] == (-1, D(100))
    assert eng.update(view(positions=short, prices={"AAPL": 110})).exits[0].side is BUY


def test_daily_loss_breaker_halts_and_a_new_day_starts_afresh() -> None:
    eng, clock = engine(max_daily_loss=0.02)
    held = {"AAPL": (100, 100)}  # equity = 90,000 + 100 x price
    eng.update(view(cash=90_000, positions=held, prices={"AAPL": 100}))  # day start 100,000
    report = eng.update(view(cash=90_000, positions=held, prices={"AAPL": 80}))
    assert report.trips == ()
    assert report.equity == D(98_000)  # exactly at the limit
    report = eng.update(view(cash=90_000, positions=held, prices={"AAPL": 79.99}))
    assert [t.breaker for t in report.trips] == [Breaker.DAILY_LOSS]
    assert eng.state is TradingState.HALTED
    assert eng.record.source == "breaker.daily_loss"
    assert eng.stats.trips["daily_loss"] == 1
    clock.advance(timedelta(days=1))
    eng.update(view(cash=90_000, positions=held, prices={"AAPL": 79}))
    assert eng.memory.day_start_equity == D(97_900)
    assert eng.state is TradingState.HALTED  # latched until resumed


def test_drawdown_breaker_reduces_when_configured_and_resume_resets_the_peak() -> None:
    eng, _ = engine(max_drawdown=0.1, drawdown_action="reducing")
    held = {"AAPL": (100, 100)}
    eng.update(view(cash=0, positions=held, prices={"AAPL": 200}))  # peak 20,000
    eng.update(view(cash=0, positions=held, prices={"AAPL": 180}))
    assert eng.state is TradingState.ACTIVE
    report = eng.update(view(cash=0, positions=held, prices={"AAPL": 179}))
    assert [(t.breaker, t.action) for t in report.trips] == [
        (Breaker.DRAWDOWN, TradingState.REDUCING),
    ]
    assert reasons(eng, [order(BUY, 1), order(SELL, 1)], view(positions=held)) == [
        DenyReason.TRADING_REDUCING, None,
    ]  # fmt: skip
    with pytest.raises(RiskError, match="resume: reason = '  '; expected a non-empty reason"):
        eng.resume("  ")
    eng.resume("reviewed the drawdown")
    assert eng.state is TradingState.ACTIVE
    assert eng.memory.peak_equity is None
    assert eng.update(view(cash=0, positions=held, prices={"AAPL": 179})).trips == ()
    assert eng.memory.peak_equity == D(17_900)


def fill(side: object, qty: object, price: object, fee: object = 0) -> OrderFilled:
    return OrderFilled(
        client_order_id=ClientOrderId("c"), ts=T0, fill_id=FillId("f"), symbol="AAPL",
        side=side, quantity=D(qty), price=D(price), fee=D(fee),
    )  # fmt: skip


def test_loss_streak_counts_closing_trades_with_fees() -> None:
    eng, _ = engine(max_loss_streak=3)
    long = Position(symbol="AAPL", quantity=Decimal(10), avg_price=Decimal(100))
    assert eng.on_fill(fill(BUY, 5, 90), long) is None  # adds: no trade closed
    assert eng.memory.loss_streak == 0
    assert eng.on_fill(fill(SELL, 5, 99), long) is None  # -5
    assert eng.on_fill(fill(SELL, 5, 100, fee=1), long) is None  # 0 - 1 fee: a loss
    assert eng.on_fill(fill(SELL, 5, 100), long) is None  # break-even: streak stays
    assert eng.memory.loss_streak == 2
    trip = eng.on_fill(fill(SELL, 20, 99.9), long)  # closes 10 of 20: -1 (and opens a short)
    assert trip is not None
    assert (trip.breaker, trip.action) == (Breaker.LOSS_STREAK, TradingState.REDUCING)
    assert eng.state is TradingState.REDUCING
    eng.resume("new day")
    assert eng.memory.loss_streak == 0
    eng.on_fill(fill(SELL, 1, 99), long)
    eng.on_fill(fill(SELL, 1, 101), long)  # a win resets
    assert eng.memory.loss_streak == 0


def test_kill_cancels_open_orders_flattens_when_configured_and_latches() -> None:
    clock = TestClock(T0)
    oms = FakeOMS(open_orders=4)
    eng = RiskEngine(RiskConfig(flatten_on_kill=True), clock=clock, kill_target=oms)
    held = view(positions={"AAPL": (10, 100), "MSFT": (-3, 50)})
    report = eng.kill("fat finger on desk 3", view=held)
    assert (report.canceled, oms.cancels) == (4, ["fat finger on desk 3"])
    assert [(e.symbol, e.side, e.quantity, e.reason) for e in oms.flattened[0][0]] == [
        ("AAPL", SELL, 10, ExitReason.KILL_FLATTEN), ("MSFT", BUY, 3, ExitReason.KILL_FLATTEN),
    ]  # fmt: skip
    assert eng.state is TradingState.HALTED
    assert eng.record.killed
    assert reasons(eng, [order(SELL, 1)], held) == [DenyReason.TRADING_HALTED]
    assert eng.poll() is None  # already acted on
    eng.update(held)
    eng.escalate(TradingState.REDUCING, "manual")  # lower than HALTED: nothing changes
    assert eng.state is TradingState.HALTED
    with pytest.raises(RiskError, match="expected 'active' or 'reducing'"):
        eng.resume("x", to=TradingState.HALTED)
    eng.resume("fixed", to=TradingState.REDUCING)
    assert (eng.state, eng.record.killed) == (TradingState.REDUCING, False)


def test_kill_without_flatten_config_does_not_flatten() -> None:
    oms = FakeOMS()
    eng = RiskEngine(RiskConfig(), clock=TestClock(T0), kill_target=oms)
    eng.kill("stop", view=view(positions={"AAPL": (10, 100)}))
    assert (oms.cancels, oms.flattened) == (["stop"], [])
    with pytest.raises(RiskError, match="kill: reason"):
        eng.kill("")


def test_kill_flag_file_halts_an_engine_without_a_store(tmp_path: object) -> None:
    from pathlib import Path

    flag = Path(str(tmp_path)) / "KILL"
    oms = FakeOMS()
    eng = RiskEngine(RiskConfig(), clock=TestClock(T0), kill_target=oms, kill_flag=flag)
    assert eng.validate(order(BUY, 1), view()) is None
    flag.write_text("ops: exchange outage\n")
    assert reasons(eng, [order(BUY, 1)]) == [DenyReason.TRADING_HALTED]
    assert eng.record.reason == "ops: exchange outage"
    assert eng.record.source == "flag"
    report = eng.poll()
    assert report is not None
    assert oms.cancels == ["ops: exchange outage"]
    assert eng.poll() is None  # once per kill
    eng.resume("outage over")
    assert not flag.exists()
    assert eng.validate(order(BUY, 2), view()) is None


def test_time_in_each_state() -> None:
    eng, clock = engine()
    clock.advance(timedelta(seconds=30))
    eng.escalate(TradingState.REDUCING, "manual")
    clock.advance(timedelta(seconds=20))
    eng.kill("stop")
    clock.advance(timedelta(seconds=5))
    assert eng.time_in_state() == {"active": 30.0, "reducing": 20.0, "halted": 5.0}


def test_public_api_of_the_risk_package() -> None:
    import tradeforge.risk

    assert sorted(tradeforge.risk.__all__) == sorted([
        "BarFill", "BarRisk", "Breaker", "ControlMemory", "ControlReport", "Denied",
        "DenyReason", "ExitIntent", "ExitReason", "GateResult", "KillReport", "KillTarget",
        "PortfolioView", "RiskConfig", "RiskEngine", "RiskError", "RiskLimits",
        "RiskStateStore", "RiskStats", "RiskTally", "StatePaths", "StateRecord", "TradingState",
        "Trip", "check_order", "exit_orders", "gate_orders", "is_risk_reducing",
        "kill_state_dir", "needs_engine", "project_path", "project_weights", "read_state_dir",
        "resume_state_dir", "violations",
    ])  # fmt: skip
    for name in tradeforge.risk.__all__:
        home = getattr(tradeforge.risk, name).__module__
        assert (
            home == "tradeforge.core.errors"
            if name == "RiskError"
            else home.startswith("tradeforge.risk.")
        )


def test_risk_config_keeps_the_risk_limits_keys() -> None:
    cfg = RiskConfig.model_validate(
        {"max_position": 0.2, "max_gross": 1.0, "max_turnover": 0.5, "long_only": True,
         "max_order_notional": 10_000, "restricted_symbols": ["GME"]}
    )  # fmt: skip
    assert cfg.limits().model_dump() == {
        "max_position": 0.2, "max_gross": 1.0, "max_turnover": 0.5, "long_only": True,
    }  # fmt: skip
    assert cfg.max_order_notional == Decimal(10_000)
    with pytest.raises(ValueError, match="max_postion"):
        RiskConfig.model_validate({"max_postion": 0.2})
    with pytest.raises(ValueError, match="restricted_symbols"):
        RiskConfig(restricted_symbols=["bad symbol!"])
    with pytest.raises(RiskError, match="flatten_on_kill: False -> True would loosen"):
        RiskConfig().tighten(flatten_on_kill=True)
    assert RiskConfig().tighten(long_only=True, daily_loss_action="halted").long_only
    with pytest.raises(RiskError, match="daily_loss_action: 'halted' -> 'reducing'"):
        RiskConfig().tighten(daily_loss_action="reducing")
    with pytest.raises(RiskError, match=r"unknown field\(s\) \['nope'\]"):
        RiskConfig().tighten(nope=1)
    assert RiskConfig(duplicate_window_s=2).tighten(duplicate_window_s=5).duplicate_window_s == 5
    with pytest.raises(RiskError, match=r"duplicate_window_s: 2\.0 -> 1\.0"):
        RiskConfig(duplicate_window_s=2).tighten(duplicate_window_s=1)
