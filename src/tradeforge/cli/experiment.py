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
    risk: {...} | null        # tradeforge.agents.RiskLimits: targets projected onto hard limits
    walkforward: {...}        # tradeforge.backtest.WalkForwardConfig
    report: {...}             # ReportOptions below

Unknown keys anywhere are rejected with their key path (``env.sim.comission_bps``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from tradeforge.agents.config import AgentConfig
from tradeforge.backtest.baselines import BASELINES
from tradeforge.backtest.walkforward import WalkForwardConfig
from tradeforge.core.config import FrozenConfig, load_yaml_config, validate_config
from tradeforge.core.errors import ConfigError
from tradeforge.data.config import DataConfig
from tradeforge.envs.config import EnvConfig
from tradeforge.features.spec import FeatureSpec


class ReportOptions(FrozenConfig):
    """What the validation part of a run computes besides the strategy itself."""

    baselines: list[str] = Field(
        default_factory=lambda: ["buy_and_hold", "equal_weight", "ma_crossover", "momentum", "cash"]
    )
    benchmark: str = "buy_and_hold"
    bootstrap_samples: int = Field(default=2000, ge=100)
    cost_multipliers: list[float] = Field(default_factory=lambda: [0.0, 1.0, 2.0, 5.0])
    regimes: bool = True
    html: bool = True

    @field_validator("baselines")
    @classmethod
    def _known_baselines(cls, value: list[str]) -> list[str]:
        unknown = [b for b in value if b not in BASELINES]
        if unknown:
            raise ValueError(f"unknown baselines {unknown}; expected names in {sorted(BASELINES)}")
        return value

    @field_validator("cost_multipliers")
    @classmethod
    def _non_negative(cls, value: list[float]) -> list[float]:
        if any(k < 0 for k in value):
            raise ValueError(f"cost_multipliers {value} must all be >= 0")
        return value


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

    def risk_limits(self) -> Any:
        """The validated ``RiskLimits`` (None: only the simulator's own limits apply)."""
        if self.risk is None:
            return None
        from tradeforge.agents.safe import RiskLimits

        return validate_config(RiskLimits, dict(self.risk), source="risk")

    def tune_config(self, **changes: Any) -> Any:
        """The validated ``TuneConfig`` of the ``tune`` section (defaults when absent)."""
        from tradeforge.agents.tuning import TuneConfig

        raw = {**(self.tune or {}), **{k: v for k, v in changes.items() if v is not None}}
        return validate_config(TuneConfig, raw, source="tune")


def load_experiment(path: Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate an experiment YAML; ``overrides`` maps dotted keys to new values.

    Switching ``agent.algo`` to another algorithm drops ``agent.hyperparams`` (they belong to the
    configured algorithm): the new one starts from its own defaults.
    """
    config = load_yaml_config(path, ExperimentConfig)
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
    return validate_config(ExperimentConfig, raw, source=f"{path} (with overrides)")


__all__ = ["ExperimentConfig", "ReportOptions", "load_experiment"]
