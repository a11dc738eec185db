"""The supervised ensemble member: LightGBM next-return forecasts mapped to the env's actions.

Fitted only on training-window rows whose label also lies inside the window; at decision time it
reads the last bar of the observation's feature window, like the RL members.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from pydantic import Field

from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import AgentError, ArtifactError
from tradeforge.core.types import FloatArray


class AlphaMemberConfig(FrozenConfig):
    """A LightGBM member: predicts the ``horizon``-bar forward return of each asset from the last
    bar's features (the env's feature columns), fitted on the training window only. Predictions
    above ``threshold`` mean long, below ``-threshold`` short (flat without shorts)."""

    name: str = "alpha"
    horizon: int = Field(default=1, ge=1)
    n_estimators: int = Field(default=100, ge=1)
    learning_rate: float = Field(default=0.05, gt=0.0)
    num_leaves: int = Field(default=15, ge=2)
    min_child_samples: int = Field(default=20, ge=1)
    threshold: float = Field(default=0.0, ge=0.0)
    seed: int = Field(default=0, ge=0)


class AlphaMember:
    """A supervised member: LightGBM return forecasts mapped to the env's action kind.

    ``layout`` describes the env: window, n_assets, n_features, dict_obs, action kind,
    allow_short, max_position, max_leverage, feature names.
    """

    def __init__(self, booster: Any, config: AlphaMemberConfig, layout: dict[str, Any]) -> None:
        self.booster = booster
        self.config = config
        self.layout = dict(layout)
        self.n_assets = int(layout["n_assets"])
        self.n_features = int(layout["n_features"])
        self.window = int(layout["window"])
        self.allow_short = bool(layout["allow_short"])
        n = self.n_assets
        self.unit = min(float(layout["max_position"]), float(layout["max_leverage"]) / n)
        kind = layout["action"]
        if kind == "discrete":
            levels = 3 if self.allow_short else 2
            self.action_space: gym.Space[Any] = (
                gym.spaces.Discrete(levels) if n == 1 else gym.spaces.MultiDiscrete([levels] * n)
            )
        elif kind == "continuous":
            self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)
        else:
            raise AgentError(
                f"the alpha member supports env action 'discrete' or 'continuous'; got {kind!r}"
            )
        self.kind = kind

    def last_features(self, observation: Any) -> FloatArray:
        """The decision bar's features (N, F) read from an env observation."""
        if isinstance(observation, dict):
            feats = np.asarray(observation["features"], dtype=np.float64)
            out: FloatArray = feats[-1].reshape(self.n_assets, self.n_features)
            return out
        flat = np.asarray(observation, dtype=np.float64).reshape(-1)
        row = self.n_assets * self.n_features
        lo = (self.window - 1) * row
        if flat.size < lo + row:
            raise AgentError(
                f"observation has {flat.size} values; the alpha member expects at least "
                f"{lo + row} (window {self.window} x {self.n_assets} assets x "
                f"{self.n_features} features)"
            )
        out = flat[lo : lo + row].reshape(self.n_assets, self.n_features)
        return out

    def predict(self, observation: Any) -> FloatArray:
        """Predicted forward return per asset (N,)."""
        out: FloatArray = np.asarray(
            self.booster.predict(self.last_features(observation), num_threads=1),
            dtype=np.float64,
        )
        return out

    def levels(self, observation: Any) -> FloatArray:
        pred = self.predict(observation)
        thr = self.config.threshold
        low = -1.0 if self.allow_short else 0.0
        out: FloatArray = np.where(pred > thr, 1.0, np.where(pred < -thr, low, 0.0))
        return out

    def decide(self, observation: Any) -> tuple[FloatArray, Any]:
        level = self.levels(observation)
        if self.kind == "continuous":
            return level, level.astype(np.float32)
        idx = (level + (1.0 if self.allow_short else 0.0)).astype(np.int64)
        action: Any = int(idx[0]) if self.n_assets == 1 else idx
        target: FloatArray = level * self.unit
        return target, action

    def act(self, observation: Any) -> FloatArray:
        return self.decide(observation)[0]

    def env_action(self, observation: Any, action_masks: Any = None) -> Any:
        return self.decide(observation)[1]

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / "model.txt"))
        payload = {"config": self.config.model_dump(mode="json"), "layout": self.layout}
        (directory / "alpha.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path) -> AlphaMember:
        import lightgbm as lgb

        directory = Path(directory)
        try:
            payload = json.loads((directory / "alpha.json").read_text(encoding="utf-8"))
            booster = lgb.Booster(model_file=str(directory / "model.txt"))
        except (OSError, ValueError, lgb.basic.LightGBMError) as exc:
            raise ArtifactError(f"alpha member in {directory} cannot be loaded: {exc}") from None
        config = AlphaMemberConfig.model_validate(payload["config"])
        return cls(booster, config, payload["layout"])


def fit_alpha_member(
    config: AlphaMemberConfig,
    panel: Any,
    features: Any,
    env_config: Any,
    train_range: tuple[int, int],
) -> AlphaMember:
    """Fit LightGBM on rows ``t`` in ``train_range`` whose label ``close[t+h] / close[t] - 1``
    also lies inside it (no bar at or after ``train_range[1]`` is read)."""
    import lightgbm as lgb

    from tradeforge.envs.config import as_env_config
    from tradeforge.envs.observations import select_features

    env = as_env_config(env_config)
    values, names = select_features(features, env.feature_names)
    start, end = int(train_range[0]), int(train_range[1])
    close = np.asarray(panel.close, dtype=np.float64)
    if not 0 <= start < end <= close.shape[0]:
        raise AgentError(
            f"train_range = {train_range}; expected 0 <= start < end <= {close.shape[0]} bars"
        )
    h = config.horizon
    rows = np.arange(start, end - h)
    if rows.size == 0:
        raise AgentError(f"train_range {train_range} is too short for horizon {h}")
    x = values[rows].reshape(-1, values.shape[2])
    y = (close[rows + h] / close[rows] - 1.0).reshape(-1)
    keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
    if keep.sum() < 2 * config.min_child_samples:
        raise AgentError(
            f"only {int(keep.sum())} finite training rows for the alpha member in {train_range}; "
            f"expected at least {2 * config.min_child_samples}"
        )
    params = {
        "objective": "regression",
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_data_in_leaf": config.min_child_samples,
        "seed": config.seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": 1,
        "verbosity": -1,
    }
    data = lgb.Dataset(x[keep], label=y[keep], free_raw_data=True)
    booster = lgb.train(params, data, num_boost_round=config.n_estimators)
    sim = env.sim
    layout = {
        "window": env.window,
        "n_assets": int(values.shape[1]),
        "n_features": int(values.shape[2]),
        "dict_obs": env.dict_obs,
        "action": env.action,
        "allow_short": sim.allow_short,
        "max_position": sim.max_position,
        "max_leverage": sim.max_leverage,
        "feature_names": list(names),
        "train_range": [start, end],
    }
    if env.action == "discrete" and env.discrete_mode == "trade":
        raise AgentError("the alpha member needs discrete_mode = 'position'; got 'trade'")
    return AlphaMember(booster, config, layout)


__all__ = ["AlphaMember", "AlphaMemberConfig", "fit_alpha_member"]
