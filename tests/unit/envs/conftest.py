"""Small deterministic panels and features for the env tests."""

from __future__ import annotations

import pytest

from tradeforge.testing.envs import simple_features, synthetic_panel


@pytest.fixture(scope="session")
def one_asset():
    panel = synthetic_panel(n_bars=200, n_assets=1, seed=1)
    return panel, simple_features(panel)


@pytest.fixture(scope="session")
def three_assets():
    panel = synthetic_panel(n_bars=200, n_assets=3, seed=2)
    return panel, simple_features(panel)
