"""Environment configuration: actions, observations, rewards, episodes and the simulator settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from tradeforge.core.config import FrozenConfig, validate_config
from tradeforge.sim.config import SimConfig


class RewardConfig(FrozenConfig):
    """A weighted sum of reward terms, each computed per step from the simulator's equity.

    Return-like terms (added): ``pnl`` (equity change / initial cash), ``log_return``
    (log of equity ratio), ``dsr`` (differential Sharpe ratio of Moody & Saffell with adaptation
    rate ``dsr_eta``). Penalties (subtracted, weights >= 0): ``downside`` (squared negative simple
    return, Sortino-style), ``drawdown`` (current drawdown from the episode's equity peak),
    ``turnover`` (traded notional / equity before the step). The total is multiplied by ``scale``.
    """

    pnl: float = 0.0
    log_return: float = 1.0
    dsr: float = 0.0
    dsr_eta: float = Field(default=0.01, gt=0.0, lt=1.0)
    downside: float = Field(default=0.0, ge=0.0)
    drawdown: float = Field(default=0.0, ge=0.0)
    turnover: float = Field(default=0.0, ge=0.0)
    scale: float = Field(default=1.0, gt=0.0)

    @model_validator(mode="after")
    def _some_term(self) -> RewardConfig:
        terms = (self.pnl, self.log_return, self.dsr, self.downside, self.drawdown, self.turnover)
        if all(w == 0.0 for w in terms):
            raise ValueError(
                "RewardConfig has every term weight at 0; set at least one of pnl, log_return, "
                "dsr, downside, drawdown, turnover"
            )
        return self


class EnvConfig(FrozenConfig):
    """Everything a trading environment needs besides the data.

    * ``action``: ``discrete`` (per asset short/flat/long levels, or sell/hold/buy steps with
      ``discrete_mode="trade"``), ``continuous`` (target position per asset in [-1, 1], scaled by
      ``sim.max_position``), ``weights`` (portfolio weights via ``weights_transform``).
    * ``window``: bars of features in each observation; ``feature_names`` picks a subset of the
      feature panel's columns (all when None).
    * episodes: ``episode_length`` decisions (None: to the end of the range), ``random_start``;
      early termination when equity falls to ``ruin_fraction`` of the initial cash or the
      drawdown from the episode's peak reaches ``max_drawdown``.
    """

    action: Literal["discrete", "continuous", "weights"] = "continuous"
    discrete_mode: Literal["position", "trade"] = "position"
    weights_transform: Literal["softmax", "simplex"] = "softmax"
    weights_cash: bool = True
    softmax_scale: float = Field(default=4.0, gt=0.0)
    window: int = Field(default=30, ge=1)
    feature_names: list[str] | None = None
    dict_obs: bool = False
    reward: RewardConfig = RewardConfig()
    episode_length: int | None = Field(default=None, ge=1)
    random_start: bool = False
    ruin_fraction: float = Field(default=0.05, ge=0.0, lt=1.0)
    max_drawdown: float | None = Field(default=None, gt=0.0, le=1.0)
    sim: SimConfig = SimConfig()


def as_env_config(config: EnvConfig | Mapping[str, Any] | None) -> EnvConfig:
    """``config`` itself, the defaults for None, or a mapping validated into an ``EnvConfig``
    (a :class:`~tradeforge.core.errors.ConfigError` names every bad key)."""
    if config is None:
        return EnvConfig()
    if isinstance(config, EnvConfig):
        return config
    return validate_config(EnvConfig, dict(config), source="EnvConfig")


__all__ = ["EnvConfig", "RewardConfig", "as_env_config"]
