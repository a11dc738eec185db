"""Changing only the bars after t never changes a fold's features or test decisions up to t.

The harness runs one fold of the job twice: on the real bars and on a copy whose bars strictly
after ``t`` are scrambled in every field (open, high, low, close, volume, extras), bars ``0..t``
bit-identical. It reports the first bar at which the fold's features, then its test decisions,
differ. A meta-test registers a deliberately leaky indicator (next bar's return) and checks that
the harness catches it at ``t``: a harness that cannot fail proves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradeforge.agents.policy import load_policy
from tradeforge.agents.rollout import rollout_weights
from tradeforge.agents.training import train_agent
from tradeforge.backtest.walkforward import Fold, make_folds
from tradeforge.data.ingest import load_panel
from tradeforge.data.panel import OHLCV, BarPanel
from tradeforge.experiment import compose, load_experiment
from tradeforge.experiment.config import ExperimentConfig
from tradeforge.features import registry
from tradeforge.features.builder import Builder

pytestmark = pytest.mark.usefixtures("tf_home")

INDICATORS = ["logret_1", "logret_5", "rsi_14", "vol_20"]


def perturb_after(panel: BarPanel, t: int, seed: int = 0) -> BarPanel:
    """A copy whose bars strictly after ``t`` are rescaled at random in every field; bars
    ``0..t`` are untouched. Prices of one bar share one factor, so high >= open, close >= low."""
    rng = np.random.default_rng(seed)
    shape = (panel.n_bars - t - 1, panel.n_symbols)
    price = rng.uniform(0.5, 1.5, shape)
    volume = rng.uniform(0.2, 3.0, shape)

    def scaled(a: np.ndarray, factor: np.ndarray) -> np.ndarray:
        out = a.copy()
        out[t + 1 :] = a[t + 1 :] * factor
        return out

    fields = {f: scaled(getattr(panel, f), volume if f == "volume" else price) for f in OHLCV}
    extra = {k: scaled(v, price) for k, v in panel.extra.items()}
    return replace(panel, **fields, extra=extra)


def first_change(a: np.ndarray, b: np.ndarray) -> int | None:
    """The first row at which ``a`` and ``b`` differ (NaN equals NaN), or None."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    rows = np.flatnonzero(~same.reshape(len(a), -1).all(axis=1))
    return int(rows[0]) if rows.size else None


@dataclass(frozen=True)
class Lookahead:
    """First bars at which the perturbed run differs (None: never); decisions are compared only
    when the features agreed up to ``t``."""

    t: int
    same_fit: bool
    feature_change: int | None
    decision_change: int | None = None

    @property
    def leaks(self) -> bool:
        changes = [c for c in (self.feature_change, self.decision_change) if c is not None]
        return not self.same_fit or any(c <= self.t for c in changes)


def _decisions(cfg: ExperimentConfig, panel: BarPanel, inputs: Any, run_dir: Path) -> np.ndarray:
    make_train, make_eval = compose.env_factories(cfg, panel, inputs, seed=5)
    result = train_agent(cfg.agent, make_train, make_eval, run_dir, pipeline=inputs.pipeline)
    policy = load_policy(result.artifact_path)
    weights: np.ndarray = rollout_weights(policy, compose.make_test_env(cfg, panel, inputs))
    return weights


def check_lookahead(
    cfg: ExperimentConfig, panel: BarPanel, fold: Fold, t: int, run_dir: Path
) -> Lookahead:
    """Run ``fold`` on ``panel`` and on :func:`perturb_after` ``(panel, t)`` and compare."""
    future = perturb_after(panel, t)
    for f in OHLCV:  # the harness's own precondition: only bars after t changed
        assert first_change(getattr(panel, f), getattr(future, f)) == t + 1, f
    base = compose.fit_fold_features(cfg, panel, fold)
    pert = compose.fit_fold_features(cfg, future, fold)
    same_fit = base.pipeline.content_hash == pert.pipeline.content_hash
    feature_change = first_change(base.features.values, pert.features.values)
    found = Lookahead(t, same_fit, feature_change)
    if found.leaks:
        return found
    base_w = _decisions(cfg, panel, base, run_dir / "base")
    pert_w = _decisions(cfg, future, pert, run_dir / "pert")
    decided = slice(fold.test.start, t + 1)
    assert np.isfinite(base_w[decided]).all()
    return replace(found, decision_change=first_change(base_w, pert_w))


def _tiny_fold(write_experiment: Any, raw: dict[str, Any]) -> tuple[Any, BarPanel, Fold, int]:
    cfg = load_experiment(write_experiment(raw))
    panel = load_panel(cfg.data)
    cfg = cfg.resolved_for(panel)
    fold = make_folds(panel.index, cfg.walkforward)[0]
    return cfg, panel, fold, fold.test.start + 40  # inside the test window


def test_future_bars_change_nothing_before_they_happen(
    tmp_path: Path, write_experiment: Any, tiny_experiment: Any
) -> None:
    cfg, panel, fold, t = _tiny_fold(write_experiment, tiny_experiment())
    found = check_lookahead(cfg, panel, fold, t, tmp_path)
    assert found.same_fit  # the scaler is fitted on the training bars, all before t
    assert not found.leaks, found
    # and the perturbation is real: features and decisions change right after t
    assert found.feature_change == t + 1
    assert found.decision_change is not None
    assert found.decision_change > t


def _next_bar_return(b: Builder, p: Any) -> str:
    """A deliberately broken indicator: the return from this bar's close to the NEXT one's."""

    def ahead(c: np.ndarray) -> np.ndarray:
        nxt = np.full_like(c, np.nan)
        nxt[:-1] = c[1:]
        out: np.ndarray = nxt / c - 1.0
        return out

    return b.map("leak_next", ahead, b.close())


def test_the_harness_catches_a_leaky_indicator(
    tmp_path: Path, write_experiment: Any, tiny_experiment: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaky = registry.Indicator("leak_next", (), _next_bar_return, "next bar's return (leaks)")
    monkeypatch.setitem(registry.REGISTRY, "leak_next", leaky)
    raw = tiny_experiment()
    raw["features"] = {"indicators": [*INDICATORS, "leak_next"]}
    cfg, panel, fold, t = _tiny_fold(write_experiment, raw)
    found = check_lookahead(cfg, panel, fold, t, tmp_path)
    assert found.leaks
    assert found.feature_change == t  # the bar at t already sees the close of t + 1
    assert found.decision_change is None  # caught before any training
