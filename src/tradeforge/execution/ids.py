"""Deterministic client order ids: the same (strategy, bar time, leg) always gives the same id.

Format (``tf1-YYYYMMDDTHHMMSS-<20 hex>``, 40 characters, within Alpaca's 48)::

    tf1-20240102T143000-3f0c9a7be21d54c08a1f

* ``tf1``: the scheme version (a future scheme changes it, so old and new ids never collide);
* the bar time in UTC, to the second, for people reading a broker's order list;
* the first 20 hex digits (80 bits) of the SHA-256 of the canonical JSON
  ``["tf1", strategy, bar_time_iso_utc_microseconds, leg, revision]``.

SHA-256 of a canonical text (never Python's ``hash``, which is salted per process) makes the id
identical in every process, machine and Python version; so a node that restarts after a crash
re-derives the ids of the orders it had already sent, and the OMS and the broker recognise
them. ``leg`` tells the orders of one bar apart (the symbol, or symbol plus a slice number);
``revision`` lets a strategy deliberately send a second order for the same leg and bar (Alpaca
refuses a reused id even after the first order was canceled).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from tradeforge.domain import MAX_CLIENT_ORDER_ID_LENGTH, ClientOrderId, StrategyId
from tradeforge.execution.errors import ExecutionError

SCHEME = "tf1"
_DIGEST_HEX = 20


def client_order_id(
    strategy: StrategyId | str, bar_time: datetime, leg: str, revision: int = 0
) -> ClientOrderId:
    """The client order id of ``leg`` decided by ``strategy`` at ``bar_time`` (see the module
    docstring). ``bar_time`` must be timezone-aware; it is converted to UTC."""
    if not isinstance(strategy, str) or not strategy:
        raise ExecutionError(f"client_order_id strategy = {strategy!r}; expected a non-empty str")
    if not isinstance(bar_time, datetime) or bar_time.tzinfo is None:
        raise ExecutionError(
            f"client_order_id bar_time = {bar_time!r}; expected a timezone-aware datetime"
        )
    if not isinstance(leg, str) or not leg:
        raise ExecutionError(f"client_order_id leg = {leg!r}; expected a non-empty str")
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
        raise ExecutionError(f"client_order_id revision = {revision!r}; expected an int >= 0")
    utc = bar_time.astimezone(UTC)
    canonical = json.dumps(
        [SCHEME, strategy, utc.isoformat(timespec="microseconds"), leg, revision],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:_DIGEST_HEX]
    value = f"{SCHEME}-{utc:%Y%m%dT%H%M%S}-{digest}"
    if len(value) > MAX_CLIENT_ORDER_ID_LENGTH:  # pragma: no cover - fixed-width format
        raise ExecutionError(f"client order id {value!r} is longer than 48 characters")
    return ClientOrderId(value)


__all__ = ["SCHEME", "client_order_id"]
