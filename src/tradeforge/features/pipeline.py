"""``FeaturePipeline``: fit scalers on a window, transform a whole panel, or update bar by bar.

Batch ``transform`` and online ``update`` run the same graph (see :mod:`.graph`): ``update`` is
the batch computation on one row, continuing from the state the previous rows left, so both
give the same values. A fitted pipeline saves to JSON plus ``.npz`` arrays under a content hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.core.errors import FeatureError, PipelineMismatchError
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import OHLCV, BarPanel
from tradeforge.features import kernels, workspace
from tradeforge.features.builder import Builder
from tradeforge.features.graph import Context, Graph, State, flatten_state, unflatten_state
from tradeforge.features.macro import AsOfSeries, load_macro, macro_fields
from tradeforge.features.panel import FeaturePanel
from tradeforge.features.registry import build_indicator
from tradeforge.features.scalers import apply_scaler, fit_scaler
from tradeforge.features.spec import FeatureSpec

FORMAT_VERSION = 1
Bar = Mapping[str, Any]


def build_graph(spec: FeatureSpec) -> tuple[Graph, list[str]]:
    """The computation graph of ``spec`` and the node key of each output column."""
    spec.columns()  # validates names and parameters first
    b = Builder()
    outputs = [build_indicator(b, ind.name, ind.resolved_params()) for ind in spec.indicators]
    outputs += [b.src(f"macro:{m.upper()}") for m in spec.macro]
    return b.graph, outputs


class FeaturePipeline:
    """Computes the features of a :class:`FeatureSpec` and scales them with fitted statistics."""

    def __init__(
        self, spec: FeatureSpec | None = None, macro_series: Mapping[str, pd.Series] | None = None
    ) -> None:
        self.spec = spec if spec is not None else FeatureSpec.default()
        self._names = self.spec.columns()
        self._graph, self._outputs = build_graph(self.spec)
        self._macro_series: dict[str, pd.Series] = {
            k.upper(): v for k, v in (macro_series or {}).items()
        }
        self._stats: dict[str, FloatArray] = {}
        self._asof_cache: dict[str, AsOfSeries] = {}
        self._fitted = self.spec.scaler == "none"
        self.fit_window: tuple[str | None, str | None] = (None, None)
        self._state: dict[str, State] | None = None
        self._last_ts: pd.Timestamp | None = None
        self._n_live: int | None = None

    # --- properties ---------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def warmup(self) -> int:
        """Bars of history needed before every feature has a value (on gap-free data)."""
        return max((self._graph.nodes[k].lookback for k in self._outputs), default=0)

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    @property
    def stats(self) -> dict[str, FloatArray]:
        return {k: v.copy() for k, v in self._stats.items()}

    @property
    def content_hash(self) -> str:
        """SHA-256 (hex, 16 chars) of the canonical spec and the fitted scaler statistics."""
        payload = {
            "format": FORMAT_VERSION,
            "spec": self.spec.canonical(),
            "stats": {k: np.asarray(v).tolist() for k, v in sorted(self._stats.items())},
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def check_compatible(self, expected_hash: str) -> None:
        """Raise :class:`PipelineMismatchError` unless this pipeline has ``expected_hash``."""
        actual = self.content_hash
        if expected_hash != actual:
            raise PipelineMismatchError(
                f"feature pipeline content_hash {actual!r} does not match the expected hash "
                f"{expected_hash!r} (the pipeline the policy was trained with); load the "
                "pipeline saved with the policy artifact"
            )

    # --- batch --------------------------------------------------------------------------------
    def raw(
        self, panel: BarPanel, state: dict[str, State] | None = None
    ) -> tuple[FloatArray, dict[str, State]]:
        """Unscaled features (T, N, F) of ``panel``, continuing from ``state`` if given."""
        fields: dict[str, FloatArray] = {name: panel.field(name) for name in OHLCV}
        fields.update(panel.extra)
        if self.spec.macro:
            fields.update(
                macro_fields(
                    self.spec.macro, panel.index, panel.n_symbols, self._macro(), self._delay
                )
            )
        ctx = Context.of(fields, panel.index)
        cols, new_state = self._graph.run(ctx, self._outputs, state)
        if not cols:
            return np.empty((panel.n_bars, panel.n_symbols, 0)), new_state
        # np.stack(cols, axis=-1), written bar by bar by the compiled kernel (same values)
        values = kernels.stack_last(cols)
        # the columns are copied: back to the workspace pool for the next transform, unless
        # they share memory with the inputs or a saved state (features.workspace)
        held = workspace.in_use(fields.values())
        for node_state in (*(state or {}).values(), *new_state.values()):
            held += workspace.in_use(node_state.values())
        workspace.release(cols, held)
        del cols
        return values, new_state

    def fit(self, panel: BarPanel, start: object = None, end: object = None) -> FeaturePipeline:
        """Fit the scaler on bars with ``start <= t <= end`` (data after ``end`` is never read)."""
        cut = panel.slice_time(None, end) if end is not None else panel
        values, _ = self.raw(cut)
        mask = np.ones(cut.n_bars, dtype=bool)
        if start is not None:
            mask &= cut.index >= _utc(start)
        window = f"[{start}, {end}]"
        if not mask.any():
            raise FeatureError(f"fit window {window} contains no bars of the panel")
        self._stats = fit_scaler(self.spec.scaler, values[mask], self._names, window)
        self._fitted = True
        self.fit_window = (
            _utc(start).isoformat() if start is not None else None,
            _utc(end).isoformat() if end is not None else None,
        )
        return self

    def scale(self, values: FloatArray) -> FloatArray:
        """Apply the fitted scaler to raw feature values (..., F)."""
        if not self._fitted:
            raise FeatureError(
                f"scaler {self.spec.scaler!r} is not fitted; call fit(panel, start, end) first"
            )
        return apply_scaler(self.spec.scaler, self._stats, values, self.spec.clip)

    def transform(self, panel: BarPanel) -> FeaturePanel:
        """Scaled features of a whole panel, computed from its first bar."""
        values, _ = self.raw(panel)
        return FeaturePanel(panel.index, panel.symbols, self._names, self._scaled_own(values))

    # --- online -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the online state; the next ``update`` starts a fresh warm-up."""
        self._state, self._last_ts, self._n_live = None, None, None

    def warm_start(self, panel: BarPanel) -> FeaturePanel:
        """Run over history and keep the final state, so ``update`` continues after ``panel``."""
        values, self._state = self.raw(panel)
        self._last_ts = panel.index[-1] if panel.n_bars else None
        self._n_live = panel.n_symbols
        return FeaturePanel(panel.index, panel.symbols, self._names, self._scaled_own(values))

    def _scaled_own(self, values: FloatArray) -> FloatArray:
        """``scale(values)`` for an array this pipeline just built and nobody else holds: with
        ``scaler = "none"`` the array itself instead of ``scale``'s defensive copy."""
        if self.spec.scaler == "none":
            return values
        return self.scale(values)

    def update(self, bar: Bar) -> FloatArray:
        """Features (N, F) for one new bar, in O(lookback) per bar.

        ``bar`` maps ``"timestamp"`` (tz-aware) and each of ``open, high, low, close, volume``
        (plus any extra field the spec reads, such as ``news_score``) to arrays of shape (N,),
        symbols in a fixed order. Macro values are joined as of the timestamp, or taken from
        ``bar["macro:VIX"]`` etc. when present. Use :func:`panel_bar` to cut one from a panel.
        """
        if "timestamp" not in bar or "close" not in bar:
            raise FeatureError(
                f"update bar has keys {sorted(bar)}; expected 'timestamp' and arrays for "
                "open, high, low, close, volume (see panel_bar)"
            )
        ts = _utc(bar["timestamp"])
        if self._last_ts is not None and ts <= self._last_ts:
            raise FeatureError(
                f"update timestamp {ts.isoformat()} is not after the previous bar "
                f"{self._last_ts.isoformat()}; bars must arrive in time order"
            )
        fields = {
            k: np.asarray(v, dtype=np.float64).reshape(1, -1)
            for k, v in bar.items()
            if k != "timestamp"
        }
        n = fields["close"].shape[1]
        sizes = {k: v.shape[1] for k, v in fields.items()}
        if any(size != n for size in sizes.values()) or (self._n_live not in (None, n)):
            raise FeatureError(
                f"update bar field sizes {sizes}; expected every field to hold one value per "
                f"symbol ({self._n_live if self._n_live is not None else n} symbols)"
            )
        self._n_live = n
        for name in self.spec.macro:
            key = f"macro:{name.upper()}"
            if key not in fields:
                value = self._asof(name.upper()).at(np.array([ts.value], dtype=np.int64))
                fields[key] = np.full((1, n), value[0])
        ctx = Context(fields, np.array([ts.value], dtype=np.int64))
        values, self._state = self._graph.run(ctx, self._outputs, self._state)
        self._last_ts = ts
        row = np.stack(values, axis=-1)[0] if values else np.empty((n, 0))
        out: FloatArray = self.scale(row)
        return out

    @property
    def _delay(self) -> pd.Timedelta:
        return pd.Timedelta(days=self.spec.macro_delay_days)

    def _asof(self, name: str) -> AsOfSeries:
        if name not in self._asof_cache:
            self._asof_cache[name] = AsOfSeries(self._macro()[name], self._delay)
        return self._asof_cache[name]

    def _macro(self) -> dict[str, pd.Series]:
        for name in self.spec.macro:
            if name.upper() not in self._macro_series:
                self._macro_series[name.upper()] = load_macro(name.upper())
        return self._macro_series

    # --- persistence --------------------------------------------------------------------------
    def save(self, directory: Path, include_state: bool = False) -> None:
        """Write ``pipeline.json`` and ``scaler.npz`` (and ``state.npz`` for a live warm state)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT_VERSION,
            "spec": self.spec.model_dump(mode="json"),
            "names": list(self._names),
            "fitted": self._fitted,
            "fit_window": list(self.fit_window),
            "content_hash": self.content_hash,
        }
        np.savez(directory / "scaler.npz", **self._stats)  # type: ignore[arg-type]
        if include_state and self._state is not None and self._last_ts is not None:
            meta["state_timestamp"] = self._last_ts.isoformat()
            np.savez(directory / "state.npz", **flatten_state(self._state))  # type: ignore[arg-type]
        (directory / "pipeline.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> FeaturePipeline:
        """Read a saved pipeline; the stored content hash must match what was read."""
        directory = Path(directory)
        meta_file = directory / "pipeline.json"
        if not meta_file.is_file():
            raise FeatureError(f"no saved feature pipeline at {directory} (pipeline.json missing)")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise FeatureError(
                f"{meta_file}: format = {meta.get('format')!r}; expected {FORMAT_VERSION}"
            )
        pipe = cls(FeatureSpec.model_validate(meta["spec"]))
        with np.load(directory / "scaler.npz", allow_pickle=False) as arrays:
            pipe._stats = {k: np.asarray(arrays[k], dtype=np.float64) for k in arrays.files}
        pipe._fitted = bool(meta["fitted"])
        pipe.fit_window = (meta["fit_window"][0], meta["fit_window"][1])
        if pipe.content_hash != meta["content_hash"]:
            raise FeatureError(
                f"{directory}: stored content_hash {meta['content_hash']!r} does not match the "
                f"content read ({pipe.content_hash!r}); the files were altered or are corrupt"
            )
        state_file = directory / "state.npz"
        if "state_timestamp" in meta and state_file.is_file():
            with np.load(state_file, allow_pickle=False) as arrays:
                pipe._state = unflatten_state({k: arrays[k] for k in arrays.files})
            pipe._last_ts = _utc(meta["state_timestamp"])
            shapes = [a.shape[-1] for node in pipe._state.values() for a in node.values() if a.ndim]
            pipe._n_live = shapes[0] if shapes else None
        return pipe


def panel_bar(panel: BarPanel, i: int) -> dict[str, Any]:
    """Row ``i`` of ``panel`` in the shape :meth:`FeaturePipeline.update` takes."""
    bar: dict[str, Any] = {"timestamp": panel.index[i]}
    for name in OHLCV:
        bar[name] = panel.field(name)[i]
    for name, arr in panel.extra.items():
        bar[name] = arr[i]
    return bar


def build_features(
    panel: BarPanel,
    spec: FeatureSpec | None = None,
    fit_start: object = None,
    fit_end: object = None,
) -> tuple[FeaturePipeline, FeaturePanel]:
    """Fit a pipeline for ``spec`` on ``[fit_start, fit_end]`` and transform the whole panel."""
    pipe = FeaturePipeline(spec).fit(panel, fit_start, fit_end)
    return pipe, pipe.transform(panel)


def _utc(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


__all__ = ["Bar", "FeaturePipeline", "build_features", "build_graph", "panel_bar"]
