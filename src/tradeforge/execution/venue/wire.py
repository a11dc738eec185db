"""Alpaca's JSON shapes, as the venue writes them (what alpaca-py's models parse).

Every shape here is checked against alpaca-py's own pydantic models in the tests (an order
against ``alpaca.trading.models.Order``, a trade update against ``TradeUpdate``...), and pinned
by the golden fixtures in ``tests/fixtures/alpaca``. Numbers that Alpaca sends as strings
(quantities, prices, cash) are strings here too, written exactly from ``Decimal``.

Fields prefixed ``tf_`` are tradeforge extensions that Alpaca does not send and alpaca-py's
models ignore: ``tf_fills`` (every execution of an order: ``execution_id``, ``qty``, ``price``,
``fee``, ``timestamp``) and ``tf_fees`` on orders, ``tf_fee`` on fill updates. They carry the
simulator's costs (``fee``), so a client that reads them keeps the same cash as the venue.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tradeforge.domain import (
    ClientOrderId,
    OrderFilled,
    OrderSide,
    OrderStatus,
    OrderType,
    Symbol,
    TimeInForce,
)
from tradeforge.execution.broker import BrokerOrder

#: Namespace of the venue's deterministic UUIDs (asset ids, account id, execution ids).
VENUE_NAMESPACE = uuid.UUID("6f1c2d3e-9a8b-4c5d-8e7f-0a1b2c3d4e5f")

#: Where the simulator's statuses land in Alpaca's vocabulary. A fresh order is ``new``
#: (Alpaca's "routed"; the POST answer itself says ``accepted``, as Alpaca's does).
ALPACA_STATUS: dict[OrderStatus, str] = {
    OrderStatus.NEW: "pending_new",
    OrderStatus.ACCEPTED: "new",
    OrderStatus.PARTIALLY_FILLED: "partially_filled",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELED: "canceled",
    OrderStatus.REJECTED: "rejected",
    OrderStatus.EXPIRED: "expired",
    OrderStatus.PENDING_CANCEL: "pending_cancel",
    OrderStatus.PENDING_REPLACE: "pending_replace",
    OrderStatus.REPLACED: "replaced",
}

#: ``BarPanel.frequency`` -> Alpaca's timeframe string.
TIMEFRAMES: dict[str, str] = {
    "1m": "1Min", "5m": "5Min", "15m": "15Min", "30m": "30Min",
    "1h": "1Hour", "4h": "4Hour", "1d": "1Day", "1w": "1Week",
}  # fmt: skip


def venue_uuid(*parts: str) -> str:
    """A deterministic UUID (version 5) for ``parts`` in the venue's namespace."""
    return str(uuid.uuid5(VENUE_NAMESPACE, "/".join(parts)))


def num(value: Decimal | None) -> str | None:
    """A Decimal as Alpaca writes numbers: a plain string without exponent (None stays None)."""
    if value is None:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def iso(ts: datetime) -> str:
    """RFC 3339 UTC with microseconds and a ``Z`` (Alpaca's order timestamps)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def bar_time(ts: datetime) -> str:
    """RFC 3339 UTC to the second (Alpaca's bar ``t``)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class VenueOrder:
    """The venue's record of one order: what the client asked for, beside the simulator's state.

    ``quantity`` is what the simulator trades: ``qty``, or for a notional order the notional
    divided by the last close at submission, rounded down to 1e-9 shares (the venue prices a
    notional order when it accepts it; Alpaca prices it at execution). ``rejected`` holds the
    reason when the venue rejected the order after acknowledging it (fault injection).
    """

    uuid: str
    client_order_id: ClientOrderId
    symbol: Symbol
    asset_id: str
    side: OrderSide
    order_type: OrderType
    time_in_force: TimeInForce
    qty: Decimal | None
    notional: Decimal | None
    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    extended_hours: bool
    created_at: datetime
    rejected: str | None = None

    def status(self, report: BrokerOrder) -> str:
        return "rejected" if self.rejected is not None else ALPACA_STATUS[report.status]


def execution_id(order: VenueOrder, fill: OrderFilled) -> str:
    """The UUID Alpaca calls ``execution_id`` for one simulator fill (stable across restarts)."""
    return venue_uuid("execution", order.uuid, fill.fill_id)


def fill_json(order: VenueOrder, fill: OrderFilled) -> dict[str, Any]:
    return {
        "execution_id": execution_id(order, fill),
        "qty": num(fill.quantity),
        "price": num(fill.price),
        "fee": num(fill.fee),
        "timestamp": iso(fill.ts),
    }


def order_json(
    order: VenueOrder,
    report: BrokerOrder,
    *,
    asset_class: str,
    fills: Sequence[OrderFilled] | None = None,
    status: str | None = None,
    updated_at: datetime | None = None,
) -> dict[str, Any]:
    """An Alpaca order. ``fills``/``status``/``updated_at`` give a snapshot as of an earlier
    event (default: the order now)."""
    shown = tuple(report.fills or ()) if fills is None else tuple(fills)
    state = status if status is not None else order.status(report)
    filled = sum((f.quantity for f in shown), Decimal(0))
    notional = sum((f.notional for f in shown), Decimal(0))
    fees = sum((f.fee for f in shown), Decimal(0))
    last_change = updated_at or max([order.created_at, report.updated_at, *(f.ts for f in shown)])
    last_change = max(last_change, order.created_at)
    done_at = iso(last_change)
    return {
        "id": order.uuid,
        "client_order_id": order.client_order_id,
        "created_at": iso(order.created_at),
        "updated_at": done_at,
        "submitted_at": iso(order.created_at),
        "filled_at": iso(shown[-1].ts) if state == "filled" and shown else None,
        "expired_at": done_at if state == "expired" else None,
        "expires_at": None,
        "canceled_at": done_at if state == "canceled" else None,
        "failed_at": done_at if state == "rejected" else None,
        "replaced_at": None,
        "replaced_by": None,
        "replaces": None,
        "asset_id": order.asset_id,
        "symbol": order.symbol,
        "asset_class": asset_class,
        "notional": num(order.notional),
        "qty": num(order.qty),
        "filled_qty": num(filled),
        "filled_avg_price": num(notional / filled) if filled else None,
        "order_class": "simple",
        "order_type": order.order_type.value,
        "type": order.order_type.value,
        "side": order.side.value,
        "position_intent": None,
        "time_in_force": order.time_in_force.value,
        "limit_price": num(order.limit_price),
        "stop_price": num(order.stop_price),
        "status": state,
        "extended_hours": order.extended_hours,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
        "tf_fees": num(fees),
        "tf_fills": [fill_json(order, f) for f in shown],
    }


def trade_update(
    event: str,
    order: dict[str, Any],
    timestamp: datetime,
    *,
    fill: OrderFilled | None = None,
    exec_id: str | None = None,
    position_qty: Decimal | None = None,
) -> dict[str, Any]:
    """One ``trade_updates`` message (the whole frame: ``{"stream", "data"}``)."""
    data: dict[str, Any] = {"event": event, "order": order, "timestamp": iso(timestamp)}
    if fill is not None:
        data.update(
            execution_id=exec_id,
            price=num(fill.price),
            qty=num(fill.quantity),
            position_qty=num(position_qty),
            tf_fee=num(fill.fee),
        )
    return {"stream": "trade_updates", "data": data}


__all__ = [
    "ALPACA_STATUS",
    "TIMEFRAMES",
    "VENUE_NAMESPACE",
    "VenueOrder",
    "bar_time",
    "execution_id",
    "fill_json",
    "iso",
    "num",
    "order_json",
    "trade_update",
    "venue_uuid",
]
