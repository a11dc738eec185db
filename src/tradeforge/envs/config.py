"""Environment configuration: actions, observations, rewards, episodes and the simulator settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from tradeforge.core.config import FrozenConfig, validate_config
from tradeforge.risk.config import RiskConfig
from tradeforge.sim.config import SimConfig

_EXCESS_KEYS = ("excess_benchmark", "excess_log_return", "excess_dsr", "excess_drawdown")


class RewardConfig(FrozenConfig):
    """A weighted sum of reward terms, each computed per step from the simulator's equity.

    Return-like terms (added): ``pnl`` (equity change / initial cash), ``log_return``
    (log of equity ratio), ``dsr`` (differential Sharpe ratio of Moody & Saffell with adaptation
    rate ``dsr_eta``). Penalties (subtracted, weights >= 0): ``downside`` (squared negative simple
    return, Sortino-style), ``drawdown`` (current drawdown from the episode's equity peak),
    ``turnover`` (traded notional / equity before the step). The total is multiplied by ``scale``.

    Benchmark-relative terms (all 0 by default), against a frictionless benchmark account over
    the same bars and fills as the env (``excess_benchmark``: ``equal_weight`` rebalanced to 1/N
    at every fill, or ``hold``: 1/N bought at the episode's first fill, then held):
    ``excess_log_return`` (log return minus the benchmark's log return), ``excess_dsr`` (the
    differential Sharpe ratio of the simple excess return, rate ``dsr_eta``) and the penalty
    ``excess_drawdown`` (drawdown of the relative wealth ``equity / benchmark equity`` from its
    episode peak).
    """

    pnl: float = 0.0
    log_return: float = 1.0
    dsr: float = 0.0
    dsr_eta: float = Field(default=0.01, gt=0.0, lt=1.0)
    downside: float = Field(default=0.0, ge=0.0)
    drawdown: float = Field(default=0.0, ge=0.0)
    turnover: float = Field(default=0.0, ge=0.0)
    scale: float = Field(default=1.0, gt=0.0)
    excess_benchmark: Literal["equal_weight", "hold"] = "equal_weight"
    excess_log_return: float = 0.0
    excess_dsr: float = 0.0
    excess_drawdown: float = Field(default=0.0, ge=0.0)

    @property
    def has_excess(self) -> bool:
        """Whether any benchmark-relative term is switched on."""
        return any(
            w != 0.0 for w in (self.excess_log_return, self.excess_dsr, self.excess_drawdown)
        )

    @model_serializer(mode="wrap")
    def _omit_unused_excess(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # configs without benchmark-relative terms dump exactly as before these options existed
        # (stored run configs, fingerprints); a missing key validates to its default
        data: dict[str, Any] = handler(self)
        if not self.has_excess and self.excess_benchmark == "equal_weight":
            for key in _EXCESS_KEYS:
                data.pop(key, None)
        return data

    @model_validator(mode="after")
    def _some_term(self) -> RewardConfig:
        terms = (self.pnl, self.log_return, self.dsr, self.downside, self.drawdown, self.turnover)
        if all(w == 0.0 for w in terms) and not self.has_excess:
            raise ValueError(
                "RewardConfig has every term weight at 0; set at least one of pnl, log_return, "
                "dsr, downside, drawdown, turnover, excess_log_return, excess_dsr, "
                "excess_drawdown"
            )
        return self


class TiltConfig(FrozenConfig):
    """The ``tilt`` action: a bounded tilt per asset added to a benchmark allocation.

    ``benchmark``: ``equal_weight`` (1/N per asset) or ``hold`` (the previous target weights;
    1/N at the start of an episode, when the previous target is flat). ``max_tilt``: the largest
    tilt per asset (action ``a`` in [-1, 1] gives ``max_tilt * tanh(a) / tanh(1)``).
    ``smoothing`` ``s``: the target is ``(1 - s) * projected + s * previous`` (not applied while
    the previous target is flat).
    """

    benchmark: Literal["equal_weight", "hold"] = "equal_weight"
    max_tilt: float = Field(default=0.1, gt=0.0, le=1.0)
    smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)


class EnvConfig(FrozenConfig):
    """Everything a trading environment needs besides the data.

    * ``action``: ``discrete`` (per asset short/flat/long levels, or sell/hold/buy steps with
      ``discrete_mode="trade"``), ``continuous`` (target position per asset in [-1, 1], scaled by
      ``sim.max_position``), ``weights`` (portfolio weights via ``weights_transform``),
      ``tilt`` (a bounded tilt per asset around a benchmark allocation, see ``TiltConfig``;
      long-only with ``weights_cash`` allowing cash, or inside the L1 ball of radius
      ``sim.max_leverage`` with ``sim.allow_short``).
    * ``window``: bars of features in each observation; ``feature_names`` picks a subset of the
      feature panel's columns (all when None).
    * episodes: ``episode_length`` decisions (None: to the end of the range), ``random_start``;
      early termination when equity falls to ``ruin_fraction`` of the initial cash or the
      drawdown from the episode's peak reaches ``max_drawdown``.
    * ``risk``: the risk engine's limits (``tradeforge.risk.RiskConfig``, the experiment's
      ``risk:`` section); when it sets an order-level check, a stop or a breaker, every step goes
      through the engine (``tradeforge.risk.bars.BarRisk``, as in the backtester), so a policy
      trains under the controls it will trade under. None (the default): no engine, and the
      config dumps exactly as before ``risk`` existed.
    """

    action: Literal["discrete", "continuous", "weights", "tilt"] = "continuous"
    discrete_mode: Literal["position", "trade"] = "position"
    weights_transform: Literal["softmax", "simplex"] = "softmax"
    weights_cash: bool = True
    softmax_scale: float = Field(default=4.0, gt=0.0)
    tilt: TiltConfig = TiltConfig()
    window: int = Field(default=30, ge=1)
    feature_names: list[str] | None = None
    dict_obs: bool = False
    reward: RewardConfig = RewardConfig()
    episode_length: int | None = Field(default=None, ge=1)
    random_start: bool = False
    ruin_fraction: float = Field(default=0.05, ge=0.0, lt=1.0)
    max_drawdown: float | None = Field(default=None, gt=0.0, le=1.0)
    sim: SimConfig = SimConfig()
    risk: RiskConfig | None = None

    @model_serializer(mode="wrap")
    def _omit_unused_tilt(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # other actions with the default tilt settings dump exactly as before ``tilt`` existed;
        # so does an env without a risk engine
        data: dict[str, Any] = handler(self)
        if self.action != "tilt" and self.tilt == TiltConfig():
            data.pop("tilt", None)
        if self.risk is None:
            data.pop("risk", None)
        return data


def as_env_config(config: EnvConfig | Mapping[str, Any] | None) -> EnvConfig:
    """``config`` itself, the defaults for None, or a mapping validated into an ``EnvConfig``
    (a :class:`~tradeforge.core.errors.ConfigError` names every bad key)."""
    if config is None:
        return EnvConfig()
    if isinstance(config, EnvConfig):
        return config
    return validate_config(EnvConfig, dict(config), source="EnvConfig")


__all__ = ["EnvConfig", "RewardConfig", "TiltConfig", "as_env_config"]
