"""Implementation shortfall: what executing an order cost against the price when it was decided.

For each parent order (a sliced order and its children, or a single unsliced order):

* **arrival price**: the decision bar's close, the last price the policy saw;
* **execution price**: the quantity-weighted average price of all the parent's fills;
* **shortfall** (currency) ``= sign * (execution - arrival) * filled quantity`` and in basis
  points ``= sign * (execution - arrival) / arrival * 10,000``, with ``sign`` +1 for a buy and
  -1 for a sell: **positive is a cost** (bought above / sold below the arrival price);
* **fees**: the fills' fees (on the simulator and the local venue these hold the modelled
  commission, spread, slippage and impact; the fill price is the bar's reference price);
  ``cost = shortfall + fees`` and ``cost_bps`` relative to the arrival notional of what filled.

Only what filled is measured: ``fill_ratio`` says how much of the parent that was (the
opportunity cost of the unfilled rest is not priced). Example: buy 100 at arrival 10.00, fills
60 @ 10.02 and 40 @ 10.05: execution 10.032, shortfall 32 bps = $3.20.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from tradeforge.domain import Order, OrderFilled, OrderSide
from tradeforge.execution.errors import ExecutionError

_BPS = Decimal(10_000)

COLUMNS: tuple[str, ...] = (
    "parent_id", "symbol", "side", "algo", "arrival_time", "arrival_price", "quantity",
    "n_children", "n_orders", "filled_quantity", "fill_ratio", "avg_fill_price",
    "shortfall_bps", "shortfall", "fees", "cost", "cost_bps",
)  # fmt: skip


@dataclass(frozen=True)
class Arrival:
    """A parent order as decided: its children's client order ids (one for an unsliced
    order), the quantity intended and the arrival price and time."""

    parent_id: str
    symbol: str
    side: OrderSide
    quantity: Decimal
    arrival_price: Decimal
    arrival_time: datetime
    client_order_ids: tuple[str, ...]
    algo: str = "none"


def _row(arrival: Arrival, fills: list[OrderFilled], n_orders: int) -> dict[str, Any]:
    if arrival.arrival_price <= 0:
        raise ExecutionError(
            f"shortfall: parent {arrival.parent_id} arrival_price = {arrival.arrival_price}; "
            "expected > 0"
        )
    sign = Decimal(arrival.side.sign)
    filled = sum((f.quantity for f in fills), Decimal(0))
    fees = sum((f.fee for f in fills), Decimal(0))
    nan = math.nan
    avg = sum((f.notional for f in fills), Decimal(0)) / filled if filled else None
    short = sign * (avg - arrival.arrival_price) * filled if avg is not None else Decimal(0)
    base = arrival.arrival_price * filled
    return {
        "parent_id": arrival.parent_id, "symbol": arrival.symbol, "side": arrival.side.value,
        "algo": arrival.algo, "arrival_time": pd.Timestamp(arrival.arrival_time),
        "arrival_price": float(arrival.arrival_price), "quantity": float(arrival.quantity),
        "n_children": len(arrival.client_order_ids), "n_orders": n_orders,
        "filled_quantity": float(filled),
        "fill_ratio": float(filled / arrival.quantity) if arrival.quantity else nan,
        "avg_fill_price": float(avg) if avg is not None else nan,
        "shortfall_bps": float(short / base * _BPS) if filled else nan,
        "shortfall": float(short), "fees": float(fees), "cost": float(short + fees),
        "cost_bps": float((short + fees) / base * _BPS) if filled else nan,
    }  # fmt: skip


def shortfall_table(
    orders: Iterable[Order], fills: Iterable[OrderFilled], arrivals: Iterable[Arrival]
) -> pd.DataFrame:
    """One row per parent in ``arrivals`` (columns :data:`COLUMNS`): fills are matched to
    parents by client order id; ``n_orders`` counts the children found in ``orders``."""
    known = {o.client_order_id for o in orders}
    by_cid: dict[str, list[OrderFilled]] = {}
    seen: set[tuple[str, str]] = set()
    for fill in fills:
        key = (fill.client_order_id, fill.fill_id)
        if key not in seen:
            seen.add(key)
            by_cid.setdefault(fill.client_order_id, []).append(fill)
    rows = []
    owner: dict[str, str] = {}
    for arrival in arrivals:
        for cid in arrival.client_order_ids:
            if owner.setdefault(cid, arrival.parent_id) != arrival.parent_id:
                raise ExecutionError(
                    f"shortfall: client order id {cid} belongs to parents {owner[cid]} and "
                    f"{arrival.parent_id}; expected each order in one parent"
                )
        parent_fills = [f for cid in arrival.client_order_ids for f in by_cid.get(cid, [])]
        for fill in parent_fills:
            if fill.symbol != arrival.symbol or fill.side is not arrival.side:
                raise ExecutionError(
                    f"shortfall: fill {fill.fill_id} is {fill.side.value} {fill.symbol}; parent "
                    f"{arrival.parent_id} is {arrival.side.value} {arrival.symbol}"
                )
        n_orders = sum(cid in known for cid in arrival.client_order_ids)
        rows.append(_row(arrival, parent_fills, n_orders))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _totals(frame: pd.DataFrame) -> dict[str, Any]:
    filled = frame[frame["filled_quantity"] > 0]
    notional = float((filled["arrival_price"] * filled["filled_quantity"]).sum())
    shortfall, fees = float(frame["shortfall"].sum()), float(frame["fees"].sum())
    return {
        "n_parents": len(frame), "n_filled": len(filled),
        "filled_notional": notional, "shortfall": shortfall, "fees": fees,
        "cost": shortfall + fees,
        "mean_bps": _finite(float(filled["shortfall_bps"].mean())) if len(filled) else None,
        "weighted_bps": shortfall / notional * 1e4 if notional else None,
        "cost_bps": (shortfall + fees) / notional * 1e4 if notional else None,
    }  # fmt: skip


def shortfall_summary(table: pd.DataFrame) -> dict[str, Any]:
    """JSON-ready totals of a :func:`shortfall_table`: ``shortfall``, ``fees`` and ``cost`` in
    currency, ``mean_bps`` (the plain mean over filled parents), ``weighted_bps`` and
    ``cost_bps`` (per filled arrival notional), and the same per symbol under ``by_symbol``."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ExecutionError(
            f"shortfall_summary: table lacks columns {missing}; expected a shortfall_table()"
        )
    out = _totals(table)
    out["by_symbol"] = {str(sym): _totals(group)
                        for sym, group in table.groupby("symbol", sort=True)}  # fmt: skip
    return out


__all__ = ["COLUMNS", "Arrival", "shortfall_summary", "shortfall_table"]
