"""research/broker.md section 5, case by case: AlpacaBroker (on the unmodified alpaca-py SDK) and
the order manager against the local venue with injected faults. Every case checks the outcome
the brief asks for: no lost and no duplicated orders (the venue's own log of order requests),
and, where fills happen, the order manager's cash and positions equal the venue's exactly.

Test names carry the case number of broker.md section 5.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

pytest.importorskip("alpaca")

import test_alpaca_venue_support as support
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide as SdkSide
from alpaca.trading.enums import TimeInForce as SdkTif
from alpaca.trading.requests import MarketOrderRequest
from test_alpaca_venue_support import KEY, SECRET, Admin, start_venue, wait_for

from tradeforge.data.panel import BarPanel
from tradeforge.domain import (
    ClientOrderId,
    DomainError,
    OrderSide,
    OrderStatus,
    OrderType,
    SubmitOrder,
    Symbol,
    TimeInForce,
)
from tradeforge.execution import (
    HOOK_POINTS,
    BrokerUnavailableError,
    HookPoint,
    OrderManager,
    OrderNotFoundError,
    OrderStore,
    SimulatedBroker,
    TradingHaltedError,
)
from tradeforge.execution.brokers.alpaca import AlpacaBroker
from tradeforge.execution.venue import VenueServer

# fixtures shared by the venue integration tests (pytest finds them as module attributes)
admin, make_broker, no_thread_left, trading_client, venue = (
    support.admin,
    support.make_broker,
    support.no_thread_left,
    support.trading_client,
    support.venue,
)

Broker = Callable[..., AlpacaBroker]


def cmd(cid: str, symbol: str = "AAPL", qty: str = "10", side: OrderSide = OrderSide.BUY,
        **kw: Any) -> SubmitOrder:  # fmt: skip
    return SubmitOrder(client_order_id=cid, strategy_id="faults", symbol=symbol, side=side,
                       quantity=Decimal(qty), **kw)  # fmt: skip


def venue_orders(venue: VenueServer) -> dict[str, str]:
    """client_order_id -> status of every order the venue holds."""
    return {o["client_order_id"]: o["status"]
            for o in venue.engine.orders(status="all", limit=500)}  # fmt: skip


def created(admin: Admin) -> list[str]:
    return [e["client_order_id"] for e in admin.order_log() if e["outcome"] == "created"]


def assert_books_agree(oms: OrderManager, venue: VenueServer) -> None:
    """The order manager's cash and positions equal the venue's, exactly (fees included)."""
    account = venue.engine.account()
    assert oms.portfolio.cash == Decimal(account["cash"])
    theirs = {Symbol(p["symbol"]): Decimal(p["qty"]) for p in venue.engine.positions()}
    ours = {s: q for s, q in oms.portfolio.quantities().items() if q != 0}
    assert ours == theirs


def settle(oms: OrderManager, cids: list[str], status: OrderStatus = OrderStatus.FILLED) -> None:
    """Apply broker events until every order in ``cids`` reached ``status``."""

    def done() -> bool:
        oms.process_events()
        return all(oms.get_order(ClientOrderId(c)).status is status for c in cids)  # type: ignore[union-attr]

    wait_for(done)


# -- submits whose outcome is unknown -------------------------------------------------------------
def test_case01_500_then_success_reuses_the_client_id(make_broker: Broker, admin: Admin,
                                                      venue: VenueServer) -> None:  # fmt: skip
    admin.fault(kind="http_error", status=500, phase="before")
    order = make_broker().submit(cmd("c01"))
    assert (order.status, order.client_order_id) == (OrderStatus.ACCEPTED, "c01")
    assert [p["status"] for p in admin.posts()] == [500, 200]
    assert created(admin) == ["c01"]
    assert venue_orders(venue) == {"c01": "new"}


def test_case02_504_that_created_the_order_is_found_not_resent(
    make_broker: Broker, admin: Admin, venue: VenueServer
) -> None:
    admin.fault(kind="http_error", status=504, phase="after")
    broker = make_broker()
    order = broker.submit(cmd("c02"))
    assert order.status is OrderStatus.ACCEPTED
    assert order.venue_order_id == venue.engine.order_by_client_id("c02")["id"]
    assert [(p["status"], p.get("carried_out")) for p in admin.posts()] == [(504, True)]
    assert created(admin) == ["c02"]


def test_case02_the_unmodified_sdk_resends_a_504_post(
    trading_client: TradingClient, admin: Admin, venue: VenueServer
) -> None:
    """The trap AlpacaBroker closes: the SDK's own retry POSTs again and reports the duplicate
    id although the order exists."""
    trading_client._retry_wait = 0  # its 3 s wait, shortened for the test
    admin.fault(kind="http_error", status=504, phase="after")
    request = MarketOrderRequest(symbol="AAPL", qty=1, side=SdkSide.BUY,
                                 time_in_force=SdkTif.DAY, client_order_id="sdk-504")  # fmt: skip
    with pytest.raises(APIError) as info:
        trading_client.submit_order(request)
    assert (info.value.status_code, info.value.message) == (422, "client_order_id must be unique")
    assert [p["status"] for p in admin.posts()] == [504, 422]
    assert venue_orders(venue) == {"sdk-504": "new"}  # it exists all the same


def test_case03_read_timeout_after_the_order_landed(make_broker: Broker, admin: Admin) -> None:
    admin.fault(kind="delay", seconds=1.5, phase="after")
    broker = make_broker(read_timeout_s=0.4)
    start = time.monotonic()
    order = broker.submit(cmd("c03"))
    assert time.monotonic() - start < 1.4  # did not wait for the lost answer
    assert order.status is OrderStatus.ACCEPTED
    assert len(admin.posts()) == 1
    assert created(admin) == ["c03"]


def test_case03_request_that_lands_after_the_client_gave_up(
    make_broker: Broker, admin: Admin, venue: VenueServer
) -> None:
    admin.fault(kind="delay", seconds=1.2, phase="before")
    order = make_broker(read_timeout_s=0.4).submit(cmd("c03b"))
    assert order.status is OrderStatus.ACCEPTED
    # the first POST is carried out late and refused as a duplicate of the resent one
    log = wait_for(lambda: (lambda x: x if len(x) == 2 else None)(admin.order_log()), timeout=4)
    assert [e["outcome"] for e in log] == ["created", "422 client_order_id must be unique"]
    assert venue_orders(venue) == {"c03b": "new"}


def test_case03_venue_unreachable_leaves_the_order_new_until_reconciled(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    server = start_venue(equities_panel)
    url = server.url
    server.stop()  # nothing listens on this port any more
    broker = AlpacaBroker(support.broker_config(server, base_url=url, connect_timeout_s=0.3))
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), broker,
                       initial_cash=Decimal(1_000_000))  # fmt: skip
    try:
        order = oms.submit(cmd("c03c"))
        assert order.status is OrderStatus.NEW  # unknown outcome: kept, not failed
        assert oms.reconcile().unresolved == ["c03c", "*"]  # the order, and orders/positions
        assert oms.halted
    finally:
        oms.store.close()
        broker.close()


# -- crashes of the node around the submit -------------------------------------------------------
class Crash(Exception):
    """Stands for the node being killed."""


@pytest.mark.parametrize("point", HOOK_POINTS)
def test_case04_05_crash_at_each_step_then_restart(
    point: HookPoint, make_broker: Broker, admin: Admin, venue: VenueServer, tmp_path: Path
) -> None:
    """Cases 4 (crash before the POST) and 5 (crash after the POST, before its answer is
    stored), and every other step: a new node on the same store and a new broker end with one
    venue order per client id and the venue's exact cash and positions."""
    commands = [cmd("k1", "AAPL", "10"), cmd("k2", "MSFT", "5")]
    start_bar = admin.state()["bar"]

    def hook(p: HookPoint, cid: ClientOrderId) -> None:
        if p == point and cid == "k2":
            raise Crash(f"{p} ({cid})")

    stores: list[OrderStore] = []

    def run(hooked: bool) -> OrderManager:
        stores.append(OrderStore.open_sqlite(tmp_path / "oms.db"))
        oms = OrderManager(stores[-1], make_broker(stream=True), hook=hook if hooked else None)
        assert oms.start().ok, oms.last_report.summary()  # type: ignore[union-attr]
        for command in commands:
            oms.submit(command)  # the node re-derives the same ids after a restart
        if admin.state()["bar"] == start_bar:
            admin.advance()
        settle(oms, ["k1", "k2"])
        return oms

    with pytest.raises(Crash):
        run(hooked=True)
    stores[0].close()  # what the killed process held
    oms = run(hooked=False)
    try:
        assert created(admin) == ["k1", "k2"]
        assert venue_orders(venue) == {"k1": "filled", "k2": "filled"}
        assert_books_agree(oms, venue)
        assert oms.reconcile().ok
    finally:
        oms.store.close()


def test_case05_restart_adopts_the_order_without_resubmitting(
    make_broker: Broker, admin: Admin, venue: VenueServer, tmp_path: Path
) -> None:
    def crash(p: HookPoint, cid: ClientOrderId) -> None:
        if p == "after_submit":
            raise Crash(p)

    first = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), make_broker(), hook=crash)
    with pytest.raises(Crash):
        first.submit(cmd("c05"))
    first.store.close()
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), make_broker())
    try:
        report = oms.start()
        assert (report.ok, report.resubmitted, report.updated) == (True, [], ["c05"])
        assert oms.get_order(ClientOrderId("c05")).status is OrderStatus.ACCEPTED  # type: ignore[union-attr]
        assert len(admin.posts()) == 1
    finally:
        oms.store.close()


def test_case06_restart_with_a_partially_filled_order(
    make_broker: Broker, admin: Admin, venue: VenueServer, tmp_path: Path
) -> None:
    j = venue.engine.panel.column("AAPL")
    adv = float(venue.engine.market.adv[venue.engine.bar, j])
    admin.fault(kind="partial_fill", participation_cap=40 / adv)
    first = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), make_broker(stream=True))
    first.submit(cmd("c06", qty="100", time_in_force=TimeInForce.GTC))
    admin.advance()
    settle(first, ["c06"], OrderStatus.PARTIALLY_FILLED)
    first.store.close()  # the node goes down; the rest fills meanwhile
    admin.advance()
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), make_broker())
    try:
        report = oms.start()
        assert report.ok, report.summary()
        order = oms.get_order(ClientOrderId("c06"))
        assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, Decimal(100))  # type: ignore[union-attr]
        assert len(report.adopted_fills) == 1  # the second fill, with its venue id and fee
        assert (
            report.adopted_fills[0]
            == venue.engine.order_by_client_id("c06")["tf_fills"][1]["execution_id"]
        )
        assert_books_agree(oms, venue)
    finally:
        oms.store.close()


def test_case07_position_differs_at_startup_halts(
    make_broker: Broker, admin: Admin, trading_client: TradingClient, tmp_path: Path
) -> None:
    trading_client.submit_order(MarketOrderRequest(symbol="IBM", qty=3, side=SdkSide.BUY,
                                                   time_in_force=SdkTif.DAY))  # fmt: skip
    admin.advance()
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), make_broker())
    try:
        report = oms.start()
        assert report.position_mismatches == [("IBM", Decimal(0), Decimal(3))]
        assert oms.halted
        with pytest.raises(TradingHaltedError, match="position_mismatches"):
            oms.submit(cmd("c07"))
        assert len(created(admin)) == 1  # the outside order only: the node sent nothing
    finally:
        oms.store.close()


# -- refusals --------------------------------------------------------------------------------------
def test_case08_duplicate_client_id_after_cancel(
    make_broker: Broker, admin: Admin, venue: VenueServer, trading_client: TradingClient
) -> None:
    broker = make_broker()
    broker.submit(cmd("c08", order_type=OrderType.LIMIT, limit_price=Decimal("1")))
    broker.cancel(ClientOrderId("c08"))
    assert venue_orders(venue) == {"c08": "canceled"}
    again = broker.submit(cmd("c08", qty="99"))  # same id, another order
    assert (again.status, again.quantity) == (OrderStatus.CANCELED, Decimal(10))
    trading_client._retry = 0
    with pytest.raises(APIError) as info:
        trading_client.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=SdkSide.BUY,
                                                       time_in_force=SdkTif.DAY,
                                                       client_order_id="c08"))  # fmt: skip
    assert (info.value.status_code, info.value.code) == (422, 40010001)
    assert created(admin) == ["c08"]
    assert venue_orders(venue) == {"c08": "canceled"}


def test_case09_429_waits_for_retry_after_then_succeeds(make_broker: Broker, admin: Admin) -> None:
    admin.fault(kind="http_error", status=429, retry_after=1)
    broker = make_broker()
    start = time.monotonic()
    order = broker.submit(cmd("c09"))
    assert time.monotonic() - start >= 0.95
    assert order.status is OrderStatus.ACCEPTED
    assert [p["status"] for p in admin.posts()] == [429, 200]
    assert created(admin) == ["c09"]


def test_case09_persistent_429_gives_up_without_a_storm(make_broker: Broker, admin: Admin) -> None:
    admin.fault(kind="http_error", status=429, retry_after=1, count=50)
    broker = make_broker(max_attempts=2)
    with pytest.raises(BrokerUnavailableError, match="not confirmed after 2 attempts"):
        broker.submit(cmd("c09b"))
    posts = admin.posts()
    assert [p["status"] for p in posts] == [429, 429]
    assert created(admin) == []


def test_case09_client_side_throttle(make_broker: Broker, venue: VenueServer) -> None:
    broker = make_broker(requests_per_minute=3, rate_window_s=0.5)
    start = time.monotonic()
    for _ in range(7):
        broker.account()
    assert time.monotonic() - start >= 1.0  # 7 requests at 3 per 0.5 s: two full waits
    assert broker.http_attempts == 7


def test_case10_403_is_a_definitive_rejection(make_broker: Broker, admin: Admin,
                                              tmp_path: Path) -> None:  # fmt: skip
    broker = make_broker()
    order = broker.submit(cmd("c10", side=OrderSide.SELL))  # nothing held, shorting off
    assert order.status is OrderStatus.REJECTED
    assert "HTTP 403 40310000: insufficient qty available" in order.reason
    admin.fault(kind="http_error", status=403, code=40310000, message="insufficient buying power")
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), broker)
    try:
        rejected = oms.submit(cmd("c10b"))
        assert rejected.status is OrderStatus.REJECTED
    finally:
        oms.store.close()
    assert [p["status"] for p in admin.posts()] == [403, 403]  # one each, no retry
    assert created(admin) == []


def test_case11_12_bad_orders_are_refused_before_or_at_the_venue(
    venue: VenueServer, trading_client: TradingClient, admin: Admin
) -> None:
    for bad in ({"quantity": Decimal("NaN")}, {"quantity": Decimal("Infinity")},
                {"quantity": Decimal(0)}, {"quantity": Decimal(-5)},
                {"order_type": OrderType.LIMIT}, {"stop_price": Decimal(5)}):  # fmt: skip
        fields = {"client_order_id": "bad", "strategy_id": "s", "symbol": "AAPL",
                  "side": OrderSide.BUY, "quantity": Decimal(1), **bad}  # fmt: skip
        with pytest.raises(DomainError):
            SubmitOrder(**fields)  # refused locally: no request is ever built
    http = requests.Session()
    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    try:
        for body, fragment in (
            ({"qty": 1, "notional": 5}, "expected exactly one of qty and notional"),
            ({"qty": 1, "type": "limit"}, "limit_price is required for limit orders"),
            ({"qty": 1, "extended_hours": True}, "expected a limit order with time_in_force day"),
        ):
            full = {
                "symbol": "AAPL",
                "side": "buy",
                "type": "market",
                "time_in_force": "day",
                **body,
            }
            reply = http.post(f"{venue.url}/v2/orders", json=full, headers=headers, timeout=5)
            assert reply.status_code == 422
            assert reply.json()["code"] == 40010001
            assert fragment in reply.json()["message"]
    finally:
        http.close()
    trading_client._retry = 0
    for qty in (0.0, -5.0):  # the SDK lets these through; the venue does not
        with pytest.raises(APIError) as info:
            trading_client.submit_order(MarketOrderRequest(symbol="AAPL", qty=qty, side=SdkSide.BUY,
                                                           time_in_force=SdkTif.DAY))  # fmt: skip
        assert (info.value.status_code, info.value.code) == (422, 40010001)
    # NaN: requests (2.32+) refuses to encode it, so it never leaves the client
    with pytest.raises(requests.exceptions.InvalidJSONError):
        trading_client.submit_order(MarketOrderRequest(symbol="AAPL", qty=math.nan, side=SdkSide.BUY,
                                                       time_in_force=SdkTif.DAY))  # fmt: skip
    assert [p["status"] for p in admin.posts()] == [422, 422, 422, 422, 422]
    assert created(admin) == []


def test_case13_unknown_or_untradable_symbol(equities_panel: BarPanel) -> None:
    server = start_venue(equities_panel, untradable=("IBM",))
    broker = AlpacaBroker(support.broker_config(server)).start()
    try:
        unknown = broker.submit(cmd("c13", symbol="ZZZZ"))
        assert (unknown.status, "asset 'ZZZZ' not found" in unknown.reason) == (
            OrderStatus.REJECTED,
            True,
        )
        halted = broker.submit(cmd("c13b", symbol="IBM"))
        assert halted.status is OrderStatus.REJECTED
        assert "42210000: asset IBM is not tradable" in halted.reason
        assert broker.http_attempts == 2
        with pytest.raises(OrderNotFoundError):
            broker.cancel(ClientOrderId("never-sent"))
    finally:
        broker.close()
        server.stop()


# -- fills, cancels and the stream -----------------------------------------------------------------
def test_case14_partial_fills_then_cancel_keeps_the_filled_quantity(
    make_broker: Broker, admin: Admin, venue: VenueServer, tmp_path: Path
) -> None:
    j = venue.engine.panel.column("AAPL")
    adv = float(venue.engine.market.adv[venue.engine.bar, j])
    admin.fault(kind="partial_fill", participation_cap=30 / adv, count=2)
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), make_broker(stream=True))
    try:
        oms.submit(cmd("c14", qty="100", time_in_force=TimeInForce.GTC))
        admin.advance()
        settle(oms, ["c14"], OrderStatus.PARTIALLY_FILLED)
        first = oms.get_order(ClientOrderId("c14")).filled_quantity  # type: ignore[union-attr]
        adv2 = float(venue.engine.market.adv[venue.engine.bar, j])
        admin.advance()  # a second partial fill, capped at the same fraction of the new ADV

        def second_fill() -> bool:
            oms.process_events()
            return oms.get_order(ClientOrderId("c14")).filled_quantity > first  # type: ignore[union-attr]

        wait_for(second_fill)
        oms.cancel(ClientOrderId("c14"))
        settle(oms, ["c14"], OrderStatus.CANCELED)
        order = oms.get_order(ClientOrderId("c14"))
        remote = venue.engine.order_by_client_id("c14")
        assert remote["status"] == "canceled"
        assert order.filled_quantity == Decimal(remote["filled_qty"])  # type: ignore[union-attr]
        expected = 30 / adv * adv + 30 / adv * adv2
        assert float(order.filled_quantity) == pytest.approx(expected, rel=1e-9)  # type: ignore[union-attr]
        assert_books_agree(oms, venue)
    finally:
        oms.store.close()


def test_case15_cancel_races_a_fill(make_broker: Broker, admin: Admin, venue: VenueServer,
                                    tmp_path: Path) -> None:  # fmt: skip
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), make_broker(stream=True))
    try:
        oms.submit(cmd("c15"))
        admin.advance()  # filled at the venue; the node has not seen it yet
        pending = oms.cancel(ClientOrderId("c15"))
        assert pending.status is OrderStatus.PENDING_CANCEL
        log = requests.get(f"{venue.url}/admin/requests", timeout=5).json()["http"]
        assert [e["status"] for e in log if e["method"] == "DELETE"] == [422]  # not cancelable
        settle(oms, ["c15"])
        assert_books_agree(oms, venue)
    finally:
        oms.store.close()


def test_case16_stream_disconnect_then_rest_resync_catches_the_fill(
    make_broker: Broker, admin: Admin, venue: VenueServer, tmp_path: Path
) -> None:
    broker = make_broker(stream=True)
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), broker)
    try:
        oms.submit(cmd("c16", qty="12"))
        assert admin.disconnect() == 1
        wait_for(lambda: admin.state()["stream"]["listeners"] == 0)
        delivered = admin.state()["stream"]["delivered"]
        admin.advance()  # the fill is published while nobody listens: lost
        assert admin.state()["stream"]["delivered"] == delivered
        wait_for(lambda: broker.stream_connects >= 2)  # the SDK reconnects (backoff 0.5-1 s)
        settle(oms, ["c16"])
        order = oms.get_order(ClientOrderId("c16"))
        assert order.filled_quantity == Decimal(12)  # type: ignore[union-attr]
        assert_books_agree(oms, venue)
    finally:
        oms.store.close()


def test_case17_duplicate_and_out_of_order_updates(
    make_broker: Broker, admin: Admin, venue: VenueServer, tmp_path: Path
) -> None:
    broker = make_broker(stream=True)
    oms = OrderManager(OrderStore.open_sqlite(tmp_path / "o.db"), broker)
    try:
        admin.fault(kind="reorder_events", window=2)  # the fill arrives before the "new"
        oms.submit(cmd("c17a", qty="4"))
        admin.advance()
        settle(oms, ["c17a"])
        admin.fault(kind="duplicate_events", count=2)  # "new" and "fill" each arrive twice
        oms.submit(cmd("c17b", symbol="MSFT", qty="6"))
        admin.advance()
        settle(oms, ["c17b"])
        time.sleep(0.2)  # let the duplicate fill arrive too
        oms.process_events()
        assert admin.state()["faults"] == []
        for cid, qty in (("c17a", 4), ("c17b", 6)):
            assert oms.get_order(ClientOrderId(cid)).filled_quantity == Decimal(qty)  # type: ignore[union-attr]
        assert_books_agree(oms, venue)
    finally:
        oms.store.close()


def test_case18_stream_auth_failure_is_surfaced_without_a_tight_loop(
    make_broker: Broker, admin: Admin
) -> None:
    admin.fault(kind="stream_auth", count=100)
    start = time.monotonic()
    with pytest.raises(
        BrokerUnavailableError, match=r"not listening after 2.0 s \([1-9]\d* authentication"
    ):
        make_broker(stream=True, stream_ready_timeout_s=2.0)
    assert time.monotonic() - start < 6
    attempts = admin.state()["stream"]["auth_attempts"]
    assert 1 <= attempts <= 3  # exponential backoff from 0.5-1 s: no reconnect storm


def test_case18_a_second_stream_connection_is_refused(equities_panel: BarPanel) -> None:
    server = start_venue(equities_panel, max_stream_connections=1)
    first = AlpacaBroker(support.broker_config(server, stream=True)).start()
    second = AlpacaBroker(support.broker_config(server, stream=True, stream_ready_timeout_s=1.5))
    try:
        with pytest.raises(BrokerUnavailableError, match="authentication failure"):
            second.start()
        assert server.engine.hub.stats()["auth_refused"] >= 1
        first.submit(cmd("c18"))
        server.engine.advance()
        seen: list[str] = []
        wait_for(lambda: seen.extend(e.kind for e in first.drain_events()) or "filled" in seen)
        assert seen == ["accepted", "filled"]  # the first connection is unaffected
    finally:
        second.close()
        first.close()
        server.stop()


def test_case23_the_clock_is_the_venues_replay_clock(equities_panel: BarPanel) -> None:
    short = equities_panel.slice_time(None, "2010-01-08")
    server = start_venue(short)
    broker = AlpacaBroker(support.broker_config(server)).start()
    try:
        clock = broker.clock()
        assert (clock.timestamp.isoformat(), clock.is_open) == ("2010-01-04T00:00:00+00:00", True)
        assert clock.next_open.isoformat() == "2010-01-05T00:00:00+00:00"
        server.engine.advance(4)  # the last stored bar: nothing left to trade on
        clock = broker.clock()
        assert (clock.timestamp.isoformat(), clock.is_open) == ("2010-01-08T00:00:00+00:00", False)
    finally:
        broker.close()
        server.stop()


# -- broken answers --------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["missing_status", "unknown_status", "empty", "html"])
def test_case24_malformed_2xx_submit_is_unknown_then_found(
    variant: str, make_broker: Broker, admin: Admin
) -> None:
    admin.fault(kind="malformed", variant=variant)
    order = make_broker().submit(cmd("c24"))
    assert order.status is OrderStatus.ACCEPTED
    assert [p["status"] for p in admin.posts()] == [200]
    assert created(admin) == ["c24"]


@pytest.mark.parametrize(("phase", "posts"), [("after", [502]), ("before", [502, 200])])
def test_case25_html_502(phase: str, posts: list[int], make_broker: Broker, admin: Admin) -> None:
    admin.fault(kind="http_error", status=502, body="html", phase=phase)
    order = make_broker().submit(cmd("c25"))
    assert order.status is OrderStatus.ACCEPTED
    assert [p["status"] for p in admin.posts()] == posts
    assert created(admin) == ["c25"]


def test_case26_venue_side_cancel_all_and_close_all(
    trading_client: TradingClient, admin: Admin, venue: VenueServer
) -> None:
    for cid in ("k1", "k2"):
        trading_client.submit_order(MarketOrderRequest(symbol="AAPL", qty=2, side=SdkSide.BUY,
                                                       time_in_force=SdkTif.GTC,
                                                       client_order_id=cid))  # fmt: skip
    admin.advance()
    trading_client.submit_order(MarketOrderRequest(symbol="MSFT", qty=1, side=SdkSide.BUY,
                                                   time_in_force=SdkTif.GTC,
                                                   client_order_id="k3"))  # fmt: skip
    closed = trading_client.close_all_positions(cancel_orders=True)
    assert [c.symbol for c in closed] == ["AAPL"]
    assert venue_orders(venue)["k3"] == "canceled"
    admin.advance()
    assert trading_client.get_all_positions() == []


# -- the whole path equals the in-process simulated broker ---------------------------------------
def test_venue_path_books_equal_the_simulated_broker(
    make_broker: Broker, admin: Admin, venue: VenueServer, equities_panel: BarPanel, tmp_path: Path
) -> None:
    plan = [
        [cmd("p1", "AAPL", "30"), cmd("p2", "MSFT", "12.5")],
        [cmd("p3", "AAPL", "10", OrderSide.SELL), cmd("p4", "IBM", "7")],
        [cmd("p5", "MSFT", "12.5", OrderSide.SELL)],
    ]
    sim = SimulatedBroker.from_panel(
        equities_panel, venue.engine.config.sim, start=venue.engine.bar
    )
    local = OrderManager(OrderStore.open_sqlite(tmp_path / "sim.db"), sim)
    remote = OrderManager(OrderStore.open_sqlite(tmp_path / "venue.db"), make_broker(stream=True))
    try:
        for commands in plan:
            for command in commands:
                local.submit(command)
                remote.submit(command)
            sim.advance()
            local.process_events()
            admin.advance()
            settle(remote, [c.client_order_id for c in commands])
        assert remote.portfolio == local.portfolio  # cash, positions, realised P&L, fees
        assert remote.portfolio.fees > 0
        assert_books_agree(remote, venue)
    finally:
        local.store.close()
        remote.store.close()
