"""Baselines trade within the experiment's ``risk:`` limits, through the one projection code."""

from __future__ import annotations

import numpy as np

from tradeforge.data.folds import make_folds
from tradeforge.data.ingest import load_panel
from tradeforge.experiment.config import ExperimentConfig
from tradeforge.experiment.validation import baseline_returns, limited_weights
from tradeforge.risk import RiskLimits, project_path


def _config(**changes) -> ExperimentConfig:
    raw = {
        "data": {"symbols": ["AAPL", "IBM", "MSFT"], "start": "2005-01-01", "end": "2009-12-31"},
        "walkforward": {"unit": "bars", "train": 500, "val": 100, "test": 200, "n_folds": 2},
        "report": {"baselines": ["buy_and_hold", "equal_weight"]},
        **changes,
    }
    return ExperimentConfig.model_validate(raw).check_sections()


def test_risk_limits_apply_to_the_baselines():
    free = _config()
    capped = _config(risk={"max_gross": 0.5})
    panel = load_panel(free.data)
    free, capped = free.resolved_for(panel), capped.resolved_for(panel)
    folds = make_folds(panel.index, free.walkforward)
    loose = baseline_returns(free, panel, folds)
    tight = baseline_returns(capped, panel, folds)
    for name in ("buy_and_hold", "equal_weight"):
        a, b = loose[name].to_numpy(), tight[name].to_numpy()
        assert a.shape == b.shape
        # half the gross exposure: about half the return every bar (costs and drift aside)
        ratio = np.abs(b).sum() / np.abs(a).sum()
        assert 0.4 < ratio < 0.6, (name, ratio)


def test_limited_weights_is_the_risk_package_projection_from_the_test_start():
    cfg = _config(risk={"max_position": 0.2, "max_turnover": 0.3})
    w = np.full((10, 3), 1 / 3)
    w[:4] = np.nan
    out = limited_weights(cfg, w, 4)
    assert np.isnan(out[:4]).all()  # before the test start: untouched
    expected = project_path(w[4:], RiskLimits(max_position=0.2, max_turnover=0.3))
    np.testing.assert_array_equal(out[4:], expected)
    assert np.abs(out[4:]).max() <= 0.2 + 1e-12
    assert limited_weights(_config(), w, 4) is w  # no risk section: nothing changes
