"""Registering a run's policy in the MLflow model registry (``tracking: {register: true}``).

Besides the provenance tags every registration gets (git commit, artifact data checksum,
feature-pipeline hash, registered by: :func:`tradeforge.agents.registry.provenance_tags`), a
run's version is tagged by :func:`registration_tags` with its run directory, out-of-sample
metrics, ``configurations_tried`` (every configuration the run tried: what the deflated Sharpe
and the offline gate count), ``periods_per_year``, the out-of-sample range and
``data_config_checksum``: SHA-256 of the run's data section (source, symbols, range,
frequency) as canonical JSON, naming the panel the run loaded by its request. Every registered
version also gets its model card (:func:`tradeforge.governance.model_card.attach_model_card`:
the ``model_card/<name>-v<version>.md`` artifact and the ``model_card`` tag).
"""

from __future__ import annotations

import hashlib
import json
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
    tags = registration_tags(config, checked, run_dir)
    info = registry.register(artifact, name, alias=alias, tags=tags)
    from tradeforge.governance.model_card import attach_model_card

    attach_model_card(registry, info.name, info.version, run_dir=run_dir, artifact=artifact)
    return {"uri": uri, "name": info.name, "version": info.version, "aliases": list(info.aliases)}


def registration_tags(
    config: ExperimentConfig, checked: Validation, run_dir: Path
) -> dict[str, str]:
    """The version tags of a run's policy (module docstring)."""
    data = json.dumps(config.data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    index = checked.returns.index
    tags = {
        "run_dir": str(run_dir),
        "oos_sharpe": str(float(checked.metrics.get("sharpe", float("nan")))),
        "oos_total_return": str(float(checked.metrics.get("total_return", float("nan")))),
        "deflated_sharpe": str(float(checked.metrics.get("deflated_sharpe", float("nan")))),
        "configurations_tried": str(checked.n_trials),
        "trial_sharpes_known": str(len(checked.trial_sharpes)),
        "periods_per_year": str(checked.periods_per_year),
        "data_config_checksum": hashlib.sha256(data.encode()).hexdigest(),
        "strategy": config.strategy_name(),
    }
    if len(index):
        tags["oos_start"] = str(index[0].isoformat())
        tags["oos_end"] = str(index[-1].isoformat())
    return tags


__all__ = ["register_run", "registration_tags"]
