"""The trade-updates fan-out: engine events to every listening websocket, through the faults.

The engine publishes each trade update once (from whatever thread carried out the request);
:class:`StreamHub` applies the stream faults (drop, duplicate, reorder) and hands the message
to each subscribed connection's queue on that connection's event loop. Updates published while
nobody listens are gone, as on Alpaca: nothing is replayed after a reconnect.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from tradeforge.execution.venue.faults import FaultPlan

Message = dict[str, Any]


@dataclass(eq=False)
class Subscription:
    """One listening connection: ``None`` in its queue means "close the connection now"."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Message | None] = field(default_factory=asyncio.Queue)


class StreamHub:
    """Subscriptions and fault-aware delivery of trade updates (thread-safe)."""

    def __init__(self, faults: FaultPlan) -> None:
        self._faults = faults
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._held: list[Message] = []
        self._hold = 0
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.auth_attempts = 0
        self.auth_refused = 0
        self.connected = 0  # authorized connections now open (changed on the server's loop)

    def subscribe(self) -> Subscription:
        """Register the calling connection (call from its event loop)."""
        sub = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    @property
    def listeners(self) -> int:
        with self._lock:
            return len(self._subs)

    def publish(self, message: Message) -> None:
        """Send one trade update to every listener, after the stream faults."""
        event = str(message.get("data", {}).get("event", ""))
        with self._lock:
            self.published += 1
            if self._faults.take_drop(event):
                self.dropped += 1
                return
            copies = [message, message] if self._faults.take_duplicate() else [message]
            if not self._hold:
                self._hold = self._faults.take_reorder()
            if self._hold:
                self._held.extend(copies)
                if len(self._held) < self._hold:
                    return
                copies, self._held, self._hold = list(reversed(self._held)), [], 0
            for msg in copies:
                self._deliver(msg)

    def _deliver(self, message: Message | None) -> None:
        for sub in list(self._subs):
            try:
                sub.loop.call_soon_threadsafe(sub.queue.put_nowait, message)
            except RuntimeError:  # its loop is closed: the connection is gone
                self._subs.remove(sub)
                continue
            if message is not None:
                self.delivered += 1

    def disconnect_all(self) -> int:
        """Close every listening connection (clients see the socket drop); returns how many."""
        with self._lock:
            n = len(self._subs)
            self._deliver(None)
            return n

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "listeners": len(self._subs), "published": self.published,
                "delivered": self.delivered, "dropped": self.dropped, "held": len(self._held),
                "auth_attempts": self.auth_attempts, "auth_refused": self.auth_refused,
                "connected": self.connected,
            }  # fmt: skip


__all__ = ["Message", "StreamHub", "Subscription"]
