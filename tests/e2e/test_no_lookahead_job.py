"""Perturbing the future never changes a fold's training or its test decisions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tradeforge.agents.policy import load_policy
from tradeforge.agents.rollout import rollout_weights
from tradeforge.agents.training import train_agent
from tradeforge.backtest.walkforward import make_folds
from tradeforge.cli import compose
from tradeforge.cli.experiment import load_experiment
from tradeforge.data.ingest import load_panel

pytestmark = pytest.mark.usefixtures("tf_home")


def _perturb_after(panel, bar: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    factor = np.ones_like(panel.close)
    factor[bar:] = rng.uniform(0.5, 1.5, size=factor[bar:].shape)
    return replace(
        panel,
        open=panel.open * factor, high=panel.high * factor * 1.01,
        low=panel.low * factor * 0.99, close=panel.close * factor,
        volume=panel.volume * factor[::-1],
    )  # fmt: skip


def _fold_policy_weights(cfg, panel, fold, run_dir: Path):
    inputs = compose.fit_fold_features(cfg, panel, fold)
    make_train, make_eval = compose.env_factories(cfg, panel, inputs, seed=5)
    result = train_agent(cfg.agent, make_train, make_eval, run_dir, pipeline=inputs.pipeline)
    policy = load_policy(result.artifact_path)
    weights = rollout_weights(policy, compose.make_test_env(cfg, panel, inputs))
    return inputs, weights


def test_future_prices_change_nothing_before_they_happen(
    tmp_path: Path, write_experiment, tiny_experiment
) -> None:
    cfg = load_experiment(write_experiment(tiny_experiment()))
    panel = load_panel(cfg.data)
    fold = make_folds(panel.index, cfg.walkforward)[0]
    cut = fold.test.start + 40  # inside the test window: later decisions may change, earlier not
    future = _perturb_after(panel, cut + 1)

    base_inputs, base_w = _fold_policy_weights(cfg, panel, fold, tmp_path / "base")
    pert_inputs, pert_w = _fold_policy_weights(cfg, future, fold, tmp_path / "pert")

    assert base_inputs.pipeline.content_hash == pert_inputs.pipeline.content_hash
    np.testing.assert_array_equal(
        base_inputs.features.values[: cut + 1], pert_inputs.features.values[: cut + 1]
    )
    decided = slice(fold.test.start, cut + 1)
    assert np.isfinite(base_w[decided]).all()
    np.testing.assert_array_equal(base_w[decided], pert_w[decided])
    # and the perturbation is real: features after the cut differ
    assert not np.allclose(
        base_inputs.features.values[cut + 2 :],
        pert_inputs.features.values[cut + 2 :],
        equal_nan=True,
    )
