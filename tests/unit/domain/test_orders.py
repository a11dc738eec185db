"""tradeforge.domain orders: the (from, to) state table, fills, and its invariants under random
event sequences (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge.core.errors import TradeforgeError
from tradeforge.domain import (
    TRANSITIONS,
    ClientOrderId,
    FillId,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderCancelRequested,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRejected,
    OrderReplaceRequested,
    OrderSide,
    OrderStateError,
    OrderStatus,
    OrderSubmitted,
    SubmitOrder,
    VenueOrderId,
    event_from_json,
    event_to_json,
)

S = OrderStatus
T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
CID = ClientOrderId("tf1-test-0001")

# The state table as docs/execution.md states it (the spec the code is checked against).
SPEC: dict[OrderStatus, set[OrderStatus]] = {
    S.NEW: {S.ACCEPTED, S.REJECTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED,
            S.PENDING_CANCEL},
    S.ACCEPTED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED,
                 S.PENDING_CANCEL, S.PENDING_REPLACE},
    S.PARTIALLY_FILLED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.PENDING_CANCEL,
                         S.PENDING_REPLACE},
    S.PENDING_CANCEL: {S.PENDING_CANCEL, S.NEW, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED,
                       S.CANCELED, S.EXPIRED, S.REJECTED},
    S.PENDING_REPLACE: {S.PENDING_REPLACE, S.ACCEPTED, S.PARTIALLY_FILLED, S.REPLACED, S.FILLED,
                        S.CANCELED, S.EXPIRED, S.PENDING_CANCEL},
    S.FILLED: set(),
    S.CANCELED: set(),
    S.REJECTED: set(),
    S.EXPIRED: set(),
    S.REPLACED: set(),
}  # fmt: skip


def make_order(quantity: str = "10", side: OrderSide = OrderSide.BUY) -> Order:
    command = SubmitOrder(
        client_order_id=CID, strategy_id="momo", symbol="AAPL", side=side,
        quantity=Decimal(quantity),
    )  # fmt: skip
    return Order.create(OrderSubmitted(client_order_id=CID, ts=T0, command=command))


def fill(
    fill_id: str, quantity: str, price: str = "100", fee: str = "0", **kw: object
) -> OrderFilled:
    fields: dict[str, object] = {
        "client_order_id": CID, "ts": T0 + timedelta(minutes=1), "fill_id": FillId(fill_id),
        "symbol": "AAPL", "side": OrderSide.BUY, "quantity": Decimal(quantity),
        "price": Decimal(price), "fee": Decimal(fee),
    }  # fmt: skip
    fields.update(kw)
    return OrderFilled(**fields)  # type: ignore[arg-type]


def accepted(venue: str = "v-1") -> OrderAccepted:
    return OrderAccepted(client_order_id=CID, ts=T0, venue_order_id=VenueOrderId(venue))


def test_transition_table_is_the_documented_one() -> None:
    as_pairs = {(a, b) for a, targets in SPEC.items() for b in targets}
    assert as_pairs == set(TRANSITIONS)
    assert all(not SPEC[s] for s in S if s.is_terminal)


def test_full_lifecycle_with_partial_fills() -> None:
    order = make_order("10").apply(accepted())
    assert (order.status, order.venue_order_id) == (S.ACCEPTED, "v-1")
    order = order.apply(fill("e1", "4", "100.50", "0.10"))
    assert order.status is S.PARTIALLY_FILLED
    assert order.leaves_quantity == Decimal(6)
    order = order.apply(fill("e2", "6", "101", "0.05"))
    assert order.status is S.FILLED
    assert order.filled_quantity == Decimal(10)
    assert order.filled_notional == Decimal("1008.00")
    assert order.avg_fill_price == Decimal("100.8")
    assert order.fees == Decimal("0.15")
    assert order.fill_ids == ("e1", "e2")
    assert order.event_count == 4
    assert order.leaves_quantity == 0


def test_fill_before_ack_is_accepted_and_cancel_keeps_filled_quantity() -> None:
    order = make_order("10").apply(fill("e1", "3"))
    assert order.status is S.PARTIALLY_FILLED
    order = order.apply(OrderCancelRequested(client_order_id=CID, ts=T0))
    order = order.apply(fill("e2", "2"))  # a fill racing the cancel keeps it pending
    assert order.status is S.PENDING_CANCEL
    order = order.apply(OrderCanceled(client_order_id=CID, ts=T0, reason="user"))
    assert (order.status, order.filled_quantity, order.reason) == (S.CANCELED, 5, "user")


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ([], S.NEW),
        ([accepted()], S.ACCEPTED),
        ([accepted(), fill("e1", "1")], S.PARTIALLY_FILLED),
    ],
)
def test_cancel_rejected_returns_to_the_open_status(
    prefix: list[OrderEvent], expected: OrderStatus
) -> None:
    order = make_order()
    for event in prefix:
        order = order.apply(event)
    order = order.apply(OrderCancelRequested(client_order_id=CID, ts=T0))
    assert order.status is S.PENDING_CANCEL
    order = order.apply(OrderCancelRejected(client_order_id=CID, ts=T0, reason="too late"))
    assert order.status is expected


@pytest.mark.parametrize(
    ("events", "match"),
    [
        ([OrderReplaceRequested(client_order_id=CID, ts=T0)], "from new to pending_replace"),
        ([accepted(), accepted()], "from accepted to accepted"),
        ([accepted("v-1"), OrderCancelRequested(client_order_id=CID, ts=T0), accepted("v-2")],
         "already has 'v-1'"),
        ([fill("e1", "11")], "at most the order quantity 10"),
        ([fill("e1", "4"), fill("e1", "4")], "already applied"),
        ([fill("e1", "4", side=OrderSide.SELL)], "expected buy AAPL"),
        ([fill("e1", "1"), OrderRejected(client_order_id=CID, ts=T0, reason="x")],
         "from partially_filled to rejected"),
        ([OrderCancelRequested(client_order_id=CID, ts=T0), fill("e1", "1"),
          OrderRejected(client_order_id=CID, ts=T0, reason="x")], "only before any fill"),
        ([OrderCancelRejected(client_order_id=CID, ts=T0)], "from new to new"),
        ([OrderCanceled(client_order_id=ClientOrderId("other"), ts=T0)], "expected 'tf1-test-0001'"),
    ],
)  # fmt: skip
def test_illegal_events_raise_order_state_error(events: list[OrderEvent], match: str) -> None:
    order = make_order("10")
    *prefix, last = events
    for event in prefix:
        order = order.apply(event)
    with pytest.raises(OrderStateError, match=match) as info:
        order.apply(last)
    assert isinstance(info.value, TradeforgeError)


def test_submitted_only_creates() -> None:
    order = make_order()
    with pytest.raises(OrderStateError, match="only to create"):
        order.apply(OrderSubmitted(client_order_id=CID, ts=T0, command=order.command))


TERMINAL_PATHS: dict[OrderStatus, list[OrderEvent]] = {
    S.FILLED: [fill("e1", "10")],
    S.CANCELED: [OrderCanceled(client_order_id=CID, ts=T0)],
    S.REJECTED: [OrderRejected(client_order_id=CID, ts=T0, reason="no buying power")],
    S.EXPIRED: [accepted(), OrderExpired(client_order_id=CID, ts=T0)],
    S.REPLACED: [accepted(), OrderReplaceRequested(client_order_id=CID, ts=T0),
                 OrderReplaced(client_order_id=CID, ts=T0, replaced_by=ClientOrderId("tf1-b"))],
}  # fmt: skip
ANY_EVENT: list[OrderEvent] = [
    accepted(), fill("e9", "1"), OrderCancelRequested(client_order_id=CID, ts=T0),
    OrderCanceled(client_order_id=CID, ts=T0), OrderExpired(client_order_id=CID, ts=T0),
    OrderRejected(client_order_id=CID, ts=T0, reason="r"),
    OrderReplaceRequested(client_order_id=CID, ts=T0),
    OrderCancelRejected(client_order_id=CID, ts=T0),
]  # fmt: skip


@pytest.mark.parametrize("terminal", list(TERMINAL_PATHS))
def test_terminal_statuses_absorb(terminal: OrderStatus) -> None:
    order = make_order("10")
    for event in TERMINAL_PATHS[terminal]:
        order = order.apply(event)
    assert order.status is terminal
    assert order.is_terminal
    assert not order.is_open
    assert order.leaves_quantity == 0
    for event in ANY_EVENT:
        assert not order.can_apply(event)
        with pytest.raises(OrderStateError, match="terminal"):
            order.apply(event)


# -- random event sequences ------------------------------------------------------------------
def _event(kind: str, n: int, qty: int) -> OrderEvent:
    ts = T0 + timedelta(seconds=n)
    if kind == "fill":
        return fill(f"e{n % 4}", str(qty), price=str(100 + n))
    if kind == "accepted":
        return accepted(f"v-{n % 2}")
    simple = {
        "cancel_requested": OrderCancelRequested, "cancel_rejected": OrderCancelRejected,
        "canceled": OrderCanceled, "expired": OrderExpired,
        "replace_requested": OrderReplaceRequested, "replace_rejected": OrderReplaceRejected,
    }  # fmt: skip
    if kind in simple:
        return simple[kind](client_order_id=CID, ts=ts)  # type: ignore[no-any-return]
    if kind == "rejected":
        return OrderRejected(client_order_id=CID, ts=ts, reason="r")
    return OrderReplaced(client_order_id=CID, ts=ts, replaced_by=ClientOrderId("tf1-next"))


KINDS = ["fill", "fill", "fill", "accepted", "cancel_requested", "cancel_rejected", "canceled",
         "expired", "replace_requested", "replace_rejected", "rejected", "replaced"]  # fmt: skip
events_strategy = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 50), st.integers(1, 6)), max_size=25
)


def expected_target(order: Order, event: OrderEvent) -> OrderStatus:
    """An independent statement of the event -> status rules of docs/execution.md."""
    pending = order.status in (S.PENDING_CANCEL, S.PENDING_REPLACE)
    if isinstance(event, OrderFilled):
        if order.filled_quantity + event.quantity == order.quantity:
            return S.FILLED
        return order.status if pending else S.PARTIALLY_FILLED
    if isinstance(event, OrderAccepted):
        return order.status if pending else S.ACCEPTED
    if isinstance(event, OrderCancelRejected | OrderReplaceRejected):
        if order.filled_quantity > 0:
            return S.PARTIALLY_FILLED
        return S.ACCEPTED if order.venue_order_id is not None else S.NEW
    return {
        OrderCancelRequested: S.PENDING_CANCEL, OrderReplaceRequested: S.PENDING_REPLACE,
        OrderCanceled: S.CANCELED, OrderExpired: S.EXPIRED, OrderRejected: S.REJECTED,
        OrderReplaced: S.REPLACED,
    }[type(event)]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(steps=events_strategy, quantity=st.integers(1, 12))
def test_random_sequences_accept_only_legal_moves(
    steps: list[tuple[str, int, int]], quantity: int
) -> None:
    order = make_order(str(quantity))
    applied_fills: list[OrderFilled] = []
    for kind, n, qty in steps:
        event = _event(kind, n, qty)
        before = order
        target = expected_target(order, event)
        legal = (
            not order.is_terminal
            and (order.status, target) in TRANSITIONS
            and not (isinstance(event, OrderFilled) and (
                event.fill_id in order.fill_ids
                or order.filled_quantity + event.quantity > order.quantity))
            and not (isinstance(event, OrderRejected) and order.filled_quantity > 0)
            and not (isinstance(event, OrderAccepted) and order.venue_order_id not in (
                None, event.venue_order_id))
        )  # fmt: skip
        if legal:
            order = order.apply(event)
            assert order.status is target
            assert order.event_count == before.event_count + 1
            if isinstance(event, OrderFilled):
                applied_fills.append(event)
        else:
            with pytest.raises(OrderStateError):
                order.apply(event)
            assert order == before
        # invariants
        assert 0 <= order.filled_quantity <= order.quantity
        assert order.filled_quantity == sum((f.quantity for f in applied_fills), Decimal(0))
        assert order.filled_notional == sum((f.notional for f in applied_fills), Decimal(0))
        assert (order.status is S.FILLED) == (order.filled_quantity == order.quantity)
        if before.is_terminal:
            assert order == before


@pytest.mark.parametrize("event", [*ANY_EVENT, TERMINAL_PATHS[S.REPLACED][-1]])
def test_events_round_trip_through_json(event: OrderEvent) -> None:
    assert event_from_json(event_to_json(event)) == event


def test_order_round_trips_through_json() -> None:
    order = make_order("10").apply(accepted()).apply(fill("e1", "2.5", "187.25", "0.01"))
    assert Order.model_validate_json(order.model_dump_json()) == order
