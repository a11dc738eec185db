"""Registering a run's policy in the MLflow model registry (``tracking: {register: true}``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeforge.experiment.config import ExperimentConfig

if TYPE_CHECKING:
    from tradeforge.experiment.validation import Validation


def default_registry_uri() -> str:
    """The registry every run and ``tradeforge models`` share by default:
    ``$TRADEFORGE_HOME/registry/mlflow.db`` (``~/.tradeforge`` when unset)."""
    home = Path(os.environ.get("TRADEFORGE_HOME") or Path.home() / ".tradeforge")
    folder = (home / "registry").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def register_run(
    config: ExperimentConfig, artifact: Path, checked: Validation, run_dir: Path
) -> dict[str, Any]:
    """Register the last fold's policy (the one a user would deploy) as a new version, tagged
    with the run directory, its out-of-sample metrics and the configurations tried."""
    from tradeforge.agents.registry import PolicyRegistry

    options = config.tracking
    uri = (options.registry_uri if options else None) or default_registry_uri()
    name = (options.model_name if options else None) or config.name
    alias = options.alias if options else "challenger"
    registry = PolicyRegistry(uri)
    tags = {
        "run_dir": str(run_dir),
        "oos_sharpe": f"{checked.metrics.get('sharpe', float('nan')):.6g}",
        "oos_total_return": f"{checked.metrics.get('total_return', float('nan')):.6g}",
        "deflated_sharpe": f"{checked.metrics.get('deflated_sharpe', float('nan')):.6g}",
        "configurations_tried": str(checked.n_trials),
        "strategy": config.strategy_name(),
    }
    info = registry.register(artifact, name, alias=alias, tags=tags)
    return {"uri": uri, "name": info.name, "version": info.version, "aliases": list(info.aliases)}


__all__ = ["default_registry_uri", "register_run"]
