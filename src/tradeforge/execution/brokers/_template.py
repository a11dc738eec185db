"""Template for a new broker adapter (IBKR, a FIX session, another REST venue).

Copy this file to ``brokers/<venue>.py``, rename the classes and fill in every method. The
contract is :class:`~tradeforge.execution.broker.Broker` (read its module docstring first);
:mod:`tradeforge.execution.brokers.alpaca` is a complete example. What every adapter must get
right, in the order it usually goes wrong:

1. **Never send an order twice.** ``submit`` is idempotent on ``client_order_id``. Classify
   every failure of a submit into exactly one of:

   * *not carried out* (the venue proves it: a rate-limit answer, a refused connection):
     safe to send again, with the same id, after the venue's ``Retry-After``;
   * *refused* (validation, insufficient funds or position, unknown or halted instrument):
     return a ``BrokerOrder`` with status ``rejected`` and the venue's code and text in
     ``reason``; never retry;
   * *unknown* (timeout, disconnect, 5xx, an unparseable success): look the order up by client
     id; adopt it when found; send it again with the SAME id only when the venue says it does
     not have it. If the look-up itself fails, raise ``BrokerUnavailableError``: the order
     manager keeps the order ``new`` and resolves it at its next reconciliation.

   IBKR: the client id is ``orderRef`` (``Order.orderRef``), looked up through
   ``reqOpenOrders`` / ``reqCompletedOrders``; its own ``orderId`` must come from
   ``nextValidId`` and be persisted. FIX: ``ClOrdID`` (11) with ``OrderStatusRequest`` (35=H)
   for the look-up; a duplicate ``ClOrdID`` is rejected by the venue (``OrdRejReason`` 6).
2. **Explicit timeouts** on every call, and no hidden retries in the SDK underneath (check its
   source: alpaca-py retried POSTs by default).
3. **Statuses** map onto the domain's ``OrderStatus`` (docs/execution.md has Alpaca's table).
   The venue's "working/routed" state is our ``accepted``; our ``new`` means "not yet
   acknowledged". An unknown status is an unknown outcome, not a crash.
4. **Events**: executions become ``OrderFilled`` with the venue's execution id as ``fill_id``
   (IBKR ``execId``, FIX ``ExecID`` (17)) and its commission as ``fee``; acknowledgements,
   cancels, expiries and rejections become their events. Events may repeat or come out of
   order: the order manager deduplicates by fill id and by the state table. After any
   reconnect of the event feed, re-read the open orders you know (nothing is replayed) and
   emit what was missed.
5. **Reports**: ``get_order_by_client_id`` returns ``BrokerOrder.fills`` when the venue can list
   executions (exact reconciliation), else ``None`` and the totals (the order manager infers one
   fill from them).

Tests an adapter needs (see tests/integration/test_alpaca_venue_*.py): golden JSON/FIX fixtures
of each request and answer; every fault case of research/broker.md section 5 that applies
(unknown outcomes, duplicate ids, rate limits, refusals, partial fills, cancel racing a fill,
feed disconnects, duplicate and reordered events) with the outcome "no lost and no duplicated
orders"; and no thread or socket left after ``close``.
"""

from __future__ import annotations

from tradeforge.core.config import FrozenConfig
from tradeforge.domain import ClientOrderId, OrderEvent, SubmitOrder, Symbol
from tradeforge.execution.broker import BrokerAccount, BrokerOrder, BrokerPosition


class TemplateBrokerConfig(FrozenConfig):
    """Connection and patience settings (``<Venue>BrokerConfig``): endpoints, credentials as
    ``SecretStr``, per-call timeouts, attempts and backoff, rate limits."""

    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    max_attempts: int = 3


class TemplateBroker:
    """Skeleton of a venue adapter: every method of the ``Broker`` protocol, to fill in."""

    def __init__(self, config: TemplateBrokerConfig) -> None:
        self.config = config

    def start(self) -> TemplateBroker:
        """Connect the event feed; return once it is live (gate orders on readiness)."""
        raise NotImplementedError("connect the venue's event feed")

    def close(self) -> None:
        """Stop every thread and close every socket this adapter opened."""
        raise NotImplementedError("stop the event feed and close connections")

    def submit(self, command: SubmitOrder) -> BrokerOrder:
        raise NotImplementedError("place the order at most once (see point 1)")

    def cancel(self, client_order_id: ClientOrderId) -> None:
        raise NotImplementedError("request a cancel; 'already done' is not an error")

    def get_order_by_client_id(self, client_order_id: ClientOrderId) -> BrokerOrder | None:
        raise NotImplementedError("look the order up by client id; None when unknown")

    def list_open_orders(self) -> list[BrokerOrder]:
        raise NotImplementedError("every open order at the venue (paged)")

    def positions(self) -> dict[Symbol, BrokerPosition]:
        raise NotImplementedError("signed holdings per symbol")

    def account(self) -> BrokerAccount:
        raise NotImplementedError("cash, buying power and equity")

    def drain_events(self) -> list[OrderEvent]:
        raise NotImplementedError("events since the last call, oldest first (point 4)")


__all__ = ["TemplateBroker", "TemplateBrokerConfig"]
