"""A trading node's drift history: one JSON line per bar, appended as the node runs.

``<state dir>/drift/history.jsonl`` holds, per bar::

    {"timestamp": "2024-05-01T00:00:00+00:00", "features": [[...F values...], ...one per symbol],
     "action": [...A values...], "return": 0.0012, "value": 1.7}

(any of ``action``, ``return``, ``value`` may be null; NaN is written as null). The file is
append-only, so a crash loses at most the line being written: a last line that does not parse
is ignored, any earlier one is an error. ``tradeforge drift report --state DIR`` reads it back
with :func:`read_history`; the node writes it with :class:`HistoryWriter`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tradeforge.core.errors import DataValidationError
from tradeforge.core.types import FloatArray

HISTORY_FILE = Path("drift") / "history.jsonl"


def _clean(values: Any) -> Any:
    if isinstance(values, list):
        return [_clean(v) for v in values]
    if values is None:
        return None
    f = float(values)
    return f if math.isfinite(f) else None


class HistoryWriter:
    """Appends bars to ``<state_dir>/drift/history.jsonl`` (one line each, flushed per bar)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / HISTORY_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(
        self,
        timestamp: Any,
        features: FloatArray,
        action: FloatArray | float | None = None,
        ret: float | None = None,
        value: float | None = None,
    ) -> None:
        stamp = timestamp.isoformat() if hasattr(timestamp, "isoformat") else str(timestamp)
        feats = np.asarray(features, dtype=np.float64)
        row = {
            "timestamp": stamp,
            "features": _clean(np.atleast_2d(feats).tolist()),
            "action": None if action is None else _clean(np.atleast_1d(action).tolist()),
            "return": _clean(ret),
            "value": _clean(value),
        }
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, allow_nan=False) + "\n")


@dataclass(frozen=True)
class NodeHistory:
    """A node's bars: timestamps (T,), features (T, N, F), actions (T, A) or None, returns and values (T,)."""

    timestamps: tuple[str, ...]
    features: FloatArray
    actions: FloatArray | None
    returns: FloatArray | None
    values: FloatArray | None

    def between(self, start: str | None, end: str | None) -> NodeHistory:
        """The bars with ``start <= timestamp[:len(start)]`` and ``timestamp[:len(end)] <= end``."""
        keep = [
            i
            for i, ts in enumerate(self.timestamps)
            if (start is None or ts[: len(start)] >= start)
            and (end is None or ts[: len(end)] <= end)
        ]
        sel = np.asarray(keep, dtype=np.int64)
        return NodeHistory(
            tuple(self.timestamps[i] for i in keep),
            self.features[sel],
            None if self.actions is None else self.actions[sel],
            None if self.returns is None else self.returns[sel],
            None if self.values is None else self.values[sel],
        )


def _column(rows: list[dict[str, Any]], key: str, path: Path) -> FloatArray | None:
    raw = [row.get(key) for row in rows]
    if all(v is None for v in raw):
        return None
    if key == "action":
        width = max(len(v) for v in raw if v is not None)
        out = np.full((len(raw), width), np.nan)
        for i, v in enumerate(raw):
            if v is not None:
                if len(v) != width:
                    raise DataValidationError(
                        f"{path}: bar {i} action has {len(v)} values; expected {width}"
                    )
                out[i] = [np.nan if x is None else x for x in v]
        return out
    return np.array([np.nan if v is None else float(v) for v in raw], dtype=np.float64)


def read_history(state_dir: Path) -> NodeHistory:
    """Read ``<state_dir>/drift/history.jsonl`` (see the module docstring)."""
    path = Path(state_dir) / HISTORY_FILE
    if not path.is_file():
        raise DataValidationError(
            f"{path} does not exist; expected the drift history a trading node writes with "
            "tradeforge.monitor.HistoryWriter"
        )
    lines = path.read_text(encoding="utf-8").splitlines()
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            if number == len(lines):  # a line cut short by a crash
                break
            raise DataValidationError(
                f"{path}: line {number} is not valid JSON; expected one bar per line"
            ) from None
    if not rows:
        raise DataValidationError(f"{path} holds no bars")
    shape = np.shape(rows[0]["features"])
    feats = np.full((len(rows), *shape), np.nan)
    for i, row in enumerate(rows):
        f = np.array(
            [[np.nan if x is None else x for x in sym] for sym in row["features"]], dtype=np.float64
        )
        if f.shape != shape:
            raise DataValidationError(
                f"{path}: bar {i} ({row.get('timestamp')}) features have shape {f.shape}; "
                f"expected {shape} like the first bar"
            )
        feats[i] = f
    return NodeHistory(
        tuple(str(row.get("timestamp")) for row in rows),
        feats,
        _column(rows, "action", path),
        _column(rows, "return", path),
        _column(rows, "value", path),
    )


__all__ = ["HISTORY_FILE", "HistoryWriter", "NodeHistory", "read_history"]
