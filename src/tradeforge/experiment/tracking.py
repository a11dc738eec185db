"""Registering a run's policy in the MLflow model registry (``tracking: {register: true}``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeforge.experiment.config import ExperimentConfig

if TYPE_CHECKING:
    from tradeforge.experiment.validation import Validation


def register_run(
    config: ExperimentConfig, artifact: Path, checked: Validation, run_dir: Path
) -> dict[str, Any]:
    """Register the last fold's policy (the one a user would deploy) as a new version, tagged
    with the run directory, its out-of-sample metrics and the configurations tried."""
    from tradeforge.agents.registry import PolicyRegistry

    options = config.tracking
    name = (options.model_name if options else None) or config.name
    alias = options.alias if options else "challenger"
    registry = PolicyRegistry(options.registry_uri if options else None)
    uri = registry.uri
    tags = {
        "run_dir": str(run_dir),
        "oos_sharpe": str(float(checked.metrics.get("sharpe", float("nan")))),
        "oos_total_return": str(float(checked.metrics.get("total_return", float("nan")))),
        "deflated_sharpe": str(float(checked.metrics.get("deflated_sharpe", float("nan")))),
        "configurations_tried": str(checked.n_trials),
        "strategy": config.strategy_name(),
    }
    info = registry.register(artifact, name, alias=alias, tags=tags)
    return {"uri": uri, "name": info.name, "version": info.version, "aliases": list(info.aliases)}


__all__ = ["register_run"]
