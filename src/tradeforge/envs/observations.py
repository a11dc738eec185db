"""Observation interpreter: a window of pipeline features plus the account state.

The flat observation of an env at decision bar ``t`` is, as float32::

    [features[t - window + 1 : t + 1] flattened as (window, N, F), weights (N,), cash fraction,
     unrealized P&L fraction]

With ``dict_obs`` it is ``{"features": (window, N, F), "account": (N + 2,)}``. Only bars up to and
including ``t`` are ever read (the decision at ``t`` sees the close of ``t`` and nothing later).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd
from gymnasium import spaces
from numpy.lib.stride_tricks import as_strided

from tradeforge.core.errors import SimulationError
from tradeforge.core.types import FloatArray, IntArray


class FeaturesLike(Protocol):
    """What the envs read from ``tradeforge.features.FeaturePanel``."""

    @property
    def index(self) -> pd.DatetimeIndex: ...
    @property
    def symbols(self) -> tuple[str, ...]: ...
    @property
    def names(self) -> tuple[str, ...]: ...
    @property
    def values(self) -> FloatArray: ...


def select_features(
    features: FeaturesLike, names: list[str] | None
) -> tuple[FloatArray, tuple[str, ...]]:
    """The (T, N, F) values for ``names`` (all when None), with the names in that order."""
    values = np.asarray(features.values, dtype=np.float64)
    all_names = tuple(features.names)
    if values.ndim != 3 or values.shape[2] != len(all_names):
        raise SimulationError(
            f"features.values has shape {values.shape}; expected (T, N, F) with F = "
            f"{len(all_names)} = len(features.names)"
        )
    if names is None:
        return values, all_names
    missing = [n for n in names if n not in all_names]
    if missing:
        raise SimulationError(
            f"feature_names {missing} are not in the feature panel; available: "
            f"{', '.join(all_names)}"
        )
    if len(set(names)) != len(names):
        raise SimulationError(f"feature_names {names} lists a feature twice; expected unique names")
    cols = [all_names.index(n) for n in names]
    return values[:, :, cols], tuple(names)


PADDED_BUDGET = 64 * 2**20  # bytes per env of precomputed flat windows (see ``WindowObservations``)


class WindowObservations:
    """Builds batched observations from a (T, N, F) feature array and account arrays."""

    def __init__(self, values: FloatArray, window: int, dict_obs: bool) -> None:
        n_bars, n_assets, n_features = values.shape
        self.window = window
        self.n_assets = n_assets
        self.n_features = n_features
        self.dict_obs = dict_obs
        self.row = n_assets * n_features
        self.feature_size = window * self.row
        self.size = self.feature_size + n_assets + 2
        flat = np.ascontiguousarray(values.reshape(n_bars, self.row), dtype=np.float32)
        self._flat = flat
        # windows[s] = flat[s : s + window] read as one contiguous row (no copy)
        n_windows = n_bars - window + 1
        item = flat.itemsize
        self._windows = as_strided(
            flat,
            shape=(max(n_windows, 0), self.feature_size),
            strides=(self.row * item, item),
            writeable=False,
        )
        # For the flat layout, materialize every window once, padded with room for the account
        # columns: a batch observation is then one contiguous row gather (``padded[start]``),
        # several times faster than gathering from the strided view and copying again. Above
        # the memory budget the strided view is used instead.
        self._padded: np.ndarray | None = None
        if not dict_obs and n_windows > 0 and n_windows * self.size * item <= PADDED_BUDGET:
            padded = np.zeros((n_windows, self.size), dtype=np.float32)
            padded[:, : self.feature_size] = self._windows
            padded.setflags(write=False)
            self._padded = padded
        if dict_obs:
            self.space: spaces.Space[Any] = spaces.Dict(
                {
                    "features": spaces.Box(
                        -np.inf, np.inf, shape=(window, n_assets, n_features), dtype=np.float32
                    ),
                    "account": spaces.Box(-np.inf, np.inf, shape=(n_assets + 2,), dtype=np.float32),
                }
            )
        else:
            self.space = spaces.Box(-np.inf, np.inf, shape=(self.size,), dtype=np.float32)

    def observe(
        self, t: IntArray, weights: FloatArray, cash_fraction: FloatArray, upnl: FloatArray
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Observations for decision bars ``t`` (B,): an array (B, size) or a dict of arrays."""
        start = t - (self.window - 1)
        batch = t.shape[0]
        if self.dict_obs:
            feats = self._windows[start].reshape(batch, self.window, self.n_assets, self.n_features)
            account = np.empty((batch, self.n_assets + 2), dtype=np.float32)
            account[:, : self.n_assets] = weights
            account[:, self.n_assets] = cash_fraction
            account[:, self.n_assets + 1] = upnl
            return {"features": feats, "account": account}
        k = self.feature_size
        if self._padded is not None:
            out = self._padded[start]  # a new contiguous (B, size) array
        else:
            out = np.empty((batch, self.size), dtype=np.float32)
            out[:, :k] = self._windows[start]
        out[:, k : k + self.n_assets] = weights
        out[:, k + self.n_assets] = cash_fraction
        out[:, k + self.n_assets + 1] = upnl
        return out


__all__ = ["FeaturesLike", "WindowObservations", "select_features"]
