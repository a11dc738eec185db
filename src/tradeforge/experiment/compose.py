"""Composition of one walk-forward fold: features fitted on the fold, envs, training, testing.

Used by :mod:`tradeforge.experiment.run` (every fold) and :mod:`~.single_fold` (one fold).

Every fold is cut from one panel by integer bar ranges (``Fold.train``, ``val``, ``test``):

* the feature pipeline's scaler is fitted on the training bars only, then the whole panel is
  transformed (every kernel is causal, so values at t never read bars after t);
* the agent trains on envs over the training bars and is scored (early stopping, best
  checkpoint) on the validation bars;
* the chosen policy runs once, deterministically, over the test bars; its target weights go
  through the backtest engine with the configured costs. Decisions use bars up to t, fill at
  t+1: the first test decision is at ``test.start``, the last at ``test.stop - 1``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.backtest.engine import BacktestResult, run_backtest
from tradeforge.backtest.walkforward import Fold, fold_test_window
from tradeforge.core.errors import BacktestError
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import BarPanel
from tradeforge.envs.config import EnvConfig
from tradeforge.experiment.config import ExperimentConfig
from tradeforge.features.panel import FeaturePanel
from tradeforge.features.pipeline import FeaturePipeline
from tradeforge.risk.config import RiskConfig
from tradeforge.sim.config import SimConfig


@dataclass(frozen=True)
class FoldInputs:
    """A fold with its fitted pipeline and the whole panel's features under that fit."""

    fold: Fold
    pipeline: FeaturePipeline
    features: FeaturePanel


def fit_fold_features(config: ExperimentConfig, panel: BarPanel, fold: Fold) -> FoldInputs:
    """Fit the feature scaler on the fold's training bars and transform the whole panel."""
    lo, hi = fold.train.start, fold.train.stop - 1
    pipe = FeaturePipeline(config.features).fit(panel, panel.index[lo], panel.index[hi])
    return FoldInputs(fold, pipe, pipe.transform(panel))


def run_env_config(config: ExperimentConfig) -> EnvConfig:
    """The env config of every env of a run: ``config.env`` with ``env.risk`` set to the
    experiment's ``risk:`` section when it sets an engine key (a check, a stop or a breaker;
    :meth:`ExperimentConfig.run_env`, which raises :class:`ConfigError` naming ``risk`` and
    ``env.risk`` when both are set)."""
    return config.run_env()


def eval_env_config(env: EnvConfig) -> EnvConfig:
    """The env config for validation and test: one full pass from the range's first bar."""
    return env.model_copy(update={"random_start": False, "episode_length": None})


def env_factories(
    config: ExperimentConfig, panel: BarPanel, inputs: FoldInputs, seed: int
) -> tuple[Any, Any]:
    """``make_train_env`` (a batched VecEnv over the training bars) and ``make_eval_env``."""
    from tradeforge.envs.env import TradingEnv
    from tradeforge.envs.vec_env import BatchedTradingVecEnv

    fold, feats = inputs.fold, inputs.features
    n_envs = config.agent.n_envs
    limits = config.risk_limits()
    env_config = run_env_config(config)
    lagrangian = config.lagrangian_config()

    def make_train_env() -> Any:
        env: Any = BatchedTradingVecEnv(
            panel, feats, env_config, n_envs=n_envs, start=fold.train.start,
            end=fold.train.stop, seed=seed,
        )  # fmt: skip
        if lagrangian is not None:  # learn to stay inside the limit, not only be clipped to it
            from tradeforge.agents.safe import LagrangianPenaltyVecEnv

            env = LagrangianPenaltyVecEnv(env, lagrangian)
        if limits is None:
            return env
        from tradeforge.agents.safe import ProjectionVecEnv

        return ProjectionVecEnv(env, limits)

    def make_eval_env() -> Any:
        if len(fold.val) == 0:
            raise BacktestError(
                "walkforward.val = 0: training needs a validation period for early stopping "
                "and model selection; set walkforward.val > 0"
            )
        return _limited(config, TradingEnv(
            panel, feats, eval_env_config(env_config), start=fold.val.start,
            end=min(fold.val.stop + 1, panel.n_bars),
        ))  # fmt: skip

    return make_train_env, make_eval_env


def _limited(config: ExperimentConfig, env: Any) -> Any:
    """``env`` with its targets projected onto the config's risk limits (when it has some)."""
    limits = config.risk_limits()
    if limits is None:
        return env
    from tradeforge.agents.safe import ProjectionWrapper

    return ProjectionWrapper(env, limits)


def previous_models(artifact: Path) -> dict[str, Path]:
    """algo -> model.zip of a saved policy or of each member of a saved ensemble."""
    dirs = [artifact] if (artifact / "model.zip").is_file() else sorted(
        p for p in (artifact / "members").glob("*") if (p / "model.zip").is_file()
    )  # fmt: skip
    out: dict[str, Path] = {}
    for d in dirs:
        algo = json.loads((d / "spec.json").read_text(encoding="utf-8"))["algo"]
        out.setdefault(str(algo), d / "model.zip")
    return out


class FoldWarmStart:
    """Start each model from the previous fold's trained weights of the same algorithm.

    Only the network weights carry over: the observation normalizer is refitted on the new
    training window, and validation scoring starts afresh. Algorithms the previous fold did not
    train (e.g. an alpha member) start from scratch.
    """

    def __init__(self, previous: Path) -> None:
        self.models = previous_models(previous)
        self.loaded: list[str] = []

    def __call__(self, model: Any, venv: Any) -> None:
        algo = model_algo(model)
        path = self.models.get(algo) if algo is not None else None
        if algo is not None and path is not None:
            model.set_parameters(str(path), exact_match=True, device="cpu")
            self.loaded.append(algo)


def model_algo(model: Any) -> str | None:
    """The algorithm name of ``model``: that of the nearest class in its MRO that is one of the
    algorithms' classes, so a subclass (the fast PPO of ``agents.fastppo``) is its base's
    algorithm while DDPG (a subclass of SB3's TD3) stays ``ddpg``; None for other objects."""
    from tradeforge.agents.config import ALGOS
    from tradeforge.agents.factory import algo_class

    classes = {algo_class(algo): algo for algo in ALGOS}
    return next((classes[c] for c in type(model).__mro__ if c in classes), None)


def warm_start_hook(config: ExperimentConfig, panel: BarPanel, previous: Path | None = None) -> Any:
    """The fold's warm start: the previous fold's weights when ``walkforward.warm_start`` and
    there is a previous fold, else behaviour cloning of the configured rule, else None."""
    if previous is not None and config.walkforward.warm_start:
        return FoldWarmStart(previous)
    bc = config.warm_start_config()
    if bc is None:
        return None
    from tradeforge.agents.imitation import BCWarmStart, expert_levels

    return BCWarmStart(expert_levels(panel.close, bc), bc)


def make_test_env(config: ExperimentConfig, panel: BarPanel, inputs: FoldInputs) -> Any:
    """A deterministic env over the fold's test bars."""
    from tradeforge.envs.env import TradingEnv

    fold = inputs.fold
    return _limited(config, TradingEnv(
        panel, inputs.features, eval_env_config(run_env_config(config)), start=fold.test.start,
        end=fold_test_window(fold, panel.n_bars)[1],
    ))  # fmt: skip


def data_ranges(panel: BarPanel, fold: Fold) -> dict[str, Any]:
    """ISO timestamps of the fold's parts, recorded in the policy artifact."""
    return {
        k: (v.isoformat() if v is not None else None) for k, v in fold.times(panel.index).items()
    }


def backtest_fold(
    panel: BarPanel,
    weights: FloatArray,
    sim: SimConfig,
    fold: Fold,
    risk: RiskConfig | None = None,
) -> BacktestResult:
    """Backtest ``weights`` decided over the fold's test bars, with the fills one bar later;
    under the risk engine when ``risk`` sets an engine key (the result's ``risk`` counts what
    it did; ``run_backtest(..., risk=)``)."""
    return run_backtest(panel, weights, sim, *fold_test_window(fold, panel.n_bars), risk=risk)


def oos_returns(result: BacktestResult) -> pd.Series:
    """Per-bar returns from the first fill bar (``test.start + 1``) to the last."""
    return result.returns


def stitch_full_weights(
    n_bars: int, n_assets: int, parts: list[FloatArray], folds: list[Fold]
) -> FloatArray:
    """One (T, N) weights array holding each fold's test decisions (NaN elsewhere: hold)."""
    out = np.full((n_bars, n_assets), np.nan)
    for w, fold in zip(parts, folds, strict=True):
        sl = slice(fold.test.start, fold.test.stop)
        out[sl] = w[sl]
    return out


def oos_weights_frame(panel: BarPanel, full: FloatArray, folds: list[Fold]) -> pd.DataFrame:
    """The test-range rows of a stitched (T, N) weights array as a frame (holds carried forward)."""
    rows = np.concatenate([np.arange(f.test.start, f.test.stop) for f in folds])
    frame = pd.DataFrame(full[rows], index=panel.index[rows], columns=list(panel.symbols))
    return frame.ffill().fillna(0.0)


__all__ = [
    "FoldInputs",
    "FoldWarmStart",
    "backtest_fold",
    "data_ranges",
    "env_factories",
    "eval_env_config",
    "fit_fold_features",
    "make_test_env",
    "model_algo",
    "oos_returns",
    "oos_weights_frame",
    "previous_models",
    "run_env_config",
    "stitch_full_weights",
    "warm_start_hook",
]
