"""Tiny deterministic trading-like envs for agent tests.

``ARTradingEnv`` trades one synthetic asset whose returns follow an AR(1) process with positive
autocorrelation (fixed seed), so the last return observed at bar t predicts the return from t to
t+1. The observation at t holds only returns up to and including bar t; the reward for the action
at t is position * return(t -> t+1) minus a cost on position changes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

N_BARS = 420
TRAIN = (0, 300)
VAL = (300, 420)


def ar1_returns(
    n: int = N_BARS, phi: float = 0.6, sigma: float = 0.01, seed: int = 7
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(n)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + sigma * rng.standard_normal()
    return out


class ARTradingEnv(gym.Env):  # type: ignore[type-arg]
    """One asset, AR(1) returns; discrete short/flat/long or a continuous position in [-1, 1]."""

    LEVELS = np.array([-1.0, 0.0, 1.0])

    def __init__(
        self,
        start: int = TRAIN[0],
        end: int = TRAIN[1],
        *,
        window: int = 4,
        action: str = "discrete",
        episode_length: int | None = None,
        cost: float = 0.0,
        allow_short: bool = True,
        returns: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.returns = ar1_returns() if returns is None else returns
        self.n_bars = len(self.returns)
        self.n_assets = 1
        self.window = window
        self.first = max(start, window - 1)
        self.last = end - 2  # last decision bar: its next return must exist inside the range
        self.episode_length = episode_length
        self.cost = cost
        self.allow_short = allow_short
        self.kind = action
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(window,), dtype=np.float32)
        if action == "discrete":
            self.action_space: gym.Space[Any] = gym.spaces.Discrete(3)
        else:
            self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.t = self.first
        self.position = 0.0
        self.equity = 1.0
        self.steps = 0

    # -- helpers the agents code relies on -----------------------------------------------------
    def action_to_weights(self, action: Any) -> np.ndarray:
        if self.kind == "discrete":
            return np.array([self.LEVELS[int(np.asarray(action).reshape(-1)[0])]])
        return np.clip(np.asarray(action, dtype=np.float64).reshape(1), -1.0, 1.0)

    def action_masks(self) -> np.ndarray:
        return np.array([self.allow_short, True, True])

    @property
    def bar(self) -> int:
        return self.t

    def _obs(self) -> np.ndarray:
        return (self.returns[self.t - self.window + 1 : self.t + 1] * 100).astype(np.float32)

    # -- gymnasium API ----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self.episode_length is not None:
            hi = max(self.first + 1, self.last - self.episode_length + 1)
            self.t = int(self.np_random.integers(self.first, hi))
        else:
            self.t = self.first
        self.position = 0.0
        self.equity = 1.0
        self.steps = 0
        return self._obs(), {"bar": self.t, "equity": self.equity}

    def step(self, action: Any):
        weights = self.action_to_weights(action)
        target = float(weights[0])
        ret = float(self.returns[self.t + 1])
        reward = target * ret - self.cost * abs(target - self.position)
        self.position = target
        self.equity *= 1.0 + reward
        self.t += 1
        self.steps += 1
        terminated = False
        truncated = self.t >= self.last or (
            self.episode_length is not None and self.steps >= self.episode_length
        )
        info = {"weights": weights, "equity": self.equity, "bar": self.t}
        return self._obs(), float(reward), terminated, truncated, info


class StandInPipeline:
    """A stand-in for ``tradeforge.features.FeaturePipeline``: save/load/content_hash, no pickle."""

    def __init__(self, scale: float = 100.0, names: tuple[str, ...] = ("ret",)) -> None:
        self.scale = scale
        self.names = names

    @property
    def content_hash(self) -> str:
        import hashlib

        return hashlib.sha256(f"{self.scale}:{self.names}".encode()).hexdigest()[:16]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "pipeline.json").write_text(
            json.dumps({"scale": self.scale, "names": list(self.names)})
        )

    @classmethod
    def load(cls, directory: Path) -> StandInPipeline:
        data = json.loads((Path(directory) / "pipeline.json").read_text())
        return cls(data["scale"], tuple(data["names"]))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_env_factory(**kwargs: Any):
    return lambda: ARTradingEnv(**kwargs)


@pytest.fixture
def train_factory():
    return make_env_factory(start=TRAIN[0], end=TRAIN[1], episode_length=64)


@pytest.fixture
def val_factory():
    return make_env_factory(start=VAL[0], end=VAL[1])


def model_params(model: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.policy.state_dict().items()}


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated MLflow sqlite store per session (creating one takes seconds)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    uri = f"sqlite:///{path}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
    return path


@pytest.fixture
def mlflow_uri(_mlflow_template: Path, tmp_path: Path) -> str:
    """A fresh local MLflow store (sqlite) in this test's tmp_path."""
    import shutil

    target = tmp_path / "mlflow" / "mlflow.db"
    target.parent.mkdir(parents=True)
    shutil.copy(_mlflow_template, target)
    return f"sqlite:///{target}"


TINY_PPO = {"n_steps": 32, "batch_size": 32, "n_epochs": 2}


def tiny_config(**changes: Any):
    from tradeforge.agents import AgentConfig

    base: dict[str, Any] = {
        "algo": "ppo",
        "timesteps": 64,
        "hyperparams": TINY_PPO,
        "policy_kwargs": {"net_arch": [16]},
        "eval": {"freq": 32, "patience": 0},
        "tracking": {"learning_curve": False},
    }
    base.update(changes)
    return AgentConfig.model_validate(base)


@pytest.fixture(scope="session")
def trained_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny PPO artifact (with a stand-in feature pipeline), trained once per session."""
    from tradeforge.agents import train_agent

    run = tmp_path_factory.mktemp("trained") / "run"
    result = train_agent(
        tiny_config(),
        make_env_factory(episode_length=32),
        make_env_factory(start=VAL[0], end=VAL[1]),
        run,
        pipeline=StandInPipeline(),
        data_ranges={"train": list(TRAIN), "validation": list(VAL)},
    )
    return result.artifact_path


@pytest.fixture
def artifact_copy(trained_artifact: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(trained_artifact, tmp_path / "policy"))


def val_observations(n: int = 20) -> list[np.ndarray]:
    env = ARTradingEnv(*VAL)
    obs, _ = env.reset()
    out = [obs]
    for _ in range(n - 1):
        obs, *_ = env.step(1)
        out.append(obs)
    return out
