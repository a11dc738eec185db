"""On-disk cache of materialized (unscaled) features, keyed by (spec hash, symbol, range).

Each symbol's features are stored in chunks under ``root/<spec hash>/<symbol>/<origin>/``,
where ``origin`` is the symbol's first bar in the panel (a feature value depends on all the
history since then). A chunk holds the rows it covers plus the computation state after its last
row, so a longer range resumes from that state and computes only the new rows; values equal a
full recompute. A chunk also records a hash of the input rows it was computed from and is
dropped when the data under it changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tradeforge.core.errors import FeatureError
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import OHLCV, BarPanel
from tradeforge.features.graph import State, flatten_state, unflatten_state
from tradeforge.features.panel import FeaturePanel
from tradeforge.features.pipeline import FeaturePipeline

log = logging.getLogger(__name__)

KERNEL_VERSION = 1  # bump when a kernel's values change, so old cached chunks are not reused


@dataclass
class _Chunk:
    path: Path
    stamps: np.ndarray  # int64 ns
    values: FloatArray  # (T, F)
    state: dict[str, State]
    data_hash: str


class FeatureCache:
    """Materialize features once; later calls read them and compute only what is missing."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.last_computed: dict[str, int] = {}  # symbol -> bars computed by the last call

    @property
    def computed_bars(self) -> int:
        return sum(self.last_computed.values())

    def key(self, pipeline: FeaturePipeline) -> str:
        canon = pipeline.spec.canonical()
        raw = {k: canon[k] for k in ("columns", "macro", "macro_delay_days")}
        raw["kernels"] = KERNEL_VERSION
        text = json.dumps(raw, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def features(
        self,
        pipeline: FeaturePipeline,
        panel: BarPanel,
        start: object = None,
        end: object = None,
        scaled: bool = False,
    ) -> FeaturePanel:
        """Features of ``panel`` for bars in ``[start, end]`` (raw, or scaled by ``pipeline``)."""
        if any(ind.name == "xrank" for ind in pipeline.spec.indicators):
            raise FeatureError(
                "FeatureCache stores features per symbol; cross-sectional indicators (xrank) "
                "depend on the other symbols: compute them with FeaturePipeline.transform"
            )
        part = panel.slice_time(start, end)
        last = int(panel.index.get_indexer(part.index[-1:])[0]) if part.n_bars else -1
        values = np.full((part.n_bars, panel.n_symbols, len(pipeline.names)), np.nan)
        self.last_computed = {}
        for j, symbol in enumerate(panel.symbols):
            one = panel.select([symbol])
            valid = np.flatnonzero(~np.isnan(one.close[:, 0]))
            if part.n_bars == 0 or len(valid) == 0 or valid[0] > last:
                self.last_computed[symbol] = 0
                continue
            values[:, j, :] = self._symbol(pipeline, one, int(valid[0]), part.index)
        if scaled:
            values = pipeline.scale(values)
        return FeaturePanel(part.index, panel.symbols, pipeline.names, values)

    # --- one symbol ---------------------------------------------------------------------------
    def _symbol(
        self, pipe: FeaturePipeline, one: BarPanel, origin: int, wanted: pd.DatetimeIndex
    ) -> FloatArray:
        symbol = one.symbols[0]
        stamps = one.index.as_unit("ns").asi8
        folder = self.root / self.key(pipe) / _safe(symbol) / str(stamps[origin])
        chunks = [c for c in self._load(folder) if self._still_valid(c, one, origin)]
        want = wanted.as_unit("ns").asi8
        want = want[want >= stamps[origin]]
        covered = np.zeros(len(want), dtype=bool)
        for c in chunks:
            covered |= np.isin(want, c.stamps)
        computed = 0
        missing_pos = np.searchsorted(stamps, want[~covered])
        for a, b in _runs(missing_pos):
            before = [c for c in chunks if c.stamps[-1] < stamps[a]]
            resume = max(before, key=lambda c: c.stamps[-1]) if before else None
            first = int(np.searchsorted(stamps, resume.stamps[-1])) + 1 if resume else origin
            block = one.iloc(slice(first, b + 1))
            vals, state = pipe.raw(block, resume.state if resume else None)
            computed += block.n_bars
            chunks.append(
                self._save(folder, block, vals[:, 0, :], state, self._data_hash(one, origin, b))
            )
        self.last_computed[symbol] = computed
        out = np.full((len(wanted), len(pipe.names)), np.nan)
        all_wanted = wanted.as_unit("ns").asi8
        for c in chunks:
            pos = np.searchsorted(c.stamps, all_wanted)
            hit = (pos < len(c.stamps)) & (
                c.stamps[np.minimum(pos, len(c.stamps) - 1)] == all_wanted
            )
            out[hit] = c.values[pos[hit]]
        return out

    def _still_valid(self, chunk: _Chunk, one: BarPanel, origin: int) -> bool:
        end = int(np.searchsorted(one.index.as_unit("ns").asi8, chunk.stamps[-1]))
        if end >= one.n_bars or one.index.as_unit("ns").asi8[end] != chunk.stamps[-1]:
            return False
        if self._data_hash(one, origin, end) == chunk.data_hash:
            return True
        log.info("feature cache: input data changed under %s; recomputing", chunk.path)
        chunk.path.unlink(missing_ok=True)
        return False

    @staticmethod
    def _data_hash(one: BarPanel, origin: int, end: int) -> str:
        h = hashlib.sha256(one.index.as_unit("ns").asi8[origin : end + 1].tobytes())
        for name in (*OHLCV, *sorted(one.extra)):
            h.update(np.ascontiguousarray(one.field(name)[origin : end + 1]).tobytes())
        return h.hexdigest()[:16]

    @staticmethod
    def _load(folder: Path) -> list[_Chunk]:
        chunks = []
        for path in sorted(folder.glob("chunk_*.npz")):
            with np.load(path, allow_pickle=False) as z:
                state = unflatten_state({k[6:]: z[k] for k in z.files if k.startswith("state_")})
                chunks.append(_Chunk(path, z["stamps"], z["values"], state, str(z["data_hash"])))
        return chunks

    @staticmethod
    def _save(
        folder: Path, block: BarPanel, values: FloatArray, state: dict[str, State], data_hash: str
    ) -> _Chunk:
        folder.mkdir(parents=True, exist_ok=True)
        stamps = block.index.as_unit("ns").asi8
        path = folder / f"chunk_{stamps[0]}_{stamps[-1]}.npz"
        flat = {f"state_{k}": v for k, v in flatten_state(state).items()}
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, stamps=stamps, values=values, data_hash=np.array(data_hash), **flat)  # type: ignore[arg-type]
        tmp.replace(path)
        return _Chunk(path, stamps, values, state, data_hash)


def default_feature_cache() -> FeatureCache:
    """The cache beside the data store: ``$TRADEFORGE_HOME/features`` (default ``~/.tradeforge``)."""
    home = os.environ.get("TRADEFORGE_HOME")
    return FeatureCache((Path(home) if home else Path.home() / ".tradeforge") / "features")


def _runs(positions: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of sorted integer positions as inclusive (first, last) pairs."""
    if len(positions) == 0:
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(positions) - 1]])
    return [(int(positions[s]), int(positions[e])) for s, e in zip(starts, ends, strict=True)]


def _safe(symbol: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in symbol)


__all__ = ["FeatureCache", "default_feature_cache"]
