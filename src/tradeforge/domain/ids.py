"""Typed identifiers: one type per kind of id (``NewType`` over ``str``, free at run time).

mypy keeps a ``ClientOrderId`` from being passed where a ``VenueOrderId`` is expected. The
checking constructors (:func:`client_order_id_of`, :func:`strategy_id_of`, ...) validate a raw
string once, at the boundary where it enters the system.
"""

from __future__ import annotations

import re
from typing import NewType

from tradeforge.domain.errors import DomainError

#: The id the OMS gives an order (Alpaca's ``client_order_id``): at most 48 characters.
ClientOrderId = NewType("ClientOrderId", str)
#: The id the broker gives an order (Alpaca's order ``id``, a UUID).
VenueOrderId = NewType("VenueOrderId", str)
#: A strategy (one policy trading one account slice); part of every client order id.
StrategyId = NewType("StrategyId", str)
#: A tradable symbol as the broker spells it (``AAPL``, ``BTC/USD``).
Symbol = NewType("Symbol", str)
#: One execution (Alpaca's ``execution_id``); fills are deduplicated on it.
FillId = NewType("FillId", str)

MAX_CLIENT_ORDER_ID_LENGTH = 48

_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,48}$")
_STRATEGY_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SYMBOL_RE = re.compile(r"^[A-Za-z0-9./:_-]{1,32}$")


def client_order_id_of(value: str) -> ClientOrderId:
    """``value`` as a :data:`ClientOrderId`: 1 to 48 characters of ``A-Za-z0-9._:-``."""
    if not isinstance(value, str) or not _CLIENT_ID_RE.fullmatch(value):
        raise DomainError(
            f"client_order_id = {value!r}; expected 1 to {MAX_CLIENT_ORDER_ID_LENGTH} characters "
            "of A-Z a-z 0-9 . _ : -"
        )
    return ClientOrderId(value)


def strategy_id_of(value: str) -> StrategyId:
    """``value`` as a :data:`StrategyId`: 1 to 64 characters of ``A-Za-z0-9._-``."""
    if not isinstance(value, str) or not _STRATEGY_RE.fullmatch(value):
        raise DomainError(
            f"strategy_id = {value!r}; expected 1 to 64 characters of A-Z a-z 0-9 . _ -"
        )
    return StrategyId(value)


def symbol_of(value: str) -> Symbol:
    """``value`` as a :data:`Symbol`: 1 to 32 characters of ``A-Za-z0-9./:_-``."""
    if not isinstance(value, str) or not _SYMBOL_RE.fullmatch(value):
        raise DomainError(
            f"symbol = {value!r}; expected 1 to 32 characters of A-Z a-z 0-9 . / : _ -"
        )
    return Symbol(value)


__all__ = [
    "MAX_CLIENT_ORDER_ID_LENGTH",
    "ClientOrderId",
    "FillId",
    "StrategyId",
    "Symbol",
    "VenueOrderId",
    "client_order_id_of",
    "strategy_id_of",
    "symbol_of",
]
