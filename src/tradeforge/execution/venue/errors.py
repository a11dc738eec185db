"""Errors of the local venue.

::

    ExecutionError
    └── VenueError              the venue cannot start or cannot do what it was asked
        └── VenueStateError     its --state folder holds another venue's journal or is unreadable

:class:`AlpacaApiError` is not a Python-side failure: it is an answer the venue gives an HTTP
client in Alpaca's error shape (``{"code": 40010001, "message": "..."}`` with an HTTP status).
"""

from __future__ import annotations

from typing import Any

from tradeforge.execution.errors import ExecutionError


class VenueError(ExecutionError):
    """The venue cannot start, or an admin request cannot be carried out."""


class VenueStateError(VenueError):
    """The venue's state folder belongs to another configuration or cannot be read."""


class AlpacaApiError(Exception):
    """An error answer in Alpaca's wire shape: HTTP ``status``, body ``{"code", "message"}``.

    ``code`` None gives a body without ``code`` (Alpaca's 401 is ``{"message": "unauthorized"}``).
    ``extra`` adds fields (a 403 for buying power carries ``buying_power`` and ``cost_basis``).
    """

    def __init__(self, status: int, code: int | None, message: str, **extra: Any) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.code is None else {"code": self.code}
        out["message"] = self.message
        out.update(self.extra)
        return out


# Alpaca's error codes (research/broker.md section 2).
BAD_REQUEST = 40010000  # 400: request body format is invalid
VALIDATION = 40010001  # 422: a field is missing or invalid, client_order_id must be unique
FORBIDDEN = 40310000  # 403: insufficient buying power / qty, not allowed to short
NOT_FOUND = 40410000  # 404: order / position / asset not found
UNPROCESSABLE = 42210000  # 422: order is not cancelable, asset is not tradable
RATE_LIMITED = 42910000  # 429: too many requests
INTERNAL = 50010000  # 5xx

__all__ = [
    "BAD_REQUEST",
    "FORBIDDEN",
    "INTERNAL",
    "NOT_FOUND",
    "RATE_LIMITED",
    "UNPROCESSABLE",
    "VALIDATION",
    "AlpacaApiError",
    "VenueError",
    "VenueStateError",
]
