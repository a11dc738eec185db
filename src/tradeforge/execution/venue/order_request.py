"""Parsing ``POST /v2/orders`` bodies the way Alpaca validates them (before anything is placed).

The venue answers a bad body like Alpaca: 400 ``40010000`` for a body that is not a JSON
object, 422 ``40010001`` for a missing or invalid field, each message naming the field, its
value and what was expected. alpaca-py checks some of these on the client (qty XOR notional,
price fields matching the type); the venue checks them again because a raw HTTP client, or a
NaN, zero or negative ``qty`` (which the SDK lets through), must be refused here.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from tradeforge.domain import (
    ClientOrderId,
    DomainError,
    OrderSide,
    OrderType,
    TimeInForce,
    client_order_id_of,
)
from tradeforge.domain.ids import MAX_CLIENT_ORDER_ID_LENGTH
from tradeforge.execution.venue.errors import BAD_REQUEST, VALIDATION, AlpacaApiError

_UNSUPPORTED_FIELDS = ("take_profit", "stop_loss", "trail_price", "trail_percent", "legs")


@dataclass(frozen=True)
class OrderRequest:
    """A validated order request (exactly one of ``qty`` and ``notional`` is set)."""

    client_order_id: ClientOrderId
    symbol: str
    side: OrderSide
    order_type: OrderType
    time_in_force: TimeInForce
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    extended_hours: bool
    client_id_given: bool


def _invalid(message: str) -> AlpacaApiError:
    return AlpacaApiError(422, VALIDATION, message)


def _decimal(body: dict[str, Any], name: str) -> Decimal | None:
    raw = body.get(name)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _invalid(f"{name} = {raw!r} is invalid; expected a number > 0")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise _invalid(f"{name} = {raw!r} is invalid; expected a finite number > 0")
    try:
        value = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(str(raw).strip())
    except InvalidOperation:
        raise _invalid(f"{name} = {raw!r} is invalid; expected a number > 0") from None
    if not value.is_finite() or value <= 0:
        raise _invalid(f"{name} = {raw!r} is invalid; expected a finite number > 0")
    return value


def _choice(body: dict[str, Any], name: str, allowed: dict[str, Any], default: str | None) -> Any:
    raw = body.get(name, default)
    if raw is None:
        raise _invalid(f"{name} is required; expected one of {sorted(allowed)}")
    if not isinstance(raw, str) or raw.lower() not in allowed:
        raise _invalid(f"{name} = {raw!r} is invalid; expected one of {sorted(allowed)}")
    return allowed[raw.lower()]


def parse_order_request(body: Any) -> OrderRequest:
    """Validate a ``POST /v2/orders`` body; raises :class:`AlpacaApiError` (400 or 422)."""
    if not isinstance(body, dict):
        raise AlpacaApiError(400, BAD_REQUEST, "request body format is invalid")
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise _invalid(f"symbol = {symbol!r} is invalid; expected a symbol such as 'AAPL'")
    for name in _UNSUPPORTED_FIELDS:
        if body.get(name) is not None:
            raise _invalid(
                f"{name} is not supported by the tradeforge venue; expected a simple order"
            )
    order_class = body.get("order_class")
    if order_class not in (None, "", "simple"):
        raise _invalid(f"order_class = {order_class!r} is not supported; expected 'simple'")
    side = _choice(body, "side", {s.value: s for s in OrderSide}, None)
    type_name = body.get("type", body.get("order_type"))
    if type_name == "trailing_stop":
        raise _invalid("type = 'trailing_stop' is not supported by the tradeforge venue")
    order_type = _choice({"type": type_name}, "type", {t.value: t for t in OrderType}, None)
    tif = _choice(body, "time_in_force", {t.value: t for t in TimeInForce}, None)
    qty, notional = _decimal(body, "qty"), _decimal(body, "notional")
    if (qty is None) == (notional is None):
        raise _invalid(
            f"qty = {body.get('qty')!r}, notional = {body.get('notional')!r}: "
            "expected exactly one of qty and notional"
        )
    limit_price, stop_price = _decimal(body, "limit_price"), _decimal(body, "stop_price")
    for name, value, needed in (
        ("limit_price", limit_price, order_type.needs_limit_price),
        ("stop_price", stop_price, order_type.needs_stop_price),
    ):
        if needed and value is None:
            raise _invalid(f"{name} is required for {order_type.value} orders")
        if not needed and value is not None:
            raise _invalid(f"{name} = {value} is invalid for {order_type.value} orders")
    extended = body.get("extended_hours", False)
    if not isinstance(extended, bool):
        raise _invalid(f"extended_hours = {extended!r} is invalid; expected true or false")
    if extended and (order_type is not OrderType.LIMIT or tif is not TimeInForce.DAY):
        raise _invalid(
            f"extended_hours = true with type {order_type.value}, time_in_force {tif.value}; "
            "expected a limit order with time_in_force day"
        )
    if notional is not None and (
        order_type not in (OrderType.MARKET, OrderType.LIMIT) or tif is not TimeInForce.DAY
    ):
        raise _invalid(
            f"notional orders need type market or limit and time_in_force day; got "
            f"{order_type.value} / {tif.value}"
        )
    raw_id = body.get("client_order_id")
    given = raw_id not in (None, "")
    if not given:
        raw_id = str(uuid.uuid4())
    if not isinstance(raw_id, str) or len(raw_id) > MAX_CLIENT_ORDER_ID_LENGTH:
        raise _invalid(
            f"client_order_id = {raw_id!r} is invalid; expected at most "
            f"{MAX_CLIENT_ORDER_ID_LENGTH} characters"
        )
    try:
        cid = client_order_id_of(raw_id)
    except DomainError as exc:
        raise _invalid(str(exc)) from None
    return OrderRequest(
        client_order_id=cid, symbol=symbol.strip(), side=side, order_type=order_type,
        time_in_force=tif, qty=qty, notional=notional, limit_price=limit_price,
        stop_price=stop_price, extended_hours=extended, client_id_given=given,
    )  # fmt: skip


__all__ = ["OrderRequest", "parse_order_request"]
