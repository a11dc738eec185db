"""Bars and the bar clock of the trading node, and the checks a bar must pass before trading.

The node asks a :class:`BarFeed` for the bars it needs (the history once at start-up, then the
bar of each new close) and a :class:`BarClock` for where the market is: the latest closed bar,
whether another will come, and to move on (a replay venue steps one stored bar; a live venue
is waited for). Implementations here run on a bar panel and the in-process
:class:`~tradeforge.execution.brokers.simulated.SimulatedBroker`; those that speak Alpaca's API
(the local venue, Alpaca itself) are in :mod:`tradeforge.execution.node_alpaca`.

:func:`bar_problems` is the data check (broker.md cases 19 to 22): a bar with a non-positive or
non-finite price or volume, a high below its low or a close outside ``[low, high]`` gets no
new orders; a bar that is not the one the clock says closed last is stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from tradeforge.core.types import FloatArray
from tradeforge.data.panel import OHLCV, BarPanel
from tradeforge.execution.brokers.simulated import SimulatedBroker
from tradeforge.execution.errors import ExecutionError

PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close")


class NodeDataError(ExecutionError):
    """The market data the node needs cannot be obtained or is unusable (names what and why)."""


def utc(value: Any) -> pd.Timestamp:
    """``value`` as a tz-aware UTC timestamp (a naive value is taken as UTC)."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


@dataclass(frozen=True)
class MarketBar:
    """One bar for every symbol of the node, in the node's symbol order (NaN where a symbol has
    no bar at this time). ``fields`` holds ``open, high, low, close, volume`` and any extra
    field the source has (``vwap``), each of shape (N,)."""

    timestamp: pd.Timestamp
    fields: dict[str, FloatArray]

    @property
    def close(self) -> FloatArray:
        return self.fields["close"]

    def update_input(self) -> dict[str, Any]:
        """The bar in the shape ``FeaturePipeline.update`` takes."""
        return {"timestamp": self.timestamp, **self.fields}

    @classmethod
    def from_panel(cls, panel: BarPanel, row: int) -> MarketBar:
        fields = {name: panel.field(name)[row].copy() for name in OHLCV}
        fields.update({name: arr[row].copy() for name, arr in panel.extra.items()})
        return cls(panel.index[row], fields)


class BarFeed(Protocol):
    """Where the node's bars come from. ``history(end)`` is every bar up to and including
    ``end`` as a panel of the node's symbols; ``bar(ts)`` is the bar at ``ts`` or None when
    the source has none (yet)."""

    @property
    def symbols(self) -> tuple[str, ...]: ...

    def history(self, end: datetime) -> BarPanel: ...

    def bar(self, timestamp: datetime) -> MarketBar | None: ...


class BarClock(Protocol):
    """Where the market is. ``current()`` is the latest closed bar; ``can_advance()`` says if
    another bar will come; ``advance()`` moves on to it (a replay venue steps one bar; a live
    venue is waited for). ``replay`` is True when the node itself drives the clock: every
    order of a bar is then done (filled, expired) once the clock has moved."""

    replay: bool

    def current(self) -> datetime: ...

    def can_advance(self) -> bool: ...

    def advance(self) -> None: ...


class PanelFeed:
    """Bars from a panel already in memory (the in-process simulated venue and tests). It
    serves only what the caller asks for: the node never asks for a bar past its clock."""

    def __init__(self, panel: BarPanel) -> None:
        self.panel = panel
        self._row = {ts: i for i, ts in enumerate(panel.index)}

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.panel.symbols

    def history(self, end: datetime) -> BarPanel:
        stop = int(self.panel.index.searchsorted(utc(end), side="right"))
        if stop == 0:
            raise NodeDataError(
                f"history(end = {utc(end).isoformat()}): the panel starts "
                f"{self.panel.index[0].isoformat()}; expected an end on or after its first bar"
            )
        return self.panel.iloc(slice(0, stop))

    def bar(self, timestamp: datetime) -> MarketBar | None:
        row = self._row.get(utc(timestamp))
        return None if row is None else MarketBar.from_panel(self.panel, row)


class SimBarClock:
    """The clock of an in-process :class:`SimulatedBroker`: ``advance`` fills on the next bar."""

    replay = True

    def __init__(self, broker: SimulatedBroker) -> None:
        self.broker = broker

    def current(self) -> datetime:
        return self.broker.now

    def can_advance(self) -> bool:
        return self.broker.can_advance

    def advance(self) -> None:
        self.broker.advance()


def bar_problems(bar: MarketBar, symbols: Sequence[str], held: Sequence[str] = ()) -> list[str]:
    """What is wrong with ``bar`` (empty when it may be traded on).

    A symbol without a bar (NaN close) is only a problem when it is held (its mark would be
    stale); a symbol with a bar needs finite, positive prices, ``low <= open, close <= high``
    and a finite, non-negative volume.
    """
    problems: list[str] = []
    f = bar.fields
    when = bar.timestamp.isoformat()
    for j, symbol in enumerate(symbols):
        close = float(f["close"][j])
        if np.isnan(close):
            if symbol in held:
                problems.append(f"{symbol} at {when}: no bar for a held symbol")
            continue
        prices = {name: float(f[name][j]) for name in PRICE_FIELDS}
        bad = [f"{k} = {v!r}" for k, v in prices.items() if not (np.isfinite(v) and v > 0)]
        if bad:
            problems.append(f"{symbol} at {when}: {', '.join(bad)}; expected finite prices > 0")
            continue
        lo, hi = prices["low"], prices["high"]
        if not lo <= min(prices["open"], close) <= max(prices["open"], close) <= hi:
            problems.append(
                f"{symbol} at {when}: low {lo}, open {prices['open']}, close {close}, high {hi}; "
                "expected low <= open, close <= high"
            )
        volume = float(f["volume"][j])
        if not (np.isfinite(volume) and volume >= 0):
            problems.append(f"{symbol} at {when}: volume = {volume!r}; expected a number >= 0")
    return problems


def is_stale(
    bar_time: datetime, expected: datetime, now: datetime | None, max_age_s: float | None
) -> str | None:
    """Why ``bar_time`` is too old to trade on, or None. The bar must be the one the clock
    says closed last (``expected``); with ``max_age_s`` it must also be at most that old at
    ``now`` (wall-clock venues)."""
    if utc(bar_time) < utc(expected):
        return (
            f"latest bar {utc(bar_time).isoformat()} is older than the last close "
            f"{utc(expected).isoformat()} the venue clock reports"
        )
    if max_age_s is not None and now is not None:
        age = (utc(now) - utc(bar_time)).total_seconds()
        if age > max_age_s:
            return f"latest bar {utc(bar_time).isoformat()} is {age:.0f} s old; max {max_age_s} s"
    return None


__all__ = [
    "PRICE_FIELDS",
    "BarClock",
    "BarFeed",
    "MarketBar",
    "NodeDataError",
    "PanelFeed",
    "SimBarClock",
    "bar_problems",
    "is_stale",
    "utc",
]
