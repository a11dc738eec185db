"""Gymnasium registration of the tradeforge environments under versioned ids.

``import tradeforge.envs`` calls :func:`register_envs` (idempotent; also callable explicitly),
after which ``gymnasium.make("tradeforge/SingleAsset-v0")`` works. Registering records only the
ids and the factories' dotted names; the factories run when an env is made. Without ``panel``/``features`` keyword
arguments the factories build a default setup from bundled real data and the default feature
pipeline, whose scalers are fitted on the first 70% of the bars only.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from tradeforge.data.bundled import load_bundled_panel
from tradeforge.data.panel import BarPanel
from tradeforge.envs.config import EnvConfig
from tradeforge.envs.env import TradingEnv
from tradeforge.envs.observations import FeaturesLike

ENV_IDS: dict[str, dict[str, Any]] = {
    "tradeforge/SingleAsset-v0": {
        "symbols": ("SP500",),
        "config": {
            "action": "continuous",
            "window": 30,
            "episode_length": 252,
            "random_start": True,
        },
    },
    "tradeforge/SingleAssetDiscrete-v0": {
        "symbols": ("SP500",),
        "config": {"action": "discrete", "window": 30, "episode_length": 252, "random_start": True},
    },
    "tradeforge/Portfolio-v0": {
        "symbols": ("AAPL", "IBM", "MSFT"),
        "config": {
            "action": "weights",
            "weights_transform": "softmax",
            "window": 30,
            "episode_length": 252,
            "random_start": True,
        },
    },
    "tradeforge/PortfolioLongShort-v0": {
        "symbols": ("AAPL", "IBM", "MSFT"),
        "config": {
            "action": "weights",
            "weights_transform": "simplex",
            "window": 30,
            "episode_length": 252,
            "random_start": True,
            "sim": {"allow_short": True, "max_leverage": 1.0},
        },
    },
}

FIT_FRACTION = 0.7


def default_features(panel: BarPanel) -> FeaturesLike:
    """The default feature pipeline, fitted on the first 70% of ``panel`` and applied to all."""
    from tradeforge.features.pipeline import FeaturePipeline
    from tradeforge.features.spec import FeatureSpec

    end = panel.index[int(FIT_FRACTION * panel.n_bars) - 1]
    pipeline = FeaturePipeline(FeatureSpec.default()).fit(panel, end=end)
    features: FeaturesLike = pipeline.transform(panel)
    return features


def _make(
    env_id: str,
    panel: BarPanel | None,
    features: FeaturesLike | None,
    config: EnvConfig | dict[str, Any] | None,
    **kwargs: Any,
) -> TradingEnv:
    spec = ENV_IDS[env_id]
    if panel is None:
        panel = load_bundled_panel(list(spec["symbols"]))
    if features is None:
        features = default_features(panel)
    if config is None:
        config = EnvConfig.model_validate(spec["config"])
    elif isinstance(config, dict):
        config = EnvConfig.model_validate({**spec["config"], **config})
    return TradingEnv(panel, features, config, **kwargs)


def make_single_asset(
    panel: BarPanel | None = None,
    features: FeaturesLike | None = None,
    config: EnvConfig | dict[str, Any] | None = None,
    **kwargs: Any,
) -> TradingEnv:
    """``tradeforge/SingleAsset-v0``: SP500 daily, continuous target position."""
    return _make("tradeforge/SingleAsset-v0", panel, features, config, **kwargs)


def make_single_asset_discrete(
    panel: BarPanel | None = None,
    features: FeaturesLike | None = None,
    config: EnvConfig | dict[str, Any] | None = None,
    **kwargs: Any,
) -> TradingEnv:
    """``tradeforge/SingleAssetDiscrete-v0``: SP500 daily, flat/long (short/flat/long with
    shorts allowed)."""
    return _make("tradeforge/SingleAssetDiscrete-v0", panel, features, config, **kwargs)


def make_portfolio(
    panel: BarPanel | None = None,
    features: FeaturesLike | None = None,
    config: EnvConfig | dict[str, Any] | None = None,
    **kwargs: Any,
) -> TradingEnv:
    """``tradeforge/Portfolio-v0``: AAPL, IBM, MSFT daily, softmax weights with cash."""
    return _make("tradeforge/Portfolio-v0", panel, features, config, **kwargs)


def make_portfolio_long_short(
    panel: BarPanel | None = None,
    features: FeaturesLike | None = None,
    config: EnvConfig | dict[str, Any] | None = None,
    **kwargs: Any,
) -> TradingEnv:
    """``tradeforge/PortfolioLongShort-v0``: AAPL, IBM, MSFT daily, long/short weights projected
    onto the L1 ball of radius ``max_leverage`` (the rest is cash)."""
    return _make("tradeforge/PortfolioLongShort-v0", panel, features, config, **kwargs)


_FACTORIES = {
    "tradeforge/SingleAsset-v0": "tradeforge.envs.registration:make_single_asset",
    "tradeforge/SingleAssetDiscrete-v0": "tradeforge.envs.registration:make_single_asset_discrete",
    "tradeforge/Portfolio-v0": "tradeforge.envs.registration:make_portfolio",
    "tradeforge/PortfolioLongShort-v0": "tradeforge.envs.registration:make_portfolio_long_short",
}


def register_envs() -> list[str]:
    """Register every tradeforge env id with Gymnasium (safe to call repeatedly)."""
    for env_id, entry_point in _FACTORIES.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, disable_env_checker=True)
    return list(_FACTORIES)


__all__ = [
    "ENV_IDS",
    "default_features",
    "make_portfolio",
    "make_portfolio_long_short",
    "make_single_asset",
    "make_single_asset_discrete",
    "register_envs",
]
