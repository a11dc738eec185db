"""The trading node's risk hook and crash hook.

:class:`RiskHook` is the shape of :class:`tradeforge.risk.RiskEngine` that the node calls:
``validate`` before each new order, ``update`` at each bar close (stop exits come back),
``on_fill`` for each fill and ``poll`` once per bar (a kill from ``tradeforge kill`` or the flag
file is acted on there). :class:`PassThroughRisk` approves everything. :class:`OmsKillTarget`
is what the kill switch calls: it cancels every open order through the order manager and places
the closing orders it is given.

:func:`crash_hook` is for crash tests only: with ``TRADEFORGE_NODE_CRASH_AT=<point>:<n>`` in the
environment the node kills its own process with SIGKILL the ``n``-th time the order manager
reaches ``point`` (``before_intent``, ``after_intent``, ``after_submit``, ``after_ack``,
``fill_received``, ``after_fill``), leaving its state exactly as a power cut would.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from tradeforge.core.errors import ConfigError
from tradeforge.domain import ClientOrderId, OrderFilled, Position, StrategyId, SubmitOrder
from tradeforge.execution.ids import client_order_id
from tradeforge.execution.oms import HOOK_POINTS, Hook, HookPoint, OrderManager
from tradeforge.risk import Denied, ExitIntent, PortfolioView
from tradeforge.risk.gate import exit_orders

logger = logging.getLogger(__name__)

CRASH_ENV = "TRADEFORGE_NODE_CRASH_AT"


class RiskHook(Protocol):
    """What the node calls on its risk engine (``tradeforge.risk.RiskEngine`` fits)."""

    def validate(self, order: SubmitOrder, view: PortfolioView) -> Denied | None: ...

    def update(self, view: PortfolioView) -> Any: ...

    def on_fill(self, fill: OrderFilled, position_before: Position) -> Any: ...

    def poll(self, view: PortfolioView | None = None) -> Any: ...


class PassThroughRisk:
    """A risk hook that approves every order and never exits or halts."""

    def validate(self, order: SubmitOrder, view: PortfolioView) -> Denied | None:
        return None

    def update(self, view: PortfolioView) -> None:
        return None

    def on_fill(self, fill: OrderFilled, position_before: Position) -> None:
        return None

    def poll(self, view: PortfolioView | None = None) -> None:
        return None


def exit_commands(
    exits: Sequence[ExitIntent], strategy_id: StrategyId, bar_time: datetime, tag: str
) -> list[SubmitOrder]:
    """Market orders for ``exits`` (``tradeforge.risk.gate.exit_orders``, as the backtester
    makes them), with deterministic ids (leg ``<tag>:<symbol>``)."""
    return exit_orders(
        exits, strategy_id, lambda e: client_order_id(strategy_id, bar_time, f"{tag}:{e.symbol}")
    )


class OmsKillTarget:
    """The kill switch's target: cancels through ``oms``; closing orders get ids for the bar
    ``bar_time()`` returns."""

    def __init__(
        self, oms: OrderManager, strategy_id: StrategyId, bar_time: Callable[[], datetime]
    ) -> None:
        self.oms = oms
        self.strategy_id = strategy_id
        self.bar_time = bar_time

    def cancel_all_orders(self, reason: str) -> int:
        orders = self.oms.open_orders()
        for order in orders:
            logger.warning("kill switch (%s): cancel %s", reason, order.client_order_id)
            self.oms.cancel(order.client_order_id)
        return len(orders)

    def flatten(self, exits: Sequence[ExitIntent], reason: str) -> None:
        for command in exit_commands(exits, self.strategy_id, self.bar_time(), "kill"):
            logger.warning("kill switch (%s): close %s %s", reason, command.side.value,
                           command.symbol)  # fmt: skip
            self.oms.submit(command)


def crash_hook(environ: Mapping[str, str] | None = None) -> Hook | None:
    """The SIGKILL hook described in the module docstring, or None when the variable is unset."""
    spec = (os.environ if environ is None else environ).get(CRASH_ENV, "").strip()
    if not spec:
        return None
    point, _, count = spec.partition(":")
    if point not in HOOK_POINTS or not count.isdigit() or int(count) < 1:
        raise ConfigError(
            f"{CRASH_ENV} = {spec!r}; expected '<point>:<n>' with point one of "
            f"{', '.join(HOOK_POINTS)} and n >= 1"
        )
    target: HookPoint = point
    remaining = [int(count)]

    def hook(reached: HookPoint, cid: ClientOrderId) -> None:
        if reached != target:
            return
        remaining[0] -= 1
        if remaining[0] == 0:
            logger.critical("%s: SIGKILL at %s of %s", CRASH_ENV, reached, cid)
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


__all__ = ["CRASH_ENV", "OmsKillTarget", "PassThroughRisk", "RiskHook", "crash_hook",
           "exit_commands"]  # fmt: skip
