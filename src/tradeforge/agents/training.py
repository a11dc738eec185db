"""``train_agent``: seeded, deterministic training with validation, early stopping and artifacts."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tradeforge.agents.artifact import PolicyArtifact
from tradeforge.agents.callbacks import EvalHook, ValidationCallback, save_checkpoint
from tradeforge.agents.config import AgentConfig
from tradeforge.agents.evaluation import evaluate
from tradeforge.agents.factory import algo_class, build_model, model_class
from tradeforge.agents.mapper import Mapper, SerialMapper
from tradeforge.agents.tracking import default_mlflow_uri, log_run, plot_learning_curves
from tradeforge.agents.vecenv import (
    EnvFactory,
    discrete_weight_table,
    frozen_copy,
    load_normalizer_stats,
    make_vec_env,
    trading_env_config,
    wrap_normalizer,
)
from tradeforge.core.errors import AgentError

#: Called once on a fresh model before RL training (e.g. behaviour cloning); gets (model, env).
WarmStart = Callable[[Any, Any], None]


@contextlib.contextmanager
def torch_determinism(enabled: bool, threads: int | None) -> Iterator[None]:
    """Deterministic torch kernels and a fixed thread count, restored afterwards.

    Argument validation of torch distributions is switched off meanwhile (it only checks
    inputs, and costs more than the small policy networks themselves).
    """
    import torch
    from torch.distributions import Distribution

    previous = torch.are_deterministic_algorithms_enabled()
    previous_threads = torch.get_num_threads()
    previous_validate = Distribution._validate_args
    if enabled:
        torch.use_deterministic_algorithms(True)
    if threads is not None:
        torch.set_num_threads(threads)
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.set_num_threads(previous_threads)
        Distribution.set_default_validate_args(previous_validate)


@dataclass(frozen=True)
class SeedResult:
    """One seed's run: final validation metrics of its best checkpoint and its history."""

    seed: int
    metrics: dict[str, float]
    history: list[dict[str, float]]
    train_curve: list[tuple[int, float]]
    timesteps: int
    stopped_early: bool
    checkpoint_dir: Path


def metric_spread(seed_metrics: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, sample std (0 for one seed), min and max of each metric over the seeds' results."""
    keys = seed_metrics[0].keys() if seed_metrics else ()
    out = {}
    for key in keys:
        values = np.array([m[key] for m in seed_metrics], dtype=np.float64)
        std = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
        out[key] = {
            "mean": float(np.mean(values)),
            "std": std,
            "min": float(np.min(values)),
            "max": float(np.max(values)),
            "n": float(values.size),
        }
    return out


@dataclass(frozen=True)
class TrainResult:
    """What ``train_agent`` produced; ``summary()`` is JSON-ready for ``--json``."""

    artifact_path: Path
    metrics: dict[str, float]
    seed_metrics: list[dict[str, float]]
    best_seed: int
    run_dir: Path
    learning_curve: Path | None
    seeds: list[SeedResult] = field(default_factory=list)
    mlflow_run_id: str | None = None
    metric: str = "sharpe"

    def spread(self) -> dict[str, dict[str, float]]:
        """Mean, sample standard deviation, min and max of each validation metric over seeds."""
        return metric_spread(self.seed_metrics)

    def summary(self) -> dict[str, Any]:
        return {
            "artifact": str(self.artifact_path),
            "run_dir": str(self.run_dir),
            "metric": self.metric,
            "best_seed": self.best_seed,
            "validation": self.metrics,
            "seeds": [
                {
                    "seed": s.seed,
                    "timesteps": s.timesteps,
                    "stopped_early": s.stopped_early,
                    "validation": s.metrics,
                }
                for s in self.seeds
            ],
            "spread": self.spread(),
            "learning_curve": str(self.learning_curve) if self.learning_curve else None,
            "mlflow_run_id": self.mlflow_run_id,
        }


@dataclass(frozen=True)
class SeedOutcome:
    """What a seed task hands back: cheap to ship (no live model; the best checkpoint's
    ``model.zip`` is at ``result.checkpoint_dir``, reloaded by whoever picks the best seed)."""

    result: SeedResult
    normalizer: dict[str, Any] | None
    observation_space: Any
    action_space: Any
    action_weights: list[list[float]] | None
    env_config: tuple[dict[str, Any], int] | None


@dataclass(frozen=True)
class SeedTask:
    """One agent's seeds, as a picklable callable: ``task(seed)`` trains that seed into
    ``run_dir / f"seed_{seed}"`` under the config's torch determinism and thread settings
    (they hold in whatever process runs it, e.g. a Ray worker). A :class:`Mapper` runs
    ``task`` over :meth:`seeds`; :func:`finish_training` turns the outcomes into the result."""

    config: AgentConfig
    make_train_env: EnvFactory
    make_eval_env: EnvFactory
    run_dir: Path
    progress: bool = False
    resume_from: Path | None = None
    warm_start: WarmStart | None = None
    eval_hook: EvalHook | None = None

    def seeds(self) -> list[int]:
        return [self.config.seed + k for k in range(self.config.seeds)]

    def __call__(self, seed: int) -> SeedOutcome:
        config = self.config
        with torch_determinism(config.deterministic_torch, config.torch_threads):
            return _train_seed(
                config,
                seed,
                self.make_train_env,
                self.make_eval_env,
                self.run_dir / f"seed_{seed}",
                self.progress,
                self.resume_from,
                self.warm_start,
                self.eval_hook,
            )


def _eval_freq(config: AgentConfig) -> int:
    if config.eval.freq > 0:
        return config.eval.freq
    return max(config.n_envs, config.timesteps // 10)


def _train_seed(
    config: AgentConfig,
    seed: int,
    make_train_env: EnvFactory,
    make_eval_env: EnvFactory,
    seed_dir: Path,
    progress: bool,
    resume_from: Path | None,
    warm_start: WarmStart | None,
    eval_hook: EvalHook | None,
) -> SeedOutcome:
    from stable_baselines3.common.utils import set_random_seed

    set_random_seed(seed)
    gamma = float(config.hyperparams.get("gamma", 0.99))
    train_env = make_vec_env(make_train_env, config.n_envs, seed)
    eval_raw = make_vec_env(make_eval_env, 1, seed)
    if eval_raw.observation_space != train_env.observation_space:
        raise AgentError(
            f"validation env observation space {eval_raw.observation_space} differs from the "
            f"training env's {train_env.observation_space}"
        )
    norm = None
    if config.normalize_obs or config.normalize_reward:
        norm = wrap_normalizer(
            train_env,
            obs=config.normalize_obs,
            reward=config.normalize_reward,
            clip_obs=config.clip_obs,
            gamma=gamma,
        )
        train_env = norm
        eval_env = frozen_copy(norm, eval_raw)
    else:
        eval_env = eval_raw
    tb_dir = seed_dir / "tensorboard" if config.tracking.tensorboard else None
    state: dict[str, Any] = {}
    if resume_from is not None:
        model, state = _resume(config, resume_from, train_env, norm)
        previous_best = Path(resume_from).parent / "best"
        best_copy = seed_dir / "checkpoints" / "best"
        if (previous_best / "model.zip").is_file() and not best_copy.exists():
            shutil.copytree(previous_best, best_copy)
    else:
        model = build_model(config, train_env, seed=seed, tensorboard_log=tb_dir)
        if warm_start is not None:
            warm_start(model, train_env)
    callback = ValidationCallback(
        eval_env,
        norm,
        config.eval,
        _eval_freq(config),
        best_dir=seed_dir / "checkpoints" / "best",
        last_dir=seed_dir / "checkpoints" / "last",
        hook=eval_hook,
        state=state,
    )
    remaining = config.timesteps - int(model.num_timesteps)
    if remaining > 0:
        model.learn(
            total_timesteps=remaining,
            callback=callback,
            progress_bar=progress,
            reset_num_timesteps=resume_from is None,
            tb_log_name=f"seed_{seed}",
        )
    save_checkpoint(model, norm, seed_dir / "checkpoints" / "last", callback.state())
    best_dir = seed_dir / "checkpoints" / "best"
    if not (best_dir / "model.zip").is_file():
        save_checkpoint(model, norm, best_dir, {})
    stats = json.loads((best_dir / "normalizer.json").read_text(encoding="utf-8"))
    if norm is not None and stats is not None:
        load_normalizer_stats(eval_env, stats)
    metrics = _checkpoint_metrics(best_dir)
    if metrics is None:
        metrics = evaluate(
            _load_best(config, best_dir),
            eval_env,
            episodes=config.eval.episodes,
            max_steps=config.eval.max_steps,
            periods_per_year=config.eval.periods_per_year,
        )
    weights_table = _weights_table(eval_raw)
    env_config = trading_env_config(eval_raw)
    observation_space, action_space = train_env.observation_space, train_env.action_space
    train_env.close()
    eval_env.close()
    result = SeedResult(
        seed=seed,
        metrics=metrics,
        history=callback.history,
        train_curve=callback.train_curve,
        timesteps=int(model.num_timesteps),
        stopped_early=callback.stopped_early,
        checkpoint_dir=best_dir,
    )
    return SeedOutcome(result, stats, observation_space, action_space, weights_table, env_config)


def _load_best(config: AgentConfig, best_dir: Path) -> Any:
    """The model saved in a seed's best checkpoint (for inference, on the CPU)."""
    return algo_class(config.algo).load(best_dir / "model.zip", device="cpu")


def _checkpoint_metrics(best_dir: Path) -> dict[str, float] | None:
    """The validation metrics recorded when the best checkpoint was saved (None if absent)."""
    path = best_dir / "state.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8")).get("metrics")
    if not isinstance(record, dict):
        return None
    return {k: float(v) for k, v in record.items() if k not in ("timesteps", "score")}


def _weights_table(venv: Any) -> list[list[float]] | None:
    """The action->weights table, only for envs whose mapping does not depend on holdings."""
    mode = None
    with contextlib.suppress(AttributeError, IndexError, TypeError):
        mode = venv.get_attr("config")[0].discrete_mode
    if mode == "trade":
        return None
    return discrete_weight_table(venv)


def _resume(
    config: AgentConfig, checkpoint: Path, env: Any, norm: Any | None
) -> tuple[Any, dict[str, Any]]:
    checkpoint = Path(checkpoint)
    model_path = checkpoint / "model.zip"
    if not model_path.is_file():
        raise AgentError(f"resume_from {str(checkpoint)!r} has no model.zip; pass a checkpoint dir")
    try:
        model = model_class(config).load(model_path, env=env, device=config.torch_device())
    except Exception as exc:  # SB3 raises ValueError/KeyError/... on a mismatched checkpoint
        raise AgentError(
            f"resume_from {str(checkpoint)!r} cannot be loaded as {config.algo} on this env: "
            f"{exc}; resume with the algo and env (spaces) the checkpoint was trained with"
        ) from exc
    stats_path = checkpoint / "normalizer.json"
    stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.is_file() else None
    if norm is not None and stats is not None:
        load_normalizer_stats(norm, stats)
    state_path = checkpoint / "state.json"
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {}
    if state.get("best_score") is None:
        state.pop("best_score", None)
    return model, state


def train_agent(
    config: AgentConfig,
    make_train_env: EnvFactory,
    make_eval_env: EnvFactory,
    run_dir: Path,
    progress: bool = False,
    *,
    pipeline: Any | None = None,
    data_ranges: dict[str, Any] | None = None,
    extra_config: dict[str, Any] | None = None,
    resume_from: Path | None = None,
    warm_start: WarmStart | None = None,
    eval_hook: EvalHook | None = None,
    mapper: Mapper | None = None,
) -> TrainResult:
    """Train ``config.seeds`` seeds, keep the one best on validation, write its artifact.

    ``make_train_env`` / ``make_eval_env`` return a gymnasium Env (called ``n_envs`` times) or a
    VecEnv. ``pipeline`` (a fitted FeaturePipeline), ``data_ranges`` and ``extra_config`` (e.g.
    the env and data configs) go into the artifact at ``run_dir / "policy"``.
    ``resume_from`` continues a checkpoint directory (``.../checkpoints/last``). ``mapper``
    runs the seeds (:class:`~tradeforge.agents.mapper.SerialMapper` by default, one after
    another here; a ``RayMapper`` runs them as Ray tasks, with the same results).
    """
    task = seed_task(
        config, make_train_env, make_eval_env, run_dir, progress,
        resume_from=resume_from, warm_start=warm_start, eval_hook=eval_hook,
    )  # fmt: skip
    outcomes = (mapper or SerialMapper()).map(task, task.seeds())
    return finish_training(
        config, run_dir, outcomes,
        pipeline=pipeline, data_ranges=data_ranges, extra_config=extra_config,
    )  # fmt: skip


def seed_task(
    config: AgentConfig,
    make_train_env: EnvFactory,
    make_eval_env: EnvFactory,
    run_dir: Path,
    progress: bool = False,
    *,
    resume_from: Path | None = None,
    warm_start: WarmStart | None = None,
    eval_hook: EvalHook | None = None,
) -> SeedTask:
    """The :class:`SeedTask` of ``train_agent``'s arguments (``run_dir`` created, checked)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume_from is not None and config.seeds > 1:
        raise AgentError(f"resume_from works with seeds = 1; got seeds = {config.seeds}")
    return SeedTask(
        config, make_train_env, make_eval_env, run_dir, progress, resume_from, warm_start,
        eval_hook,
    )  # fmt: skip


def finish_training(
    config: AgentConfig,
    run_dir: Path,
    outcomes: Sequence[SeedOutcome],
    *,
    pipeline: Any | None = None,
    data_ranges: dict[str, Any] | None = None,
    extra_config: dict[str, Any] | None = None,
) -> TrainResult:
    """The seeds' outcomes (in seed order) -> the best seed's artifact, the learning curves,
    ``summary.json`` and the MLflow run: :func:`train_agent` after its seeds ran."""
    run_dir = Path(run_dir)
    metric = config.eval.metric
    best = max(outcomes, key=lambda o: _finite(o.result.metrics[metric]))
    with torch_determinism(config.deterministic_torch, config.torch_threads):
        best_model = _load_best(config, best.result.checkpoint_dir)
    seed_metrics = [o.result.metrics for o in outcomes]
    all_metrics: dict[str, Any] = {
        "validation": best.result.metrics,
        "best_seed": best.result.seed,
        "seeds": {str(o.result.seed): o.result.metrics for o in outcomes},
        "spread": metric_spread(seed_metrics),
    }
    config_payload = {"agent": config.model_dump(mode="json"), **(extra_config or {})}
    artifact = PolicyArtifact(
        model=best_model,
        algo=config.algo,
        normalizer=best.normalizer,
        observation_space=best.observation_space,
        action_space=best.action_space,
        action_weights=best.action_weights,
        pipeline=pipeline,
        config=config_payload,
        data_ranges=data_ranges or {},
        metrics=all_metrics,
        env_config=best.env_config[0] if best.env_config else None,
        n_assets=best.env_config[1] if best.env_config else None,
    )
    artifact_path = artifact.save(run_dir / "policy")
    curve = None
    if config.tracking.learning_curve:
        curve = plot_learning_curves(
            {f"seed {o.result.seed}": o.result.history for o in outcomes},
            {f"seed {o.result.seed}": o.result.train_curve for o in outcomes},
            run_dir / "learning_curve.png",
            metric,
        )
    result = TrainResult(
        artifact_path=artifact_path,
        metrics=best.result.metrics,
        seed_metrics=seed_metrics,
        best_seed=best.result.seed,
        run_dir=run_dir,
        learning_curve=curve,
        seeds=[o.result for o in outcomes],
        metric=metric,
    )
    (run_dir / "summary.json").write_text(json.dumps(result.summary(), indent=2), encoding="utf-8")
    if config.tracking.mlflow:
        run_id = log_run(
            uri=config.tracking.mlflow_uri or default_mlflow_uri(run_dir),
            experiment=config.tracking.experiment,
            run_name=f"{config.algo}-seed{config.seed}",
            artifact_root=run_dir,
            params=config_payload,
            metrics={**best.result.metrics, **_spread_metrics(seed_metrics)},
            histories={f"seed_{o.result.seed}": o.result.history for o in outcomes},
            artifacts={"policy": artifact_path, **({"plots": curve} if curve else {})},
        )
        result = TrainResult(**{**result.__dict__, "mlflow_run_id": run_id})
        (run_dir / "summary.json").write_text(
            json.dumps(result.summary(), indent=2), encoding="utf-8"
        )
    return result


def _spread_metrics(seed_metrics: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, stats in metric_spread(seed_metrics).items():
        out[f"seeds_mean.{key}"] = stats["mean"]
        out[f"seeds_std.{key}"] = stats["std"]
    return out


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


__all__ = [
    "SeedOutcome",
    "SeedResult",
    "SeedTask",
    "TrainResult",
    "WarmStart",
    "finish_training",
    "metric_spread",
    "seed_task",
    "torch_determinism",
    "train_agent",
]
