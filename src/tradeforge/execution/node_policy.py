"""What the trading node hands the policy and how it reads the answer.

The node depends on the core :class:`~tradeforge.core.policy.Policy` protocol only. The
observation a policy was trained on has a layout owned by ``tradeforge.envs``, which execution
may not import, so the node is given an :class:`ObservationBuilder` (the experiment layer
builds it from the env config): the node supplies the last ``window`` rows of features and the
account state, exactly the quantities ``TradingEnv`` observes:

* ``weights``: each holding's value at the last close over equity (0 when equity is 0);
* ``cash_fraction``: cash over equity (over 1 when equity <= 0);
* ``upnl``: open P&L against the average entry price, over equity (idem).

They are computed from the order manager's portfolio in float64 in the order the simulator
computes them, so a paper replay observes what the backtest observed.

Optional policy hooks, called when present: ``reset()`` once before the first decision, and
``observe(info)`` before every decision after the first, with ``info`` = ``{"weights": the
previous target, "timestamp": now, "close": closes now, "previous_close": closes at the previous
decision}`` (an ensemble scores its members on it).

Optional explanations (``explain_decisions``): a :class:`DecisionExplainer` maps the
observation the policy saw to a JSON-ready explanation (e.g.
:class:`tradeforge.monitor.explain.DecisionExplainer`: the top Integrated Gradients
attributions); :func:`explain_observation` calls it without ever failing the bar, and the
node stores the result with the decision (``NodeJournal.record_decision(explanation=...)``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import numpy as np

from tradeforge.core.policy import Policy
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import BarPanel
from tradeforge.domain import Portfolio, Symbol
from tradeforge.execution.errors import ExecutionError
from tradeforge.execution.node_journal import BarDecision

logger = logging.getLogger(__name__)


class PolicyOutputError(ExecutionError):
    """The policy returned something that is not one target weight per symbol."""


@dataclass(frozen=True)
class AccountVector:
    """The account part of an observation (see the module docstring)."""

    weights: FloatArray
    cash_fraction: float
    upnl: float

    def as_tuple(self) -> tuple[float, ...]:
        return (*(float(w) for w in self.weights), self.cash_fraction, self.upnl)

    @classmethod
    def from_tuple(cls, values: Sequence[float]) -> AccountVector:
        arr = np.asarray(values, dtype=np.float64)
        return cls(arr[:-2].copy(), float(arr[-2]), float(arr[-1]))


class ObservationBuilder(Protocol):
    """Builds the policy's observation from features ``(window, N, F)`` (oldest row first;
    every pipeline feature, in the pipeline's order) and the account state."""

    @property
    def window(self) -> int: ...

    def __call__(self, features: FloatArray, account: AccountVector) -> Any: ...


def account_vector(
    portfolio: Portfolio, marks: Mapping[Symbol, Decimal], symbols: Sequence[Symbol]
) -> AccountVector:
    """The account state ``TradingEnv`` observes, from the OMS portfolio at ``marks``."""
    n = len(symbols)
    qty = np.zeros(n)
    mark = np.full(n, np.nan)
    basis = np.zeros(n)
    held = {p.symbol: p for p in portfolio.positions if p.quantity != 0}
    for j, symbol in enumerate(symbols):
        pos = held.get(symbol)
        if pos is not None:
            qty[j] = float(pos.quantity)
            basis[j] = float(pos.avg_price)
        if symbol in marks:
            mark[j] = float(marks[symbol])
    with np.errstate(invalid="ignore"):
        value = np.where(qty != 0.0, qty * mark, 0.0)
        cash = float(portfolio.cash)
        equity = cash + float(value.sum())
        weights = value / equity if equity != 0.0 else np.zeros(n)
        open_pnl = float(np.where(qty != 0.0, qty * (mark - basis), 0.0).sum())
    safe = equity if equity > 0.0 else 1.0
    return AccountVector(np.asarray(weights, dtype=np.float64), cash / safe, open_pnl / safe)


def target_weights(policy: Policy, observation: Any, n_assets: int) -> FloatArray:
    """``policy.act(observation)`` checked to be ``n_assets`` finite weights or NaN (hold)."""
    raw = np.asarray(policy.act(observation), dtype=np.float64).reshape(-1)
    if raw.shape != (n_assets,):
        raise PolicyOutputError(
            f"policy.act returned {raw.shape[0]} value(s); expected {n_assets} target weights "
            "(one per symbol)"
        )
    if np.isinf(raw).any():
        raise PolicyOutputError(
            f"policy.act returned {raw.tolist()}; expected finite weights or NaN (hold)"
        )
    return raw


class DecisionExplainer(Protocol):
    """Why the policy decided as it did on ``observation``: a JSON-ready mapping."""

    def __call__(self, observation: Any) -> Mapping[str, Any]: ...


def explain_observation(
    explainer: DecisionExplainer | None, observation: Any
) -> dict[str, Any] | None:
    """``explainer(observation)`` with its wall time (``ms``) added; None without an
    explainer. An explainer that raises never costs the bar its decision: the error is logged
    and returned as ``{"error": ..., "ms": ...}``."""
    if explainer is None:
        return None
    began = time.perf_counter()
    try:
        out = dict(explainer(observation))
    except Exception as exc:
        logger.warning("decision explanation failed: %s: %s", type(exc).__name__, exc)
        out = {"error": f"{type(exc).__name__}: {exc}"}
    out["ms"] = 1000.0 * (time.perf_counter() - began)
    return out


def same_weights(a: Sequence[float] | FloatArray, b: Sequence[float] | FloatArray) -> bool:
    """Equal element by element, NaN equal to NaN."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return x.shape == y.shape and bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))


def feed_back(
    policy: Policy,
    previous: Sequence[float] | FloatArray,
    timestamp: Any,
    close: FloatArray,
    previous_close: FloatArray,
) -> None:
    """Call ``policy.observe`` (when it has one) with the info described in the module doc."""
    observe = getattr(policy, "observe", None)
    if callable(observe):
        observe(
            {
                "weights": np.asarray(previous, dtype=np.float64),
                "timestamp": timestamp,
                "close": np.asarray(close, dtype=np.float64),
                "previous_close": np.asarray(previous_close, dtype=np.float64),
            }
        )


def replay_decisions(
    policy: Policy,
    observer: ObservationBuilder,
    decisions: Sequence[BarDecision],
    history: BarPanel,
    window_at: Callable[[int | None], FloatArray | None],
    n_assets: int,
) -> tuple[tuple[FloatArray, FloatArray] | None, int]:
    """Rebuild the policy's state after a restart: call it on each journaled decision's
    observation (the features of ``history`` up to that bar, ``window_at(row)``, and the
    journaled account state) with the same ``observe`` calls between, in order.

    Returns the last decision's (weights, closes) and how many replayed decisions differ from
    the journal (a policy that is not deterministic, or bars missing from the history).
    """
    rows = {ts.to_pydatetime(): i for i, ts in enumerate(history.index)}
    last: tuple[FloatArray, FloatArray] | None = None
    mismatches = 0
    for decision in decisions:
        row = rows.get(decision.bar_time)
        window = window_at(row)
        if row is None or window is None:
            logger.warning("cannot replay the decision of %s: its bars are not in the history",
                           decision.bar_time.isoformat())  # fmt: skip
            mismatches += 1
            continue
        close = history.close[row]
        if last is not None:
            feed_back(policy, last[0], decision.bar_time, close, last[1])
        account = AccountVector.from_tuple(decision.account)
        replayed = target_weights(policy, observer(window, account), n_assets)
        if not same_weights(replayed, decision.weights):
            mismatches += 1
            logger.warning("restored policy decides %s at %s; the journal has %s",
                           replayed.tolist(), decision.bar_time.isoformat(),
                           list(decision.weights))  # fmt: skip
        last = (np.asarray(decision.weights, dtype=np.float64), close.copy())
    return last, mismatches


__all__ = [
    "AccountVector",
    "DecisionExplainer",
    "ObservationBuilder",
    "PolicyOutputError",
    "account_vector",
    "explain_observation",
    "feed_back",
    "replay_decisions",
    "same_weights",
    "target_weights",
]
