"""Folds x members x seeds as Ray tasks: the same seeds give the same weights, returns, metrics,
best seeds and fold summaries as the serial run (``compute: {backend: ray}``,
``tradeforge run --ray``)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tradeforge.experiment.run as run_module
from tradeforge.agents.mapper import RayMapper, RecordingMapper, SerialMapper
from tradeforge.core.errors import ConfigError
from tradeforge.experiment import load_experiment, run_experiment
from tradeforge.experiment.compute import ComputeConfig, compute_config, fold_mapper

ray = pytest.importorskip("ray")

FOLD_TASK = "tradeforge.experiment.run._run_fold"
SEED_TASK = "tradeforge.agents.ensemble._MemberSeed"


def _task_counts(expected: dict[str, int], timeout_s: float = 30.0) -> Counter[str]:
    """Executions per task name in Ray's timeline (its events arrive a little late)."""
    deadline = time.monotonic() + timeout_s
    while True:
        events = ray.timeline()  # a task's event has category "task::<task name>"
        counts = Counter(e["cat"][6:] for e in events if str(e.get("cat")).startswith("task::"))
        if all(counts[k] >= v for k, v in expected.items()) or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


def _relative(value: Any, root: Path) -> Any:
    """The summary with the run directory cut from every path string."""
    if isinstance(value, dict):
        return {k: _relative(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(str(root), "<run>")
    return value


@pytest.fixture
def local_ray():
    """A small local Ray instance for the test, shut down afterwards."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20)
    yield ray
    ray.shutdown()


def test_ray_run_equals_the_serial_run(
    tmp_path: Path, write_experiment, tiny_experiment, local_ray, monkeypatch
):
    raw = tiny_experiment(ensemble={"members": ["ppo", "a2c"], "mode": "soft", "window": 20})
    raw["agent"] = {**raw["agent"], "seeds": 2}
    config = load_experiment(write_experiment(raw))
    recorder = RecordingMapper()
    with monkeypatch.context() as patch:  # the serial run, recording what its folds map
        patch.setattr(run_module, "fold_mapper", lambda _compute: recorder)
        serial = run_experiment(config, out_dir=tmp_path / "serial")
    seeds = [config.seed + config.agent.seed + fold for fold in range(2)]  # each fold's first
    assert recorder.items == [
        (member, seed + k) for seed in seeds for member in ("ppo", "a2c") for k in range(2)
    ]
    ticks: list[tuple[str, int, int]] = []
    on_ray = run_experiment(
        config,
        out_dir=tmp_path / "ray",
        progress=lambda stage, done, total: ticks.append((stage, done, total)),
        compute=ComputeConfig(backend="ray"),
    )
    counts = _task_counts({FOLD_TASK: 2, SEED_TASK: 8})
    assert (counts[FOLD_TASK], counts[SEED_TASK]) == (2, 8), counts  # 2 folds x 2 x 2 seeds
    assert len(serial.folds) == len(on_ray.folds) == 2
    np.testing.assert_array_equal(on_ray.returns.to_numpy(), serial.returns.to_numpy())
    assert on_ray.returns.index.equals(serial.returns.index)
    np.testing.assert_array_equal(on_ray.weights.to_numpy(), serial.weights.to_numpy())
    assert on_ray.metrics == serial.metrics
    for mine, theirs in zip(on_ray.folds, serial.folds, strict=True):
        np.testing.assert_array_equal(mine.weights, theirs.weights)
        assert mine.members == theirs.members  # same member weights from the same validation
        assert mine.artifact.is_relative_to(tmp_path / "ray")  # each task wrote its own fold
        assert _relative(mine.trained, tmp_path / "ray") == _relative(
            theirs.trained, tmp_path / "serial"
        )  # same fold summary: member weights, validation, seed spreads, risk
        fold = f"folds/fold_{mine.fold.number}"
        for member in ("ppo", "a2c"):
            path = f"{fold}/members/{member}/summary.json"
            ray_summary = json.loads((tmp_path / "ray" / path).read_text(encoding="utf-8"))
            serial_summary = json.loads((tmp_path / "serial" / path).read_text(encoding="utf-8"))
            assert ray_summary["best_seed"] == serial_summary["best_seed"]
            assert ray_summary["seeds"] == serial_summary["seeds"]  # every seed's validation
    assert ("fold", 2, 2) in ticks
    assert local_ray.is_initialized()  # a Ray instance the caller started is left running


def test_compute_config_names_the_bad_field():
    with pytest.raises(ConfigError, match="num_cpus = 4 with address = 'auto'"):
        compute_config("ray", address="auto", num_cpus=4)
    with pytest.raises(ConfigError, match="backend = 'serial' with address = 'auto'"):
        compute_config(address="auto")
    with pytest.raises(ConfigError, match="compute: backend = 'dask'"):
        compute_config("dask")
    assert compute_config("ray", num_cpus=2) == ComputeConfig(backend="ray", num_cpus=2)
    with pytest.raises(ConfigError, match="seed_tasks = False: address, num_cpus and"):
        compute_config(seed_tasks=False)


def test_fold_mapper_follows_the_backend():
    assert isinstance(fold_mapper(None), SerialMapper)
    assert isinstance(fold_mapper(ComputeConfig()), SerialMapper)
    assert isinstance(fold_mapper(ComputeConfig(backend="ray")), RayMapper)
    assert isinstance(fold_mapper(ComputeConfig(backend="ray", seed_tasks=False)), SerialMapper)
