"""The reference profile: what a policy saw at training time, stored in its artifact.

``build_reference_profile`` summarises, once, the inputs and outputs a drift check compares live
data with; the training data itself is not kept. ``ReferenceProfile.save(dir)`` writes
``reference_profile.json`` (exact float round trip) and ``load(dir)`` reads it back.

* every feature and every action dimension (and the critic's value estimates when given): a
  :class:`Marginal` with quantiles, PSI bins, mean, spread and lag-1 autocorrelation;
* the per-bar action mean, value and return streams: :class:`StreamStats` used to standardise
  what the online detectors see;
* the out-of-sample returns: their marginal and the CUSUM calibrated on their bootstrap.

Features may be given as ``(T, F)`` or as a feature panel's ``(T, N, F)`` values; a panel is
pooled over its symbols (each symbol-bar one sample; the autocorrelation is measured along time
per symbol). Live data must be pooled the same way, which ``drift_report`` does.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tradeforge.core.errors import ArtifactError, ConfigError, FeatureError
from tradeforge.core.types import FloatArray
from tradeforge.monitor.calibration import CusumCalibration, calibrate_cusum
from tradeforge.monitor.config import CusumConfig
from tradeforge.monitor.stats import bin_fractions, lag1_autocorrelation, long_run_std

FORMAT_VERSION = 1
PROFILE_FILE = "reference_profile.json"
DEFAULT_QUANTILES: tuple[float, ...] = tuple(float(q) for q in np.round(np.linspace(0, 1, 201), 4))
MAX_DISCRETE = 32  # at most this many distinct integer actions are treated as categories


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Marginal(_Record):
    """The reference distribution of one channel (feature, action dimension or value)."""

    name: str
    n: int
    nan_fraction: float
    mean: float | None
    std: float | None
    rho1: float
    quantiles: tuple[float, ...]  # at ReferenceProfile.quantile_levels; empty when n == 0
    psi_edges: tuple[float, ...]
    psi_fractions: tuple[float, ...]
    discrete: bool = False


class StreamStats(_Record):
    """How to standardise a one-value-per-bar stream: ``(x - mean) / scale``."""

    name: str
    n: int
    mean: float
    std: float
    scale: float  # long-run standard deviation (>= std), floored above zero
    rho1: float

    def standardise(self, values: FloatArray) -> FloatArray:
        out: FloatArray = (np.asarray(values, dtype=np.float64) - self.mean) / self.scale
        return out


class ReferenceProfile(_Record):
    """A policy's training-time reference for drift checks (see the module docstring)."""

    format: int = FORMAT_VERSION
    created_at: str
    quantile_levels: tuple[float, ...]
    psi_bins: int
    feature_names: tuple[str, ...]
    features: tuple[Marginal, ...]
    n_symbols: int = 1
    action_kind: Literal["continuous", "discrete"] | None = None
    actions: tuple[Marginal, ...] = ()
    action_stream: StreamStats | None = None
    values: Marginal | None = None
    value_stream: StreamStats | None = None
    returns: Marginal | None = None
    return_stream: StreamStats | None = None
    cusum: CusumCalibration | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @property
    def feature_means(self) -> FloatArray:
        """Per-feature training mean (NaN where undefined): the integrated-gradients baseline."""
        return np.array([np.nan if m.mean is None else m.mean for m in self.features])

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ArtifactError(f"{PROFILE_FILE} is not valid JSON: {exc}") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT_VERSION:
            got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise ArtifactError(
                f"{PROFILE_FILE} format = {got!r}; expected {FORMAT_VERSION} (a reference "
                "profile written by tradeforge.monitor)"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ArtifactError(
                f"{PROFILE_FILE}: {where}: {first['msg']} ({exc.error_count()} problem(s))"
            ) from None

    def save(self, directory: Path) -> Path:
        """Write ``<directory>/reference_profile.json`` (the directory is created)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / PROFILE_FILE
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: Path) -> ReferenceProfile:
        """Read ``<directory>/reference_profile.json`` (or the file itself when given)."""
        path = Path(directory)
        if path.is_dir():
            path = path / PROFILE_FILE
        if not path.is_file():
            raise ArtifactError(
                f"{path} does not exist; the policy artifact has no reference profile (build one "
                "with tradeforge.monitor.build_reference_profile at training time)"
            )
        return cls.from_json(path.read_text(encoding="utf-8"))


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def pool(values: FloatArray, n_features: int | None = None) -> FloatArray:
    """``(T, F)`` from ``(T, F)`` or a panel's ``(T, N, F)`` (time-major: row ``t * N + i``)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 3:
        x = x.reshape(-1, x.shape[2])
    elif x.ndim == 1 and n_features == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise FeatureError(
            f"features have shape {np.shape(values)}; expected (T, F) or a panel's (T, N, F)"
        )
    if n_features is not None and x.shape[1] != n_features:
        raise FeatureError(
            f"features have {x.shape[1]} columns; expected {n_features} (one per feature name)"
        )
    return x


def _rho(values: FloatArray) -> float:
    """Lag-1 autocorrelation along time; a panel's symbols are separate series."""
    x = np.asarray(values, dtype=np.float64)
    return lag1_autocorrelation(x if x.ndim <= 2 else x.reshape(x.shape[0], -1))


def marginal(
    name: str,
    values: FloatArray,
    levels: Sequence[float],
    psi_bins: int,
    rho1: float = 0.0,
    discrete: bool = False,
) -> Marginal:
    """The :class:`Marginal` of one channel's values (NaNs counted, then dropped)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = x[~np.isnan(x)]
    n = int(finite.size)
    nan_fraction = float(1.0 - n / x.size) if x.size else 1.0
    if n == 0:
        return Marginal(
            name=name,
            n=0,
            nan_fraction=nan_fraction,
            mean=None,
            std=None,
            rho1=0.0,
            quantiles=(),
            psi_edges=(),
            psi_fractions=(1.0,),
            discrete=discrete,
        )
    if discrete:
        cats = np.unique(finite)
        edges = (cats[1:] + cats[:-1]) / 2.0
    else:
        inner = np.quantile(finite, np.linspace(0, 1, psi_bins + 1)[1:-1])
        edges = np.unique(inner)
    return Marginal(
        name=name,
        n=n,
        nan_fraction=nan_fraction,
        mean=float(finite.mean()),
        std=float(finite.std()),
        rho1=_finite(rho1) or 0.0,
        quantiles=tuple(float(q) for q in np.quantile(finite, np.asarray(levels))),
        psi_edges=tuple(float(e) for e in edges),
        psi_fractions=tuple(float(f) for f in bin_fractions(finite, edges)),
        discrete=discrete,
    )


def stream_stats(name: str, values: FloatArray) -> StreamStats:
    """Mean, spread and long-run spread of a per-bar stream (NaNs dropped)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    x = x[~np.isnan(x)]
    if x.size < 2:
        raise FeatureError(f"{name} has {x.size} finite values; expected at least 2")
    mean = float(x.mean())
    std = float(x.std())
    lr = long_run_std(x)
    floor = 1e-8 * max(1.0, abs(mean))
    return StreamStats(
        name=name,
        n=int(x.size),
        mean=mean,
        std=std,
        scale=max(lr, std, floor),
        rho1=lag1_autocorrelation(x),
    )


def row_mean(values: FloatArray) -> FloatArray:
    """Mean over axis 1 ignoring NaNs; NaN for an all-NaN row (without numpy's warning)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        return x.copy()
    ok = ~np.isnan(x)
    count = ok.sum(axis=1)
    total = np.where(ok, x, 0.0).sum(axis=1)
    out: FloatArray = np.full(x.shape[0], np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


def _check_levels(quantiles: Sequence[float]) -> tuple[float, ...]:
    levels = tuple(float(q) for q in quantiles)
    ok = len(levels) >= 3 and levels[0] == 0.0 and levels[-1] == 1.0
    if not ok or any(b <= a for a, b in itertools.pairwise(levels)):
        raise ConfigError(
            f"quantiles = {levels[:5]}{'...' if len(levels) > 5 else ''}; expected at least 3 "
            "strictly increasing levels from 0.0 to 1.0"
        )
    return levels


def action_matrix(actions: FloatArray) -> tuple[FloatArray, bool]:
    """``(T, A)`` float actions and whether they are discrete (integer dtype, few categories)."""
    raw = np.asarray(actions)
    discrete = bool(np.issubdtype(raw.dtype, np.integer)) and np.unique(raw).size <= MAX_DISCRETE
    x = raw.astype(np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise FeatureError(f"actions have shape {raw.shape}; expected (T,) or (T, A)")
    return x, discrete


def build_reference_profile(
    features: FloatArray,
    names: Sequence[str],
    actions: FloatArray | None = None,
    values: FloatArray | None = None,
    oos_returns: FloatArray | None = None,
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    psi_bins: int = 10,
    cusum: CusumConfig | None = None,
    metadata: dict[str, Any] | None = None,
) -> ReferenceProfile:
    """Summarise a policy's training-time features, actions, values and out-of-sample returns.

    ``features`` (T, F) or (T, N, F) in the order of ``names``; ``actions`` (T,) or (T, A) (an
    integer array is a discrete action, else per-dimension continuous, e.g. target weights);
    ``values`` the critic's V(s) per bar; ``oos_returns`` the walk-forward out-of-sample bar
    returns, from which the CUSUM is calibrated (``cusum`` config). ``metadata`` values are
    stored as strings (e.g. the feature hash, the data window).
    """
    levels = _check_levels(quantiles)
    if psi_bins < 2:
        raise ConfigError(f"psi_bins = {psi_bins}; expected at least 2")
    names = tuple(str(n) for n in names)
    if len(set(names)) != len(names):
        raise FeatureError(f"feature names {names} repeat; expected unique names")
    raw = np.asarray(features, dtype=np.float64)
    pooled = pool(raw, len(names))
    n_symbols = raw.shape[1] if raw.ndim == 3 else 1
    feats = tuple(
        marginal(name, pooled[:, j], levels, psi_bins, _rho(raw[..., j]))
        for j, name in enumerate(names)
    )
    fields: dict[str, Any] = {}
    if actions is not None:
        act, discrete = action_matrix(actions)
        fields["action_kind"] = "discrete" if discrete else "continuous"
        fields["actions"] = tuple(
            marginal(f"action_{i}", act[:, i], levels, psi_bins, _rho(act[:, i]), discrete)
            for i in range(act.shape[1])
        )
        fields["action_stream"] = stream_stats("action_mean", row_mean(act))
    if values is not None:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        fields["values"] = marginal("value", v, levels, psi_bins, _rho(v))
        fields["value_stream"] = stream_stats("value", v)
    if oos_returns is not None:
        r = np.asarray(oos_returns, dtype=np.float64).reshape(-1)
        fields["returns"] = marginal("returns", r, levels, psi_bins, _rho(r))
        fields["return_stream"] = stream_stats("returns", r)
        fields["cusum"] = calibrate_cusum(r, cusum)
    return ReferenceProfile(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        quantile_levels=levels,
        psi_bins=psi_bins,
        feature_names=names,
        features=feats,
        n_symbols=n_symbols,
        metadata={str(k): str(v) for k, v in (metadata or {}).items()},
        **fields,
    )


__all__ = [
    "DEFAULT_QUANTILES",
    "PROFILE_FILE",
    "Marginal",
    "ReferenceProfile",
    "StreamStats",
    "action_matrix",
    "build_reference_profile",
    "marginal",
    "pool",
    "row_mean",
    "stream_stats",
]
