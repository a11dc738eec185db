"""The shadow runner: the registry's ``shadow`` version decides on the policy's bars, sends no
order, and leaves the records the shadow gate reads.

At each bar the policy decided, the shadow policy gets the same features (and the account
vector of its own simulated portfolio) and its target weights are recorded beside the policy's.
Its simulated equity moves by the close-to-close return of the weights it held over the bar
(no costs: a turnover and drawdown signal, not a fill simulation). The records are the files
:func:`~tradeforge.governance.gates.shadow_gate_from_dir` reads, in ``DIR`` (``STATE/shadow``):
``champion_weights.csv`` and ``challenger_weights.csv`` (timestamp, one column per symbol),
``challenger_returns.csv`` (timestamp, ``returns``) and ``shadow.json`` (``errors``,
``sessions``, the model and version, agreement so far).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from tradeforge.domain import Portfolio, Position, Symbol

logger = logging.getLogger(__name__)
FILES = ("champion_weights.csv", "challenger_weights.csv", "challenger_returns.csv")


def virtual_portfolio(
    weights: np.ndarray, equity: float, marks: Mapping[Symbol, Decimal], symbols: Sequence[Symbol]
) -> Portfolio:
    """The portfolio holding ``weights`` of ``equity`` at ``marks`` (the shadow's account)."""
    positions, invested = [], Decimal(0)
    total = Decimal(repr(float(equity)))
    for symbol, w in zip(symbols, weights, strict=True):
        mark = marks.get(symbol)
        if mark is None or mark <= 0 or not math.isfinite(float(w)) or w == 0:
            continue
        value = Decimal(repr(float(w))) * total
        positions.append(Position(symbol=symbol, quantity=value / mark, avg_price=mark))
        invested += value
    positions.sort(key=lambda p: p.symbol)
    return Portfolio(cash=total - invested, positions=tuple(positions))


class ShadowRunner:
    """The shadow policy beside the node (module docstring)."""

    def __init__(self, program: Any, *, model: str, version: int | None, out_dir: Path,
                 initial_equity: float = 1.0) -> None:  # fmt: skip
        self.program, self.model, self.version = program, model, version
        self.policy = program.policy
        self.observer = program.observation_builder()
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.symbols = [str(s) for s in program.symbols]
        self.equity = float(initial_equity)
        self.errors = 0
        self.bars = 0
        self.sessions: set[str] = set()
        self._held: np.ndarray | None = None
        self._close: np.ndarray | None = None
        self._distance_sum = 0.0
        self._sign_sum = 0.0
        self._turnover_sum = 0.0
        self.last_weights: dict[str, float] = {}
        self.error: str | None = None

    def step(self, node: Any, ts: datetime, champion: np.ndarray | None) -> None:
        """One decided bar: the shadow decides, its simulated equity moves, records appended."""
        from tradeforge.execution.node_policy import account_vector, target_weights

        if champion is None or not node.window.ready:
            return
        marks: dict[Symbol, Decimal] = dict(node._marks)
        close = np.array([float(marks.get(Symbol(s), Decimal("NaN"))) for s in self.symbols])
        ret = 0.0
        if self._held is not None and self._close is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                moves = np.where(self._close > 0, close / self._close - 1.0, 0.0)
            ret = float(np.nansum(self._held * np.nan_to_num(moves)))
            self.equity *= 1.0 + ret
        held = self._held if self._held is not None else np.zeros(len(self.symbols))
        try:
            account = account_vector(virtual_portfolio(held, self.equity, marks, node.symbols),
                                     marks, node.symbols)  # fmt: skip
            raw = target_weights(self.policy, self.observer(node.window.values(), account),
                                 len(self.symbols))  # fmt: skip
            weights = np.where(np.isfinite(raw), raw, held)
        except Exception as exc:  # counted: the shadow gate wants no errors
            self.errors += 1
            self.error = f"{type(exc).__name__}: {exc}"
            logger.warning("shadow %s: %s", self.model, self.error)
            weights = held
        champ = np.nan_to_num(np.asarray(champion, dtype=np.float64).reshape(-1), nan=0.0)
        self._distance_sum += float(np.abs(champ - weights).sum())
        self._sign_sum += float(np.mean(np.sign(champ) == np.sign(weights)))
        self._turnover_sum += float(np.abs(weights - held).sum())
        self._held, self._close = weights.copy(), close
        self.bars += 1
        self.sessions.add(ts.date().isoformat())
        self.last_weights = dict(zip(self.symbols, weights.tolist(), strict=True))
        stamp = ts.isoformat()
        self._append("champion_weights.csv", stamp, champ)
        self._append("challenger_weights.csv", stamp, weights)
        self._append("challenger_returns.csv", stamp, np.array([ret]), header=("returns",))
        self._write_meta()

    def _append(self, name: str, stamp: str, values: np.ndarray,
                header: Sequence[str] | None = None) -> None:  # fmt: skip
        path = self.dir / name
        new = not path.is_file()
        with path.open("a", encoding="utf-8") as fh:
            if new:
                fh.write(",".join(["timestamp", *(header or self.symbols)]) + "\n")
            fh.write(",".join([stamp, *(repr(float(v)) for v in values)]) + "\n")

    def _write_meta(self) -> None:
        path = self.dir / "shadow.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"errors": self.errors, "sessions": len(self.sessions),
                                   **self.state()}, indent=1), encoding="utf-8")  # fmt: skip
        tmp.replace(path)

    def state(self) -> dict[str, Any]:
        n = self.bars
        distance = self._distance_sum / n if n else None
        return {
            "model": self.model, "version": self.version, "bars": n,
            "sessions": len(self.sessions), "errors": self.errors,
            "action_distance": distance,
            "agreement": None if distance is None else max(0.0, 1.0 - distance / 2.0),
            "sign_agreement": self._sign_sum / n if n else None,
            "turnover": self._turnover_sum / n if n else None,
            "simulated_equity": self.equity, "last_weights": dict(self.last_weights),
            "records": str(self.dir), "error": self.error,
        }  # fmt: skip


__all__ = ["FILES", "ShadowRunner", "virtual_portfolio"]
