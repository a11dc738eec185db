"""Folds as Ray tasks: the same seeds give the same weights, returns and metrics as the serial
run (``compute: {backend: ray}``, ``tradeforge run --ray``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tradeforge.core.errors import ConfigError
from tradeforge.experiment import load_experiment, run_experiment
from tradeforge.experiment.compute import ComputeConfig, compute_config

ray = pytest.importorskip("ray")


@pytest.fixture
def local_ray():
    """A small local Ray instance for the test, shut down afterwards."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20)
    yield ray
    ray.shutdown()


def test_ray_run_equals_the_serial_run(
    tmp_path: Path, write_experiment, tiny_experiment, local_ray
):
    raw = tiny_experiment(ensemble={"members": ["ppo", "a2c"], "mode": "soft", "window": 20})
    raw["agent"] = {**raw["agent"], "seeds": 2}
    config = load_experiment(write_experiment(raw))
    serial = run_experiment(config, out_dir=tmp_path / "serial")
    ticks: list[tuple[str, int, int]] = []
    on_ray = run_experiment(
        config,
        out_dir=tmp_path / "ray",
        progress=lambda stage, done, total: ticks.append((stage, done, total)),
        compute=ComputeConfig(backend="ray"),
    )
    assert len(serial.folds) == len(on_ray.folds) == 2
    np.testing.assert_array_equal(on_ray.returns.to_numpy(), serial.returns.to_numpy())
    assert on_ray.returns.index.equals(serial.returns.index)
    np.testing.assert_array_equal(on_ray.weights.to_numpy(), serial.weights.to_numpy())
    assert on_ray.metrics == serial.metrics
    for mine, theirs in zip(on_ray.folds, serial.folds, strict=True):
        np.testing.assert_array_equal(mine.weights, theirs.weights)
        assert mine.members == theirs.members  # same member weights from the same validation
        assert mine.artifact.is_relative_to(tmp_path / "ray")  # each task wrote its own fold
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
