"""Fault injection: what the venue's admin endpoint can make it do wrong, for tests.

Each fault is a small frozen config with a ``kind`` and a ``count`` (how many matching requests,
events or bars it affects before it is used up). ``POST /admin/faults`` adds one; they are
matched in the order they were added. Faults are test machinery: they live in memory and are
not journaled (a restarted venue has none).

HTTP faults (matched on ``method`` and ``path``; ``path`` ending in ``*`` is a prefix):

* ``http_error``: answer ``status`` (429, 5xx, 403...) with a JSON, HTML or empty body. With
  ``phase="before"`` the request is not carried out; with ``phase="after"`` it IS carried out
  and its answer replaced (a 504 that created the order). A 429 carries ``Retry-After`` and
  ``X-Ratelimit-*`` headers when ``retry_after`` is set.
* ``delay``: hold the request ``seconds`` before carrying it out (``phase="before"``: it lands
  after the client gave up), or carry it out and hold the answer (``phase="after"``: the
  acknowledgement is lost to a client timeout).
* ``malformed``: carry the request out and answer 200 with a broken body (``status`` missing,
  an unknown ``status``, an empty body, or HTML).

Stream and engine faults:

* ``drop_events``: the next ``count`` trade updates (of the listed ``events``, or any) are
  never sent: lost acknowledgements or fills.
* ``duplicate_events``: the next ``count`` trade updates are sent twice.
* ``reorder_events``: the next ``window`` trade updates are held, then sent in reverse order
  (``count`` times).
* ``stream_auth``: the next ``count`` stream authentications are answered ``unauthorized``.
* ``partial_fill``: the next ``count`` bar advances cap fills at ``participation_cap * ADV`` per
  symbol (the simulator's own participation rule), so large orders fill in part.
* ``reject``: the next ``count`` orders (of ``symbol``, or any) are acknowledged, then rejected
  with ``reason`` (a ``rejected`` trade update).

``POST /admin/disconnect`` (not a queued fault) closes every stream connection at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from tradeforge.core.config import FrozenConfig, format_validation_error
from tradeforge.execution.venue.errors import VenueError


class _Fault(FrozenConfig):
    count: int = Field(default=1, ge=1, le=1_000_000)


class _HttpFault(_Fault):
    method: str = "POST"
    path: str = "/v2/orders"

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


class HttpErrorFault(_HttpFault):
    kind: Literal["http_error"] = "http_error"
    status: int = Field(default=500, ge=400, le=599)
    phase: Literal["before", "after"] = "before"
    body: Literal["json", "html", "empty"] = "json"
    code: int | None = None
    message: str | None = None
    retry_after: float | None = Field(default=None, ge=0, le=3600)


class DelayFault(_HttpFault):
    kind: Literal["delay"] = "delay"
    seconds: float = Field(gt=0, le=60)
    phase: Literal["before", "after"] = "after"


class MalformedFault(_HttpFault):
    kind: Literal["malformed"] = "malformed"
    variant: Literal["missing_status", "unknown_status", "empty", "html"] = "missing_status"


class DropEventsFault(_Fault):
    kind: Literal["drop_events"] = "drop_events"
    events: tuple[str, ...] | None = None


class DuplicateEventsFault(_Fault):
    kind: Literal["duplicate_events"] = "duplicate_events"


class ReorderEventsFault(_Fault):
    kind: Literal["reorder_events"] = "reorder_events"
    window: int = Field(default=2, ge=2, le=1000)


class StreamAuthFault(_Fault):
    kind: Literal["stream_auth"] = "stream_auth"


class PartialFillFault(_Fault):
    kind: Literal["partial_fill"] = "partial_fill"
    participation_cap: float = Field(gt=0, le=1)


class RejectFault(_Fault):
    kind: Literal["reject"] = "reject"
    symbol: str | None = None
    reason: str = "rejected by the venue (injected fault)"


Fault = Annotated[
    HttpErrorFault
    | DelayFault
    | MalformedFault
    | DropEventsFault
    | DuplicateEventsFault
    | ReorderEventsFault
    | StreamAuthFault
    | PartialFillFault
    | RejectFault,
    Field(discriminator="kind"),
]
HttpFault = HttpErrorFault | DelayFault | MalformedFault
_ADAPTER: TypeAdapter[Fault] = TypeAdapter(Fault)
FAULT_KINDS: tuple[str, ...] = (
    "http_error", "delay", "malformed", "drop_events", "duplicate_events", "reorder_events",
    "stream_auth", "partial_fill", "reject",
)  # fmt: skip


def parse_fault(raw: Any) -> Fault:
    """A fault from its JSON form; :class:`VenueError` names the bad field."""
    if isinstance(raw, dict) and raw.get("kind") not in FAULT_KINDS:
        raise VenueError(f"fault kind = {raw.get('kind')!r}; expected one of {list(FAULT_KINDS)}")
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise VenueError(format_validation_error(exc, "fault")) from None


@dataclass
class _Armed:
    id: int
    fault: Fault
    left: int


class FaultPlan:
    """The faults waiting to fire (thread-safe). ``take`` uses one count of the first match."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []
        self._next_id = 1
        self.fired: dict[str, int] = {}

    def add(self, fault: Fault) -> int:
        with self._lock:
            fid = self._next_id
            self._next_id += 1
            self._armed.append(_Armed(fid, fault, fault.count))
            return fid

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"id": a.id, "left": a.left, **a.fault.model_dump(mode="json")} for a in self._armed
            ]

    def _take(self, predicate: Any) -> Fault | None:
        with self._lock:
            for armed in self._armed:
                if predicate(armed.fault):
                    armed.left -= 1
                    if armed.left <= 0:
                        self._armed.remove(armed)
                    self.fired[armed.fault.kind] = self.fired.get(armed.fault.kind, 0) + 1
                    return armed.fault
        return None

    def take_http(self, method: str, path: str) -> HttpFault | None:
        found = self._take(
            lambda f: (
                isinstance(f, HttpErrorFault | DelayFault | MalformedFault)
                and f.matches(method, path)
            )
        )
        return found if isinstance(found, HttpErrorFault | DelayFault | MalformedFault) else None

    def take_drop(self, event: str) -> bool:
        return (
            self._take(
                lambda f: isinstance(f, DropEventsFault) and (f.events is None or event in f.events)
            )
            is not None
        )

    def take_duplicate(self) -> bool:
        return self._take(lambda f: isinstance(f, DuplicateEventsFault)) is not None

    def take_reorder(self) -> int:
        """How many events to hold and reverse (0: none)."""
        found = self._take(lambda f: isinstance(f, ReorderEventsFault))
        return found.window if isinstance(found, ReorderEventsFault) else 0

    def take_stream_auth(self) -> bool:
        return self._take(lambda f: isinstance(f, StreamAuthFault)) is not None

    def take_partial_fill(self) -> float | None:
        found = self._take(lambda f: isinstance(f, PartialFillFault))
        return found.participation_cap if isinstance(found, PartialFillFault) else None

    def take_reject(self, symbol: str) -> str | None:
        found = self._take(
            lambda f: isinstance(f, RejectFault) and (f.symbol is None or f.symbol == symbol)
        )
        return found.reason if isinstance(found, RejectFault) else None


__all__ = [
    "FAULT_KINDS",
    "DelayFault",
    "DropEventsFault",
    "DuplicateEventsFault",
    "Fault",
    "FaultPlan",
    "HttpErrorFault",
    "HttpFault",
    "MalformedFault",
    "PartialFillFault",
    "RejectFault",
    "ReorderEventsFault",
    "StreamAuthFault",
    "parse_fault",
]
