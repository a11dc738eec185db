"""Members x seeds go through a mapper: ``train_agent`` maps its seeds, ``train_ensemble`` every
(member, seed) pair, and the result is the one the default (serial) loop gives. No Ray here:
the mapper below runs the calls in this process and records what it was given."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from tradeforge.agents.config import AgentConfig
from tradeforge.agents.ensemble import EnsembleConfig, train_ensemble
from tradeforge.agents.mapper import RecordingMapper, SerialMapper
from tradeforge.agents.training import SeedTask, seed_task, train_agent
from tradeforge.core.errors import AgentError

TINY: dict[str, Any] = {
    "timesteps": 64,
    "seeds": 2,
    "seed": 5,
    "n_envs": 1,
    "policy_kwargs": {"net_arch": [8]},
    "eval": {"freq": 32, "patience": 0},
    "tracking": {"learning_curve": False},
}


def test_serial_mapper_keeps_order_and_raises_the_item_error():
    assert SerialMapper().map(lambda x: x * 10, [3, 1, 2]) == [30, 10, 20]
    assert SerialMapper().map(str, []) == []

    def fail_on_two(x: int) -> int:
        if x == 2:
            raise AgentError(f"item = {x}: expected anything but 2")
        return x

    with pytest.raises(AgentError, match="item = 2"):
        SerialMapper().map(fail_on_two, [1, 2, 3])


def test_train_agent_maps_its_seeds_with_the_default_loops_result(
    train_factory, val_factory, tmp_path: Path
):
    config = AgentConfig.model_validate({**TINY, "algo": "ppo", "hyperparams": {"n_steps": 32}})
    mapper = RecordingMapper()
    mapped = train_agent(config, train_factory, val_factory, tmp_path / "mapped", mapper=mapper)
    default = train_agent(config, train_factory, val_factory, tmp_path / "default")
    assert mapper.items == [5, 6]
    assert [s.seed for s in mapped.seeds] == [5, 6]
    assert mapped.best_seed == default.best_seed
    assert mapped.seed_metrics == default.seed_metrics
    assert mapped.metrics == default.metrics
    summary = json.loads((tmp_path / "mapped" / "summary.json").read_text(encoding="utf-8"))
    assert summary["best_seed"] == default.best_seed
    assert (mapped.artifact_path / "manifest.json").is_file()


def test_train_ensemble_maps_members_x_seeds_flat(train_factory, val_factory, tmp_path: Path):
    config = EnsembleConfig.model_validate(
        {
            "members": [
                {**TINY, "algo": "ppo", "hyperparams": {"n_steps": 32, "batch_size": 32}},
                {**TINY, "algo": "a2c", "hyperparams": {"n_steps": 8}},
            ],
            "mode": "soft",
            "window": 20,
        }
    )
    mapper = RecordingMapper()
    mapped = train_ensemble(config, train_factory, val_factory, tmp_path / "mapped", mapper=mapper)
    default = train_ensemble(config, train_factory, val_factory, tmp_path / "default")
    assert mapper.items == [("ppo", 5), ("ppo", 6), ("a2c", 5), ("a2c", 6)]
    assert mapped.weights == default.weights
    for name in ("ppo", "a2c"):
        mine, theirs = mapped.members[name], default.members[name]
        assert mine is not None
        assert theirs is not None
        assert mine.best_seed == theirs.best_seed
        assert mine.seed_metrics == theirs.seed_metrics
        assert mine.run_dir == tmp_path / "mapped" / "members" / name
        assert {p.name for p in mine.run_dir.glob("seed_*")} == {"seed_5", "seed_6"}
    strip = {"returns"}
    assert {
        n: {k: v for k, v in s.items() if k not in strip} for n, s in mapped.validation.items()
    } == {n: {k: v for k, v in s.items() if k not in strip} for n, s in default.validation.items()}
    assert mapped.validation["ppo"]["returns"] == default.validation["ppo"]["returns"]


def test_seed_task_pickles_and_holds_torch_settings_inside(
    train_factory, val_factory, tmp_path: Path
):
    import torch

    seen: list[tuple[int, bool]] = []

    def hook(_score: float, _timesteps: int) -> bool:
        seen.append((torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()))
        return False

    config = AgentConfig.model_validate(
        {**TINY, "seeds": 1, "algo": "a2c", "hyperparams": {"n_steps": 8}, "torch_threads": 1}
    )
    task = seed_task(config, train_factory, val_factory, tmp_path, eval_hook=hook)
    assert isinstance(pickle.loads(pickle.dumps(SeedTask(config, len, len, tmp_path))), SeedTask)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(False)
    try:
        outcome = task(5)
        assert seen
        assert set(seen) == {(1, True)}
        assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (2, False)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    assert outcome.result.seed == 5
    assert (outcome.result.checkpoint_dir / "model.zip").is_file()
    assert outcome.result.checkpoint_dir == tmp_path / "seed_5" / "checkpoints" / "best"


def test_seed_task_refuses_resume_with_several_seeds(train_factory, val_factory, tmp_path: Path):
    config = AgentConfig.model_validate({**TINY, "algo": "ppo"})
    with pytest.raises(AgentError, match="resume_from works with seeds = 1; got seeds = 2"):
        seed_task(config, train_factory, val_factory, tmp_path, resume_from=tmp_path)
