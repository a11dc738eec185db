"""Learning-curve plots and MLflow tracking (both imported lazily; no global state is changed)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tradeforge.core.errors import AgentError

log = logging.getLogger(__name__)


def plot_learning_curves(
    curves: Mapping[str, Sequence[Mapping[str, float]]],
    train_curves: Mapping[str, Sequence[tuple[int, float]]],
    path: Path,
    metric: str,
) -> Path:
    """Validation score (and mean training episode reward) against timesteps, one line per seed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    for label, history in curves.items():
        steps = [h["timesteps"] for h in history]
        top.plot(steps, [h["score"] for h in history], marker="o", label=label)
    top.set_ylabel(f"validation {metric}")
    top.grid(alpha=0.3)
    if curves:
        top.legend(loc="best", fontsize=8)
    for label, points in train_curves.items():
        if points:
            bottom.plot([p[0] for p in points], [p[1] for p in points], label=label)
    bottom.set_ylabel("train episode reward")
    bottom.set_xlabel("timesteps")
    bottom.grid(alpha=0.3)
    fig.suptitle("tradeforge learning curves")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def default_mlflow_uri(run_dir: Path) -> str:
    """A local SQLite store inside the run directory (MLflow's file store is deprecated)."""
    return f"sqlite:///{Path(run_dir).resolve() / 'mlflow.db'}"


def flatten(prefix: str, value: Any, out: dict[str, str]) -> dict[str, str]:
    """Nested config to MLflow params (``eval.patience`` style keys, values as text)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = str(value)[:500]
    return out


def log_run(
    *,
    uri: str,
    experiment: str,
    run_name: str,
    artifact_root: Path,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    artifacts: Mapping[str, Path],
) -> str:
    """Record one training run in MLflow; returns its run id."""
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError as exc:  # pragma: no cover - mlflow-skinny is a dependency
        raise AgentError(f"tracking.mlflow = true needs mlflow-skinny installed: {exc}") from None
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        location = (Path(artifact_root).resolve() / "mlartifacts").as_uri()
        experiment_id = client.create_experiment(experiment, artifact_location=location)
    else:
        experiment_id = found.experiment_id
    run = client.create_run(experiment_id, run_name=run_name)
    run_id: str = run.info.run_id
    flat = flatten("", dict(params), {})
    client.log_batch(run_id, params=[Param(k, v) for k, v in flat.items()])
    entries = [Metric(f"final.{k}", float(v), 0, 0) for k, v in metrics.items()]
    for label, history in histories.items():
        for record in history:
            step = int(record["timesteps"])
            entries.append(Metric(f"{label}.validation_score", float(record["score"]), 0, step))
    for start in range(0, len(entries), 900):
        client.log_batch(run_id, metrics=entries[start : start + 900])
    for name, path in artifacts.items():
        if path.is_dir():
            client.log_artifacts(run_id, str(path), name)
        elif path.is_file():
            client.log_artifact(run_id, str(path), name)
    client.set_terminated(run_id)
    log.info("mlflow run %s logged to %s", run_id, uri)
    return run_id


__all__ = ["default_mlflow_uri", "flatten", "log_run", "plot_learning_curves"]
