"""The order manager: intents persisted before they are sent, broker events applied once,
and reconciliation with the broker by client order id after a restart.

Write-ahead order of every submit (each step is durable before the next starts)::

    submit(command)
      1. intent: Order(new) + OrderSubmitted committed to the store     hook "before_intent" / "after_intent"
      2. broker.submit(command)                                         hook "after_submit"
      3. the reply (accepted / rejected / fills) committed              hook "after_ack"
    process_events()
      4. each broker event: deduplicated, then committed with the new
         order state (and, for a fill, the new position and cash)       hook "fill_received" / "after_fill"

    submit_many(commands)      (a bar's orders: two commits instead of two per order)
      1. every new intent committed in ONE transaction                hooks per order, as above
      2..3. each order sent in turn, the replies committed in ONE transaction
    process_events() runs inside one transaction as well (a bar's fills, one commit). Inside a
    batch the hooks that follow a write ("after_ack", "after_fill") fire once the batch has
    committed, so at every hook point the same steps are durable as without batching. A batch
    that fails (its commit included) rolls back whole; the manager then reloads its open orders
    and portfolio from the store, so its memory never holds a rolled-back write.

A process that dies anywhere in between restarts with :meth:`OrderManager.start`, which calls
:meth:`OrderManager.reconcile`: every order the store holds as open is looked up at the broker by
client order id. An order still ``new`` that the broker does not know is sent now (with the same
id: a broker that had it would refuse a duplicate); one the broker knows is brought up to date
(acknowledgement, fills the broker made while this process was down, final status) without ever
being sent again. Orders the broker holds that the store does not know, orders the store has
acknowledged that the broker does not know, fills that disagree, and positions that differ
from the broker's all count as unexplained differences: the manager then halts (``submit``
raises ``TradingHaltedError``) until a later reconciliation passes.

The hooks exist so tests can kill the process at each step (a hook that raises); they are
called with the step's name and the client order id. Not thread-safe: one manager per store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from tradeforge.core.clock import Clock, LiveClock
from tradeforge.domain import (
    ClientOrderId,
    FillId,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRequested,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderSubmitted,
    Portfolio,
    SubmitOrder,
    Symbol,
)
from tradeforge.execution.broker import Broker, BrokerOrder
from tradeforge.execution.errors import (
    BrokerUnavailableError,
    ExecutionError,
    TradingHaltedError,
)
from tradeforge.execution.store import OrderStore

logger = logging.getLogger(__name__)

HookPoint = Literal[
    "before_intent", "after_intent", "after_submit", "after_ack", "fill_received", "after_fill"
]
Hook = Callable[[HookPoint, ClientOrderId], None]
HOOK_POINTS: tuple[HookPoint, ...] = (
    "before_intent", "after_intent", "after_submit", "after_ack", "fill_received", "after_fill",
)  # fmt: skip


# Hook points that follow a write: inside a batch they fire after its commit, so a hook sees
# (and a crash there leaves) its step durable, as outside a batch.
_AFTER_WRITE: frozenset[HookPoint] = frozenset({"after_ack", "after_fill"})


@dataclass
class ReconcileReport:
    """What a reconciliation did and found.

    * ``resubmitted``: orders recorded as intents that the broker did not have, now sent;
    * ``updated``: orders brought up to date from the broker; ``adopted_fills``: fills taken
      from the broker that the store did not have (made while this process was down, or lost
      before they were stored);
    * ``unresolved``: orders the broker could not be asked about (``BrokerUnavailableError``);
    * ``missing_at_broker``: acknowledged orders the broker does not know;
    * ``unknown_at_broker``: open broker orders the store does not know;
    * ``order_mismatches``: orders whose broker state contradicts the store (text per order);
    * ``position_mismatches``: ``(symbol, local quantity, broker quantity)``.
    """

    resubmitted: list[ClientOrderId] = field(default_factory=list)
    updated: list[ClientOrderId] = field(default_factory=list)
    adopted_fills: list[FillId] = field(default_factory=list)
    unresolved: list[ClientOrderId] = field(default_factory=list)
    missing_at_broker: list[ClientOrderId] = field(default_factory=list)
    unknown_at_broker: list[ClientOrderId] = field(default_factory=list)
    order_mismatches: list[str] = field(default_factory=list)
    position_mismatches: list[tuple[Symbol, Decimal, Decimal]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No unexplained difference and nothing left unresolved."""
        return not (
            self.unresolved or self.missing_at_broker or self.unknown_at_broker
            or self.order_mismatches or self.position_mismatches
        )  # fmt: skip

    def summary(self) -> str:
        parts = [
            f"{name}={value}"
            for name, value in vars(self).items()
            if value and name not in ("resubmitted", "updated", "adopted_fills")
        ]
        return "; ".join(parts) or "ok"


_TERMINAL_EVENT = {
    OrderStatus.CANCELED: OrderCanceled,
    OrderStatus.EXPIRED: OrderExpired,
}


class OrderManager:
    """Ties the store and a broker together (see the module docstring).

    ``initial_cash`` seeds the portfolio of a new store (default: the broker account's cash);
    an existing store keeps its own. ``clock`` stamps the OMS's own events.
    """

    def __init__(
        self,
        store: OrderStore,
        broker: Broker,
        *,
        clock: Clock | None = None,
        hook: Hook | None = None,
        initial_cash: Decimal | None = None,
    ) -> None:
        self.store = store
        self.broker = broker
        self.clock: Clock = clock or LiveClock()
        self._hook = hook
        self._open: dict[ClientOrderId, Order] = {
            o.client_order_id: o for o in store.load_orders(open_only=True)
        }
        portfolio = store.load_portfolio()
        if portfolio is None:
            cash = initial_cash if initial_cash is not None else broker.account().cash
            portfolio = store.init_account(cash)
        self._portfolio = portfolio
        self._halted = False
        # inside a batch: the hooks that follow a write, fired once the batch is committed
        self._deferred: list[tuple[HookPoint, ClientOrderId]] | None = None
        self.last_report: ReconcileReport | None = None

    # -- state --------------------------------------------------------------------------------
    @property
    def portfolio(self) -> Portfolio:
        return self._portfolio

    @property
    def halted(self) -> bool:
        return self._halted

    def open_orders(self) -> list[Order]:
        return list(self._open.values())

    def get_order(self, client_order_id: ClientOrderId) -> Order | None:
        order = self._open.get(client_order_id)
        return order if order is not None else self.store.get_order(client_order_id)

    # -- commands -----------------------------------------------------------------------------
    def start(self) -> ReconcileReport:
        """Reconcile with the broker before trading (call once after construction)."""
        return self.reconcile()

    def submit(self, command: SubmitOrder) -> Order:
        """Record the intent, send it, record the reply; idempotent on ``client_order_id``.

        A known id returns the stored order and sends nothing (an order still waiting for its
        acknowledgement is first resolved with the broker). When the broker cannot be reached,
        the order stays ``new`` and is resolved by the next :meth:`reconcile`.
        """
        if self._halted:
            raise TradingHaltedError(
                f"submit {command.client_order_id}: trading is halted after an unexplained "
                f"difference with the broker ({self.last_report.summary() if self.last_report else ''}"
                "); expected a passing reconcile() first"
            )
        cid = command.client_order_id
        self._call_hook("before_intent", cid)
        existing = self.get_order(cid)
        if existing is not None:
            if existing.command != command:
                logger.warning(
                    "submit %s: the id is already used by a different command; returning the "
                    "stored order unchanged",
                    cid,
                )
            if existing.status is OrderStatus.NEW:
                return self._resolve_new(existing)
            return existing
        event = OrderSubmitted(client_order_id=cid, ts=self.clock.now(), command=command)
        order = Order.create(event)
        self.store.record(order, event)
        self._open[cid] = order
        self._call_hook("after_intent", cid)
        return self._send(order)

    def submit_many(self, commands: Sequence[SubmitOrder]) -> list[Order]:
        """:meth:`submit` for a whole bar, with two commits instead of two per order.

        1. every new command's intent (``OrderSubmitted``) is recorded in ONE transaction,
           committed before anything is sent (write-ahead holds for each order);
        2. the orders are sent in the given order, and their replies recorded in a second
           transaction. Known ids are handled as :meth:`submit` does (nothing sent again; one
           still ``new`` is resolved with the broker first). Hooks fire per order at the same
           steps as in :meth:`submit`. Returns the orders in the order of ``commands``.

        When a batch fails (its commit included), the open orders and the portfolio are reloaded
        from the store, so memory never holds what the store rolled back; the error propagates.
        """
        if self._halted:
            raise TradingHaltedError(
                f"submit_many ({len(commands)} commands): trading is halted after an unexplained "
                f"difference with the broker ({self.last_report.summary() if self.last_report else ''}"
                "); expected a passing reconcile() first"
            )
        slots: list[Order | ClientOrderId] = []
        fresh: list[Order] = []
        seen: set[ClientOrderId] = set()
        with self._batch():
            for command in commands:
                cid = command.client_order_id
                self._call_hook("before_intent", cid)
                if cid in seen:
                    slots.append(cid)
                    continue
                seen.add(cid)
                existing = self.get_order(cid)
                if existing is not None:
                    if existing.command != command:
                        logger.warning(
                            "submit %s: the id is already used by a different command; "
                            "returning the stored order unchanged",
                            cid,
                        )
                    slots.append(existing)
                    continue
                event = OrderSubmitted(client_order_id=cid, ts=self.clock.now(), command=command)
                order = Order.create(event)
                self.store.record(order, event)
                fresh.append(order)
                slots.append(cid)
        for order in fresh:  # memory only after the intents are committed
            self._open[order.client_order_id] = order
            self._call_hook("after_intent", order.client_order_id)
        done: dict[ClientOrderId, Order] = {}
        with self._batch():
            for slot in slots:
                if isinstance(slot, Order):
                    if slot.status is OrderStatus.NEW and slot.client_order_id not in done:
                        done[slot.client_order_id] = self._resolve_new(slot)
                    continue
                if slot in done:
                    continue
                done[slot] = self._send(self._open[slot])
        result: list[Order] = []
        for slot in slots:
            cid = slot.client_order_id if isinstance(slot, Order) else slot
            if cid in done:
                result.append(done[cid])
            else:
                result.append(slot if isinstance(slot, Order) else self._latest(cid))
        return result

    def cancel(self, client_order_id: ClientOrderId) -> Order:
        """Record a cancel request and send it; the outcome arrives as a broker event."""
        order = self.get_order(client_order_id)
        if order is None:
            raise ExecutionError(
                f"cancel: client_order_id = {client_order_id!r} is not in the OMS store; "
                "expected an order submitted through this manager"
            )
        if order.is_terminal or order.status is OrderStatus.PENDING_CANCEL:
            return order
        order = self._apply(order, OrderCancelRequested(client_order_id=client_order_id,
                                                        ts=self.clock.now()))  # fmt: skip
        self.broker.cancel(client_order_id)
        return order

    def process_events(self) -> list[OrderEvent]:
        """Apply the broker's new events once each; returns those applied.

        Duplicates (a fill id already stored, an acknowledgement of an acknowledged order, any
        event for a finished order) are skipped; events for unknown orders are logged.
        """
        applied: list[OrderEvent] = []
        events = list(self.broker.drain_events())
        if not events:
            return applied
        with self._batch():
            self._apply_events(events, applied)
        return applied

    def _apply_events(self, events: list[OrderEvent], applied: list[OrderEvent]) -> None:
        for event in events:
            order = self.get_order(event.client_order_id)
            if order is None:
                logger.warning("broker event %s for unknown order %s", event.kind,
                               event.client_order_id)  # fmt: skip
                continue
            if isinstance(event, OrderFilled) and order.has_fill(event.fill_id):
                continue
            if not order.can_apply(event):
                logger.debug("skipping stale %s for %s (%s)", event.kind, order.client_order_id,
                             order.status.value)  # fmt: skip
                continue
            self._apply(order, event)
            applied.append(event)

    def reconcile(self) -> ReconcileReport:
        """Bring every open order up to date from the broker and compare positions.

        Sets :attr:`halted` when the report is not ok (see :class:`ReconcileReport`).
        """
        report = ReconcileReport()
        self.process_events()
        for order in list(self._open.values()):
            cid = order.client_order_id
            try:
                remote = self.broker.get_order_by_client_id(cid)
            except BrokerUnavailableError as exc:
                logger.warning("reconcile %s: broker unavailable (%s)", cid, exc)
                report.unresolved.append(cid)
                continue
            if remote is None:
                if order.status is OrderStatus.NEW:
                    report.resubmitted.append(cid)
                    if self._send(order).status is OrderStatus.NEW:
                        report.unresolved.append(cid)
                else:
                    report.missing_at_broker.append(cid)
                continue
            before = order.event_count
            synced = self._sync(order, remote, report)
            if synced.event_count != before:
                report.updated.append(cid)
        try:
            for remote in self.broker.list_open_orders():
                if self.get_order(remote.client_order_id) is None:
                    report.unknown_at_broker.append(remote.client_order_id)
            broker_positions = self.broker.positions()
        except BrokerUnavailableError as exc:
            logger.warning("reconcile: broker unavailable for orders/positions (%s)", exc)
            report.unresolved.append(ClientOrderId("*"))
        else:
            local = self._portfolio.quantities()
            for symbol in sorted(set(local) | set(broker_positions)):
                mine = local.get(symbol, Decimal(0))
                theirs = (
                    broker_positions[symbol].quantity if symbol in broker_positions else Decimal(0)
                )
                if mine != theirs:
                    report.position_mismatches.append((symbol, mine, theirs))
        self._halted = not report.ok
        self.last_report = report
        if report.ok:
            logger.info("reconcile ok: %d resubmitted, %d updated, %d fills adopted",
                        len(report.resubmitted), len(report.updated), len(report.adopted_fills))  # fmt: skip
        else:
            logger.error("reconcile found differences, trading halted: %s", report.summary())
        return report

    # -- internals ------------------------------------------------------------------------------
    @contextmanager
    def _batch(self) -> Iterator[None]:
        """One store transaction; on any failure memory is reloaded from the store."""
        self._deferred = []
        try:
            with self.store.batch():
                yield
        except BaseException:
            self._reload()
            raise
        finally:
            deferred, self._deferred = self._deferred, None
        for point, cid in deferred:  # these steps are durable only now
            self._call_hook(point, cid)

    def _reload(self) -> None:
        """Memory from the store (after a rolled-back batch)."""
        self._open = {o.client_order_id: o for o in self.store.load_orders(open_only=True)}
        portfolio = self.store.load_portfolio()
        if portfolio is not None:
            self._portfolio = portfolio

    def _latest(self, cid: ClientOrderId) -> Order:
        order = self.get_order(cid)
        if order is None:  # not reachable: the intent was committed above
            raise ExecutionError(f"submit_many: client_order_id = {cid!r} vanished from the store")
        return order

    def _call_hook(self, point: HookPoint, cid: ClientOrderId) -> None:
        if self._deferred is not None and point in _AFTER_WRITE:
            self._deferred.append((point, cid))
            return
        if self._hook is not None:
            self._hook(point, cid)

    def _apply(self, order: Order, event: OrderEvent) -> Order:
        """Apply, persist (one transaction), then update memory: a failed write changes nothing."""
        new = order.apply(event)
        if isinstance(event, OrderFilled):
            self._call_hook("fill_received", order.client_order_id)
            portfolio = self._portfolio.apply_fill(event)
            self.store.record(new, event, portfolio)
            self._portfolio = portfolio
        else:
            self.store.record(new, event)
        if new.is_open:
            self._open[new.client_order_id] = new
        else:
            self._open.pop(new.client_order_id, None)
        if isinstance(event, OrderFilled):
            self._call_hook("after_fill", order.client_order_id)
        return new

    def _send(self, order: Order) -> Order:
        cid = order.client_order_id
        try:
            remote = self.broker.submit(order.command)
        except BrokerUnavailableError as exc:
            logger.warning("submit %s: outcome unknown (%s); left new until reconciled", cid, exc)
            return order
        self._call_hook("after_submit", cid)
        order = self._sync(order, remote, ReconcileReport())
        self._call_hook("after_ack", cid)
        return order

    def _resolve_new(self, order: Order) -> Order:
        """An order recorded but never acknowledged: adopt the broker's, or send it now."""
        try:
            remote = self.broker.get_order_by_client_id(order.client_order_id)
        except BrokerUnavailableError:
            return order
        if remote is None:
            return self._send(order)
        return self._sync(order, remote, ReconcileReport())

    def _sync(self, order: Order, remote: BrokerOrder, report: ReconcileReport) -> Order:
        """Apply to ``order`` whatever the broker's report of it shows and the store lacks."""
        cid = order.client_order_id
        ts = remote.updated_at
        if (
            remote.symbol != order.symbol
            or remote.side != order.side
            or (remote.quantity != order.quantity)
        ):
            report.order_mismatches.append(
                f"{cid}: broker has {remote.side.value} {remote.quantity} {remote.symbol}, the "
                f"store {order.side.value} {order.quantity} {order.symbol}"
            )
            return order
        if remote.status is OrderStatus.REJECTED and remote.filled_quantity == 0:
            if order.is_open and order.filled_quantity == 0:
                return self._apply(order, OrderRejected(client_order_id=cid, ts=ts,
                                                        reason=remote.reason))  # fmt: skip
            return order
        if order.venue_order_id is None and order.status is OrderStatus.NEW:
            order = self._apply(order, OrderAccepted(client_order_id=cid, ts=ts,
                                                     venue_order_id=remote.venue_order_id))  # fmt: skip
        order = self._sync_fills(order, remote, report)
        if order.is_open and remote.status in _TERMINAL_EVENT:
            order = self._apply(order, _TERMINAL_EVENT[remote.status](client_order_id=cid, ts=ts))
        if remote.status is OrderStatus.FILLED and order.status is not OrderStatus.FILLED:
            report.order_mismatches.append(
                f"{cid}: broker says filled ({remote.filled_quantity}), the store has "
                f"{order.filled_quantity} filled ({order.status.value})"
            )
        return order

    def _sync_fills(self, order: Order, remote: BrokerOrder, report: ReconcileReport) -> Order:
        cid = order.client_order_id
        if remote.fills is not None:
            for fill in remote.fills:
                if order.has_fill(fill.fill_id) or not order.is_open:
                    continue
                if not order.can_apply(fill):
                    report.order_mismatches.append(
                        f"{cid}: broker fill {fill.fill_id} ({fill.side.value} {fill.quantity} "
                        f"{fill.symbol}) cannot apply to the stored order ({order.status.value}, "
                        f"{order.filled_quantity} of {order.quantity} filled)"
                    )
                    return order
                order = self._apply(order, fill)
                report.adopted_fills.append(fill.fill_id)
        missing = remote.filled_quantity - order.filled_quantity
        if missing < 0:
            report.order_mismatches.append(
                f"{cid}: the store has {order.filled_quantity} filled, the broker only "
                f"{remote.filled_quantity}"
            )
        elif missing > 0 and order.is_open:
            # The broker reports only totals: infer the one fill that explains them.
            notional = remote.filled_quantity * (remote.avg_fill_price or Decimal(0))
            price = (notional - order.filled_notional) / missing
            if price <= 0:
                report.order_mismatches.append(
                    f"{cid}: broker totals {remote.filled_quantity} @ {remote.avg_fill_price} "
                    f"imply a fill price {price} for the missing {missing}"
                )
                return order
            fill = OrderFilled(
                client_order_id=cid, ts=remote.updated_at,
                fill_id=FillId(f"recon-{remote.venue_order_id}-{remote.filled_quantity}"),
                symbol=order.symbol, side=order.side, quantity=missing, price=price,
            )  # fmt: skip
            order = self._apply(order, fill)
            report.adopted_fills.append(fill.fill_id)
        return order


__all__ = ["HOOK_POINTS", "Hook", "HookPoint", "OrderManager", "ReconcileReport"]
