"""Execution algorithms: a large parent order sliced into child orders over the next bars.

A :class:`ParentOrder` (symbol, side, quantity, arrival price, arrival bar) becomes a tuple of
child quantities, child ``k`` sent at the ``k``-th trading bar from the arrival bar (child 0 at
the arrival bar itself). The children always sum exactly to the parent and each is a whole
number of trading units (lots, or the quantity increment of a fractionable instrument): the
ideal shares are rounded down to units and the units left over go, one each, to the children
with the largest rounding remainders (ties: the earlier child), so a child never differs from
its ideal share by a unit or more.

* :class:`TwapSchedule`: equal slices over ``n_bars``.
* :class:`VwapSchedule`: slices proportional to the volume forecast of the bar each child
  trades in (a child sent at the close of bar ``t + k`` trades in bar ``t + k + 1``):

  - **intraday bars** (more than one bar per UTC date in the lookback): the trailing mean
    volume of each time-of-day slot over the last ``lookback`` dates, the bars after the
    arrival bar taking the following slots cyclically (after the day's last slot comes the
    next day's first);
  - **daily (or longer) bars**: every future bar's forecast is the same trailing average
    daily volume, so the schedule IS the TWAP split. That is what daily data allows; it
    differs from TWAP only through the participation cap, which uses that ADV.

  The forecast uses only bars strictly before the arrival bar (no lookahead; tested by
  perturbing later volumes). Without usable volume (none, zeros, NaN) it falls back to TWAP.
* ``participation_cap``: when set, the schedule is lengthened (one bar at a time, up to
  ``max_bars``) until no child exceeds ``participation_cap`` times its bar's forecast volume;
  at ``max_bars`` the children still sum to the parent and the cap is exceeded (logged).

Children's client order ids (:func:`child_order_id`) derive from (strategy, the parent's
arrival bar, the symbol, the child index): a restarted node derives the same ids.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_FLOOR, Decimal
from typing import Literal, Protocol

import numpy as np
from pydantic import Field, model_validator

from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import ConfigError
from tradeforge.core.types import FloatArray
from tradeforge.domain import ClientOrderId, Instrument, OrderSide, StrategyId, Symbol
from tradeforge.execution.errors import SizingError
from tradeforge.execution.ids import client_order_id

logger = logging.getLogger(__name__)

AlgoKind = Literal["none", "twap", "vwap"]


class ExecAlgoConfig(FrozenConfig):
    """How the trading node slices large orders (see the module docstring).

    * ``kind``: ``none`` (every order whole, the default), ``twap`` or ``vwap``;
    * ``n_bars``: the bars a parent is spread over (child 0 at the decision bar);
    * ``min_parent_notional``: only orders worth at least this (quantity x the decision bar's
      close) are sliced; smaller ones go whole;
    * ``participation_cap``: at most this fraction of a bar's forecast volume per child
      (None: no cap); the schedule is lengthened up to ``max_bars`` to respect it;
    * ``lookback``: dates of history in the volume forecast (intraday profile or daily ADV);
    * ``replace_tolerance``: a later decision whose weight for a symbol being worked lies
      within this (absolute) distance of the weight its parent was sized for lets the
      schedule go on; a larger change cancels the remaining children and replaces them with a
      new order (0: any change replaces; see ``node_sizing``).
    """

    kind: AlgoKind = "none"
    n_bars: int = Field(default=3, ge=1, le=1000)
    min_parent_notional: float = Field(default=0.0, ge=0.0)
    participation_cap: float | None = Field(default=None, gt=0.0, le=1.0)
    max_bars: int = Field(default=20, ge=1, le=1000)
    lookback: int = Field(default=20, ge=1, le=1000)
    replace_tolerance: float = Field(default=0.0, ge=0.0)

    @model_validator(mode="after")
    def _check_bars(self) -> ExecAlgoConfig:
        if self.max_bars < self.n_bars:
            raise ConfigError(
                f"ExecAlgoConfig.max_bars = {self.max_bars}; expected >= n_bars = {self.n_bars}"
            )
        return self


@dataclass(frozen=True)
class ParentOrder:
    """An order to be worked over several bars: ``quantity`` (> 0) on ``side``, decided at the
    close of ``arrival_time`` when the last price was ``arrival_price``."""

    symbol: Symbol
    side: OrderSide
    quantity: Decimal
    arrival_price: Decimal
    arrival_time: datetime

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.arrival_price


class VolumeSource(Protocol):
    """Bar times and one symbol's volumes, oldest first (``VolumeHistory`` fits)."""

    def series(self, symbol: Symbol) -> tuple[Sequence[datetime], FloatArray]: ...


def quantity_step(instrument: Instrument) -> Decimal:
    """The trading unit: the lot, or the quantity increment of a fractionable instrument."""
    return instrument.quantity_increment if instrument.fractionable else instrument.lot_size


def split_quantity(
    quantity: Decimal, weights: Sequence[float] | FloatArray, step: Decimal
) -> tuple[Decimal, ...]:
    """``quantity`` split in proportion to ``weights`` into whole multiples of ``step`` that sum
    exactly to ``quantity`` (largest remainders; ties go to the earlier slice)."""
    if quantity <= 0 or step <= 0:
        raise SizingError(f"split_quantity quantity = {quantity}, step = {step}; expected both > 0")
    units_dec = quantity / step
    units = int(units_dec.to_integral_value(rounding=ROUND_FLOOR))
    if Decimal(units) != units_dec:
        raise SizingError(
            f"split_quantity quantity = {quantity} is not a whole number of steps of {step}; "
            "expected a quantity already rounded to the instrument's lots"
        )
    w = np.asarray(weights, dtype=float)
    if w.size == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise SizingError(
            f"split_quantity weights = {list(weights)}; expected finite non-negative numbers "
            "with a positive sum"
        )
    ideal = w / w.sum() * units
    base = np.floor(ideal).astype(np.int64)
    left = units - int(base.sum())
    order = sorted(range(w.size), key=lambda i: (-(ideal[i] - base[i]), i))
    for i in order[:left]:
        base[i] += 1
    return tuple(Decimal(int(b)) * step for b in base)


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise SizingError(f"bar time = {ts!r} is naive; expected a timezone-aware time")
    return ts.astimezone(UTC)


def _trailing(
    times: Sequence[datetime], volumes: FloatArray, arrival: datetime, lookback: int
) -> tuple[list[datetime], FloatArray]:
    """The bars strictly before ``arrival`` within its last ``lookback`` UTC dates."""
    cut = _utc(arrival)
    keep = [i for i, t in enumerate(times) if _utc(t) < cut]
    dates = sorted({_utc(times[i]).date() for i in keep})[-lookback:]
    first: date | None = dates[0] if dates else None
    rows = [i for i in keep if first is not None and _utc(times[i]).date() >= first]
    return [_utc(times[i]) for i in rows], np.asarray(volumes, dtype=float)[rows]


def volume_forecast(
    times: Sequence[datetime], volumes: FloatArray, arrival: datetime, n: int, lookback: int
) -> FloatArray:
    """The forecast volume of each of the ``n`` bars after ``arrival`` (module docstring),
    from the bars strictly before ``arrival``; NaN where there is nothing to go on."""
    if len(times) != len(volumes):
        raise SizingError(
            f"volume_forecast got {len(times)} times and {len(volumes)} volumes; expected equal"
        )
    past, vol = _trailing(times, volumes, arrival, lookback)
    usable = np.isfinite(vol) & (vol >= 0)
    if not usable.any():
        return np.full(n, np.nan)
    per_date = np.unique([t.date() for t in past], return_counts=True)[1]
    if per_date.max() <= 1:  # daily or longer bars: the trailing ADV for every future bar
        return np.full(n, float(vol[usable].mean()))
    slots: dict[time, list[float]] = {}
    for t, v, ok in zip(past, vol, usable, strict=True):
        slots.setdefault(t.timetz().replace(tzinfo=None), []).append(float(v) if ok else math.nan)
    keys = sorted(slots)
    means = np.array([np.nanmean(slots[k]) if np.isfinite(slots[k]).any() else np.nan
                      for k in keys])  # fmt: skip
    here = _utc(arrival).timetz().replace(tzinfo=None)
    position = bisect.bisect_right(keys, here) - 1
    return np.array([means[(position + 1 + k) % len(keys)] for k in range(n)])


class TwapSchedule:
    """Equal slices over ``n_bars`` (lengthened for ``participation_cap``, see the module
    docstring; the cap needs a volume source)."""

    kind: AlgoKind = "twap"

    def __init__(
        self,
        n_bars: int,
        *,
        participation_cap: float | None = None,
        max_bars: int | None = None,
        lookback: int = 20,
    ) -> None:
        if n_bars < 1:
            raise SizingError(f"{type(self).__name__} n_bars = {n_bars}; expected >= 1")
        self.n_bars = n_bars
        self.participation_cap = participation_cap
        self.max_bars = max(max_bars or n_bars, n_bars)
        self.lookback = lookback

    def weights(self, forecast: FloatArray) -> FloatArray:
        """Each child's share of the parent, given the forecast volume of its bar."""
        return np.ones(forecast.size)

    def children(
        self, parent: ParentOrder, instrument: Instrument, volumes: VolumeSource | None = None
    ) -> tuple[Decimal, ...]:
        """The child quantities, in order (some may be 0 when the parent has fewer units than
        bars); they sum exactly to ``parent.quantity``."""
        step = quantity_step(instrument)
        times: Sequence[datetime] = ()
        vol: FloatArray = np.empty(0)
        if volumes is not None:
            times, vol = volumes.series(parent.symbol)
        n = self.n_bars
        while True:
            forecast = volume_forecast(times, vol, parent.arrival_time, n, self.lookback)
            weights = self.weights(forecast)
            out = split_quantity(parent.quantity, weights, step)
            if self.participation_cap is None or not np.isfinite(forecast).all():
                return out
            limit = forecast * self.participation_cap
            if all(float(q) <= lim for q, lim in zip(out, limit, strict=True)):
                return out
            if n >= self.max_bars:
                logger.warning("%s %s %s: participation cap %.3g exceeded even over %d bars",
                               type(self).__name__, parent.side.value, parent.symbol,
                               self.participation_cap, n)  # fmt: skip
                return out
            n += 1


class VwapSchedule(TwapSchedule):
    """Slices in proportion to the forecast volume of each child's bar (module docstring);
    equal slices where the forecast is missing."""

    kind: AlgoKind = "vwap"

    def weights(self, forecast: FloatArray) -> FloatArray:
        if forecast.size == 0 or not np.isfinite(forecast).all() or forecast.sum() <= 0:
            return np.ones(forecast.size)
        return forecast


def make_schedule(config: ExecAlgoConfig) -> TwapSchedule | None:
    """The schedule ``config`` asks for (None for ``kind = "none"``)."""
    if config.kind == "none":
        return None
    cls = TwapSchedule if config.kind == "twap" else VwapSchedule
    return cls(config.n_bars, participation_cap=config.participation_cap,
               max_bars=config.max_bars, lookback=config.lookback)  # fmt: skip


def child_order_id(
    strategy: StrategyId | str, arrival_time: datetime, symbol: str, index: int
) -> ClientOrderId:
    """The client order id of child ``index`` of the parent decided for ``symbol`` at
    ``arrival_time`` (leg ``slice<index>:<symbol>``; 40 characters)."""
    if index < 0:
        raise SizingError(f"child_order_id index = {index}; expected >= 0")
    return client_order_id(strategy, arrival_time, f"slice{index}:{symbol}")


class VolumeHistory:
    """The node's trailing bar volumes: bars of the last ``lookback + 1`` UTC dates."""

    def __init__(self, symbols: Sequence[str], lookback: int) -> None:
        self.symbols = tuple(Symbol(s) for s in symbols)
        self._col = {s: j for j, s in enumerate(self.symbols)}
        self.lookback = lookback
        self._bars: deque[tuple[datetime, FloatArray]] = deque()
        self._days: deque[date] = deque()  # the dates held, oldest first
        self._counts: deque[int] = deque()  # bars held of each of those dates

    def push(self, ts: datetime, volume: FloatArray) -> None:
        """Add the bar at ``ts`` (volumes in the node's symbol order); a time not after the
        last is ignored."""
        ts = _utc(ts)
        if self._bars and ts <= self._bars[-1][0]:
            return
        self._bars.append((ts, np.asarray(volume, dtype=float).copy()))
        if self._days and self._days[-1] == ts.date():
            self._counts[-1] += 1
        else:
            self._days.append(ts.date())
            self._counts.append(1)
        while len(self._days) > self.lookback + 1:
            self._days.popleft()
            for _ in range(self._counts.popleft()):
                self._bars.popleft()

    def clear(self) -> None:
        self._bars.clear()
        self._days.clear()
        self._counts.clear()

    def series(self, symbol: Symbol) -> tuple[Sequence[datetime], FloatArray]:
        j = self._col[symbol]
        return [t for t, _ in self._bars], np.array([v[j] for _, v in self._bars], dtype=float)


__all__ = [
    "AlgoKind",
    "ExecAlgoConfig",
    "ParentOrder",
    "TwapSchedule",
    "VolumeHistory",
    "VolumeSource",
    "VwapSchedule",
    "child_order_id",
    "make_schedule",
    "quantity_step",
    "split_quantity",
    "volume_forecast",
]
