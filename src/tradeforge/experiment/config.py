"""The experiment YAML: one frozen config that wires a whole ``tradeforge run``.

Sections, each validated by the owning package's own config class::

    name: quickstart          # run directory name prefix
    seed: 0                   # global seed (agents' seeds are offsets from the agent section)
    data: {...}               # tradeforge.data.DataConfig
    features: {...}           # tradeforge.features.FeatureSpec
    env: {...}                # tradeforge.envs.EnvConfig (its ``sim`` section holds costs and fills)
    agent: {...}              # tradeforge.agents.AgentConfig: the single agent when no ensemble
    ensemble: {...} | null    # tradeforge.agents.EnsembleConfig: members + meta-controller
    tune: {...} | null        # tradeforge.agents.TuneConfig: the Optuna sweep of ``tradeforge tune``
    warm_start: {...} | null  # tradeforge.agents.BCConfig: behaviour cloning of a rule before RL
    risk: {...} | null        # tradeforge.risk.RiskConfig: its RiskLimits keys project targets
                              #   onto hard limits, its engine keys (checks, stops, breakers) run
                              #   the risk engine in every env and test backtest; plus
                              #   ``lagrangian: {...}`` (agents.safe.LagrangianConfig)
    tracking: {...} | null    # TrackingOptions below: MLflow registration of the run's policy
    walkforward: {...}        # tradeforge.backtest.WalkForwardConfig
    report: {...}             # ReportOptions below

Unknown keys anywhere are rejected with their key path (``env.sim.comission_bps``); the optional
sections are validated when the file loads, so a typo fails before any data is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from tradeforge.agents.config import AgentConfig
from tradeforge.backtest.baselines import BASELINES
from tradeforge.backtest.walkforward import WalkForwardConfig
from tradeforge.core.config import FrozenConfig, load_yaml_config, validate_config
from tradeforge.core.errors import ConfigError
from tradeforge.data.config import DataConfig
from tradeforge.data.panel import BarPanel
from tradeforge.envs.config import EnvConfig
from tradeforge.features.spec import FeatureSpec
from tradeforge.risk.bars import ENGINE_KEYS, needs_engine
from tradeforge.risk.config import RiskConfig
from tradeforge.risk.limits import RiskLimits


class ReportOptions(FrozenConfig):
    """What the validation part of a run computes besides the strategy itself."""

    baselines: list[str] = Field(
        default_factory=lambda: ["buy_and_hold", "equal_weight", "ma_crossover", "momentum", "cash"]
    )
    benchmark: str = "buy_and_hold"
    bootstrap_samples: int = Field(default=2000, ge=100)
    cost_multipliers: list[float] = Field(default_factory=lambda: [0.0, 1.0, 2.0, 5.0])
    fill_delays: list[int] = Field(default_factory=lambda: [0, 1, 2])
    regimes: bool = True
    html: bool = True
    # per-fold permutation importance (importance.json + a report table); opt-in: ~3 s a fold
    importance: bool = False

    @field_validator("baselines")
    @classmethod
    def _known_baselines(cls, value: list[str]) -> list[str]:
        unknown = [b for b in value if b not in BASELINES]
        if unknown:
            raise ValueError(f"unknown baselines {unknown}; expected names in {sorted(BASELINES)}")
        return value

    @field_validator("cost_multipliers", "fill_delays")
    @classmethod
    def _non_negative(cls, value: list[Any], info: ValidationInfo) -> list[Any]:
        if any(k < 0 for k in value):
            raise ValueError(f"{info.field_name} {value} must all be >= 0")
        return value


class TrackingOptions(FrozenConfig):
    """MLflow model registry: ``register: true`` registers the last fold's policy (the one you
    would deploy) as a new version of ``model_name`` (default: the experiment name), tagged with
    the run's out-of-sample metrics and the number of configurations tried."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, validate_by_name=True,
        validate_by_alias=True, serialize_by_alias=True,
    )  # fmt: skip

    register_policy: bool = Field(default=False, alias="register")
    registry_uri: str | None = None
    model_name: str | None = None
    alias: str | None = "challenger"


class ExperimentConfig(FrozenConfig):
    """A whole experiment: data -> features -> walk-forward training and testing -> report."""

    name: str = "experiment"
    seed: int = Field(default=0, ge=0)
    output_dir: str = "runs"
    data: DataConfig
    features: FeatureSpec = Field(default_factory=FeatureSpec.default)
    env: EnvConfig = Field(default_factory=EnvConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    ensemble: dict[str, Any] | None = None
    tune: dict[str, Any] | None = None
    warm_start: dict[str, Any] | None = None
    risk: dict[str, Any] | None = None
    tracking: TrackingOptions | None = None
    walkforward: WalkForwardConfig
    report: ReportOptions = Field(default_factory=ReportOptions)

    @field_validator("features", mode="before")
    @classmethod
    def _named_indicators(cls, value: Any) -> Any:
        """Let ``indicators`` list column names (``rsi_14``) as well as ``{name, params}``."""
        if not isinstance(value, dict) or not isinstance(value.get("indicators"), list):
            return value
        from tradeforge.features.spec import parse_feature_name

        items = [
            parse_feature_name(item).model_dump() if isinstance(item, str) else item
            for item in value["indicators"]
        ]
        return {**value, "indicators": items}

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c in "-_." for c in value):
            raise ValueError(f"name {value!r} must be letters, digits, '-', '_' or '.'")
        return value

    def check_sections(self) -> ExperimentConfig:
        """Validate ``ensemble``, ``tune``, ``warm_start`` and ``risk`` (their owners' configs
        load lazily); :func:`load_experiment` calls this so a typo fails before any data is read."""
        self.ensemble_config()
        self.warm_start_config()
        self.run_env()
        self.lagrangian_config()
        if self.tune is not None:
            self.tune_config()
        return self

    def ensemble_config(self) -> Any:
        """The validated ``EnsembleConfig`` (None when the run trains a single agent)."""
        if self.ensemble is None:
            return None
        from tradeforge.agents.ensemble import EnsembleConfig

        return validate_config(EnsembleConfig, dict(self.ensemble), source="ensemble")

    def warm_start_config(self) -> Any:
        """The validated ``BCConfig`` (None: agents start from scratch)."""
        if self.warm_start is None:
            return None
        from tradeforge.agents.imitation import BCConfig

        return validate_config(BCConfig, dict(self.warm_start), source="warm_start")

    def risk_config(self) -> RiskConfig | None:
        """The validated ``tradeforge.risk.RiskConfig`` of the ``risk`` section, ``lagrangian``
        aside (None: no ``risk`` keys but ``lagrangian``)."""
        limits = {k: v for k, v in (self.risk or {}).items() if k != "lagrangian"}
        if not limits:
            return None
        return validate_config(RiskConfig, limits, source="risk")

    def risk_limits(self) -> RiskLimits | None:
        """The projection's ``RiskLimits`` (``RiskConfig.limits()``) when ``risk`` sets one of
        its keys (``max_position``, ``max_gross``, ``max_turnover``, ``long_only``), else None
        (only the simulator's own limits)."""
        config = self.risk_config()
        if config is None or not set(self.risk or {}) & set(RiskLimits.model_fields):
            return None
        return config.limits()

    def run_env(self) -> EnvConfig:
        """The env config every env of the run is built from: ``env`` with ``env.risk`` set to
        the ``risk`` section when that section sets an engine key (an order-level check, a stop
        or a breaker: ``tradeforge.risk.bars.needs_engine``), else ``env`` unchanged.

        Raises :class:`ConfigError` when the ``risk`` section sets engine keys and ``env.risk``
        is set too (one place for the engine's limits: ``risk``)."""
        config = self.risk_config()
        if not needs_engine(config):
            return self.env
        if self.env.risk is not None:
            keys = sorted(k for k in ENGINE_KEYS if k in (self.risk or {}))
            raise ConfigError(
                f"risk sets the risk engine's keys {keys} and env.risk is set too "
                f"({self.env.risk.model_dump(exclude_defaults=True, mode='json')}); expected the "
                "engine's limits in one place: move env.risk's keys into the top-level risk: "
                "section"
            )
        return self.env.model_copy(update={"risk": config})

    def lagrangian_config(self) -> Any:
        """The validated ``LagrangianConfig`` of ``risk.lagrangian`` (None: no penalty)."""
        raw = (self.risk or {}).get("lagrangian")
        if raw is None:
            return None
        from tradeforge.agents.safe import LagrangianConfig

        if not isinstance(raw, dict):
            raise ConfigError(
                f"risk.lagrangian = {raw!r}; expected a mapping of LagrangianConfig fields"
            )
        return validate_config(LagrangianConfig, dict(raw), source="risk.lagrangian")

    def tune_config(self, **changes: Any) -> Any:
        """The validated ``TuneConfig`` of the ``tune`` section (defaults when absent)."""
        from tradeforge.agents.tuning import TuneConfig

        raw = {**(self.tune or {}), **{k: v for k, v in changes.items() if v is not None}}
        return validate_config(TuneConfig, raw, source="tune")

    def strategy_name(self) -> str:
        """How reports name the strategy: ``ensemble`` or the agent's algorithm."""
        return "ensemble" if self.ensemble is not None else self.agent.algo

    def market(self) -> str:
        """``equity``, ``crypto`` or ``fx``: the calendar that annualises per-bar numbers
        (``env.sim.calendar`` when set to another than the default ``equity``, else inferred
        from the data's asset class)."""
        if self.env.sim.calendar != "equity":  # a calendar other than the default was chosen
            return str(self.env.sim.calendar)
        asset = self.data.asset_class
        if asset is None and self.data.source == "bundled" and self.data.symbols:
            from tradeforge.data.sources.bundled_source import BundledSource

            asset = BundledSource.asset_class(self.data.symbols[0])  # type: ignore[assignment]
        if asset is None and self.data.source == "ccxt":
            asset = "crypto"
        return asset if asset in ("crypto", "fx") else "equity"

    def periods_per_year(self, panel: BarPanel | None = None) -> int:
        """``env.sim.periods_per_year`` when set, else derived from the data frequency and the
        market's calendar (252 trading days for equities, 365 for crypto, FX hours per year)."""
        set_value = self.env.sim.periods_per_year
        if set_value is not None:
            return int(set_value)
        from tradeforge.sim.annualization import periods_per_year

        frequency = panel.frequency if panel is not None else self.data.frequency
        return periods_per_year(frequency, self.market())

    def resolved_for(self, panel: BarPanel) -> ExperimentConfig:
        """This config with ``env.sim.periods_per_year`` filled in for ``panel`` (see
        :meth:`periods_per_year`), so envs, backtests, metrics and carry rates share one value."""
        sim = self.env.sim.model_copy(
            update={"calendar": self.market(), "periods_per_year": self.periods_per_year(panel)}
        )
        return self.model_copy(update={"env": self.env.model_copy(update={"sim": sim})})


def load_experiment(path: Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate an experiment YAML; ``overrides`` maps dotted keys to new values.

    Switching ``agent.algo`` to another algorithm drops ``agent.hyperparams`` (they belong to the
    configured algorithm): the new one starts from its own defaults.
    """
    config = load_yaml_config(path, ExperimentConfig)
    try:
        config.check_sections()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not overrides:
        return config
    raw = config.model_dump(mode="json")
    algo = overrides.get("agent.algo")
    if algo is not None and algo != config.agent.algo and "agent.hyperparams" not in overrides:
        raw["agent"]["hyperparams"] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                raise ConfigError(f"override {dotted!r}: {key!r} is not a section of the config")
            node = child
        node[leaf] = value
    return validate_config(
        ExperimentConfig, raw, source=f"{path} (with overrides)"
    ).check_sections()


__all__ = ["ExperimentConfig", "ReportOptions", "TrackingOptions", "load_experiment"]
