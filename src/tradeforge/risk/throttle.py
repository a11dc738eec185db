"""Order-rate throttle and duplicate-order window: the checks that remember past orders.

Both count only APPROVED orders (a denied order is never sent, so it uses no message budget)
and read time from the clock the engine is given (``core.clock``: ``LiveClock`` in trading,
``TestClock`` in tests and backtests). Windows are sliding: "per second" means the orders
approved in the last second before now, not in the current calendar second. They live in
memory: a restart starts them empty.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal

from tradeforge.domain import SubmitOrder

_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)

OrderKey = tuple[str, str, str, Decimal, str, Decimal | None, Decimal | None, str]


def order_key(order: SubmitOrder) -> OrderKey:
    """What makes two orders duplicates: everything but the client order id."""
    return (order.strategy_id, order.symbol, order.side.value, order.quantity,
            order.order_type.value, order.limit_price, order.stop_price,
            order.time_in_force.value)  # fmt: skip


class OrderThrottle:
    """At most ``per_second`` orders in any one-second window and ``per_minute`` in any
    one-minute window (None: no limit)."""

    def __init__(self, per_second: int | None, per_minute: int | None) -> None:
        self.per_second = per_second
        self.per_minute = per_minute
        self._times: deque[datetime] = deque()

    def _prune(self, now: datetime) -> None:
        keep = _MINUTE if self.per_minute is not None else _SECOND
        while self._times and self._times[0] <= now - keep:
            self._times.popleft()

    def count(self, now: datetime, window: timedelta) -> int:
        """Approved orders in ``(now - window, now]``."""
        start, n = now - window, 0
        for t in reversed(self._times):  # appended in clock order: newest last
            if t <= start:
                break
            n += 1
        return n

    def exceeded(self, now: datetime) -> str | None:
        """``"second"`` or ``"minute"`` when one more order now would exceed that limit."""
        self._prune(now)
        if self.per_second is not None and self.count(now, _SECOND) >= self.per_second:
            return "second"
        if self.per_minute is not None and self.count(now, _MINUTE) >= self.per_minute:
            return "minute"
        return None

    def record(self, now: datetime) -> None:
        self._times.append(now)


class DuplicateWindow:
    """Remembers approved orders for ``window_s`` seconds (None: off) by :func:`order_key`."""

    def __init__(self, window_s: float | None) -> None:
        self.window_s = window_s
        self._seen: dict[OrderKey, datetime] = {}

    def previous(self, order: SubmitOrder, now: datetime) -> datetime | None:
        """When the same order was last approved, if within the window."""
        if self.window_s is None:
            return None
        horizon = now - timedelta(seconds=self.window_s)
        if len(self._seen) > 1024:
            self._seen = {k: t for k, t in self._seen.items() if t > horizon}
        seen = self._seen.get(order_key(order))
        return seen if seen is not None and seen > horizon else None

    def record(self, order: SubmitOrder, now: datetime) -> None:
        self._seen[order_key(order)] = now


__all__ = ["DuplicateWindow", "OrderKey", "OrderThrottle", "order_key"]
