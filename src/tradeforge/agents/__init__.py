"""tradeforge.agents: train, evaluate, package and combine trading agents.

Algorithm factory (SB3 and sb3-contrib), seeded training with validation-based early stopping,
the policy artifact (``load_policy``), rollouts to target weights, ensembles, behaviour-cloning
warm starts, constrained (safe) RL wrappers and Optuna sweeps.

Names load on first use (PEP 562), so ``import tradeforge.agents`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradeforge.agents.artifact import PolicyArtifact
    from tradeforge.agents.config import AgentConfig, EvalConfig, TrackingConfig
    from tradeforge.agents.ensemble import (
        AlphaMemberConfig,
        EnsembleConfig,
        EnsemblePolicy,
        EnsembleResult,
        train_ensemble,
    )
    from tradeforge.agents.imitation import BCConfig, behaviour_clone, ma_crossover_expert
    from tradeforge.agents.masks import TradeMasks
    from tradeforge.agents.policy import LoadedPolicy, load_policy
    from tradeforge.agents.registry import ModelVersionInfo, PolicyRegistry
    from tradeforge.agents.rollout import rollout_weights
    from tradeforge.agents.safe import (
        LagrangianConfig,
        LagrangianPenaltyVecEnv,
        ProjectedPolicy,
        ProjectionWrapper,
    )
    from tradeforge.agents.training import SeedResult, TrainResult, train_agent
    from tradeforge.agents.tuning import ParamSpace, TrialRecord, TuneConfig, TuneResult, tune

_EXPORTS: dict[str, str] = {
    "AgentConfig": "config",
    "AlphaMemberConfig": "ensemble",
    "BCConfig": "imitation",
    "EnsembleConfig": "ensemble",
    "EnsemblePolicy": "ensemble",
    "EnsembleResult": "ensemble",
    "EvalConfig": "config",
    "LagrangianConfig": "safe",
    "LagrangianPenaltyVecEnv": "safe",
    "LoadedPolicy": "policy",
    "ModelVersionInfo": "registry",
    "ParamSpace": "tuning",
    "PolicyArtifact": "artifact",
    "PolicyRegistry": "registry",
    "ProjectedPolicy": "safe",
    "ProjectionWrapper": "safe",
    "SeedResult": "training",
    "TrackingConfig": "config",
    "TradeMasks": "masks",
    "TrainResult": "training",
    "TrialRecord": "tuning",
    "TuneConfig": "tuning",
    "TuneResult": "tuning",
    "behaviour_clone": "imitation",
    "load_policy": "policy",
    "ma_crossover_expert": "imitation",
    "rollout_weights": "rollout",
    "train_agent": "training",
    "train_ensemble": "ensemble",
    "tune": "tuning",
}

__all__ = [
    "AgentConfig",
    "AlphaMemberConfig",
    "BCConfig",
    "EnsembleConfig",
    "EnsemblePolicy",
    "EnsembleResult",
    "EvalConfig",
    "LagrangianConfig",
    "LagrangianPenaltyVecEnv",
    "LoadedPolicy",
    "ModelVersionInfo",
    "ParamSpace",
    "PolicyArtifact",
    "PolicyRegistry",
    "ProjectedPolicy",
    "ProjectionWrapper",
    "SeedResult",
    "TrackingConfig",
    "TradeMasks",
    "TrainResult",
    "TrialRecord",
    "TuneConfig",
    "TuneResult",
    "behaviour_clone",
    "load_policy",
    "ma_crossover_expert",
    "rollout_weights",
    "train_agent",
    "train_ensemble",
    "tune",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tradeforge.agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tradeforge.agents.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
