"""Where the walk-forward runs: in this process (``serial``) or as Ray tasks (``ray``).

A Ray run starts a local Ray instance on all cores (``num_cpus`` bounds it) or joins an existing
cluster (``address``, e.g. ``ray://head:10001`` or ``auto``) and submits one task per fold
(features, training, the test); each fold task submits one task per ensemble member x seed
(:class:`tradeforge.agents.mapper.RayMapper`, one CPU each; the fold task gives its CPU back
while it waits for them), then picks each member's best seed, scores the members and tests, as
the serial run does. The outcomes are collected in fold order. Every seed task trains with the
same seed, one torch thread and deterministic kernels, so a Ray run gives the same weights,
returns and metrics as the serial run, to the last bit. Folds chained by
``walkforward.warm_start`` still run one after the other (each needs its predecessor's policy),
but each fold's members x seeds still fan out.

The fold directories are written by the task, wherever it runs: on a cluster the run directory
must be on storage every node sees, and every node needs tradeforge installed. Ray is an optional
dependency (``pip install 'tradeforge[scale]'``).

Example::

    from tradeforge.experiment import load_experiment, run_experiment
    from tradeforge.experiment.compute import ComputeConfig

    run_experiment(load_experiment("configs/quickstart.yaml"), compute=ComputeConfig(backend="ray"))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from tradeforge.agents.mapper import Mapper, RayMapper, SerialMapper, task_name
from tradeforge.core.config import FrozenConfig, validate_config
from tradeforge.core.errors import ConfigError
from tradeforge.data.folds import Fold

logger = logging.getLogger(__name__)

#: ``fold_fn(*shared, fold, previous_artifact)`` -> the fold's outcome (anything with ``.artifact``)
FoldFn = Callable[..., Any]
#: ``(done, total)`` after each finished fold
DoneFn = Callable[[int, int], None]


class ComputeConfig(FrozenConfig):
    """Where folds run: ``serial`` (this process) or ``ray`` (local on all cores, or the cluster
    at ``address``); ``num_cpus`` bounds a local Ray instance (None: every core).
    ``seed_tasks`` (Ray only): each fold's members x seeds run as tasks of their own (default);
    False keeps one task per fold that trains its members and seeds one after another."""

    backend: Literal["serial", "ray"] = "serial"
    address: str | None = None
    num_cpus: int | None = Field(default=None, ge=1)
    seed_tasks: bool = True

    @model_validator(mode="after")
    def _check(self) -> ComputeConfig:
        if self.backend == "serial" and (
            self.address is not None or self.num_cpus is not None or not self.seed_tasks
        ):
            raise ValueError(
                f"backend = 'serial' with address = {self.address!r}, num_cpus = "
                f"{self.num_cpus!r}, seed_tasks = {self.seed_tasks!r}: address, num_cpus and "
                "seed_tasks = False apply to backend 'ray' only"
            )
        if self.address is not None and self.num_cpus is not None:
            raise ValueError(
                f"num_cpus = {self.num_cpus} with address = {self.address!r}: a cluster "
                "brings its own CPUs; expected num_cpus only for a local Ray instance"
            )
        return self


def compute_config(
    backend: str = "serial",
    address: str | None = None,
    num_cpus: int | None = None,
    seed_tasks: bool = True,
) -> ComputeConfig:
    """A validated :class:`ComputeConfig`; a bad value raises ConfigError naming the field."""
    raw = {"backend": backend, "address": address, "num_cpus": num_cpus, "seed_tasks": seed_tasks}
    return validate_config(ComputeConfig, raw, source="compute")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "compute.backend = 'ray': the ray package is not installed; expected "
            "`pip install 'tradeforge[scale]'` (ray core)"
        ) from exc
    return ray


@contextmanager
def ray_session(compute: ComputeConfig) -> Iterator[Any]:
    """The ``ray`` module, initialised for ``compute`` (no dashboard) and shut down afterwards;
    a Ray instance the caller already started is used as it is and left running."""
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    ray.init(
        address=compute.address,
        num_cpus=compute.num_cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def fold_mapper(compute: ComputeConfig | None) -> Mapper:
    """How a fold runs its members x seeds: as Ray tasks on a Ray run (unless ``seed_tasks`` is
    off), else one after another in the fold's process
    (:class:`~tradeforge.agents.mapper.SerialMapper`)."""
    if compute is not None and compute.backend == "ray" and compute.seed_tasks:
        return RayMapper()
    return SerialMapper()


def run_fold_tasks(
    fold_fn: FoldFn,
    folds: Sequence[Fold],
    shared: tuple[Any, ...],
    compute: ComputeConfig,
    *,
    warm_start: bool = False,
    done: DoneFn | None = None,
) -> list[Any]:
    """``fold_fn(*shared, fold, previous_artifact)`` for every fold, in fold order.

    ``serial`` calls it here; ``ray`` runs each call as a task (one CPU each; ``shared`` is put
    in the object store once) and waits for all of them, or, with ``warm_start``, for each
    before submitting the next with its artifact. ``done(k, total)`` follows each finished fold.
    """
    total = len(folds)
    tick = done or (lambda _k, _n: None)
    outcomes: list[Any] = []
    if compute.backend == "serial":
        previous: Path | None = None
        for k, fold in enumerate(folds):
            outcomes.append(fold_fn(*shared, fold, previous if warm_start else None))
            previous = outcomes[-1].artifact
            tick(k + 1, total)
        return outcomes
    with ray_session(compute) as ray:
        task = ray.remote(num_cpus=1, max_retries=0)(fold_fn).options(name=task_name(fold_fn))
        refs = [ray.put(value) for value in shared]
        if warm_start:
            previous = None
            for k, fold in enumerate(folds):
                outcomes.append(ray.get(task.remote(*refs, fold, previous)))
                previous = outcomes[-1].artifact
                tick(k + 1, total)
            return outcomes
        pending = [task.remote(*refs, fold, None) for fold in folds]
        waiting = list(pending)
        while waiting:
            _finished, waiting = ray.wait(waiting, num_returns=1)
            tick(total - len(waiting), total)
        outcomes = ray.get(pending)
        logger.info("ran %d folds as Ray tasks", total)
        return list(outcomes)


__all__ = [
    "ComputeConfig",
    "DoneFn",
    "FoldFn",
    "compute_config",
    "fold_mapper",
    "ray_session",
    "run_fold_tasks",
]
