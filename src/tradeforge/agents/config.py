"""Agent configuration: which algorithm, how long, which seeds, how to evaluate and stop early."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from tradeforge.core.config import FrozenConfig

AlgoName = Literal["ppo", "a2c", "ddpg", "td3", "sac", "recurrent_ppo", "maskable_ppo"]
BackendName = Literal["sb3", "fast"]
DeviceName = Literal["auto", "cpu", "cuda"]

ALGOS: tuple[str, ...] = ("ppo", "a2c", "ddpg", "td3", "sac", "recurrent_ppo", "maskable_ppo")
DISCRETE_ALGOS: tuple[str, ...] = ("ppo", "a2c", "recurrent_ppo", "maskable_ppo")
CONTINUOUS_ALGOS: tuple[str, ...] = ("ppo", "a2c", "ddpg", "td3", "sac", "recurrent_ppo")


class EvalConfig(FrozenConfig):
    """Validation during training: how often, how long, when to stop.

    ``freq`` counts environment steps summed over all training envs (0 = ten evaluations over the
    run). ``patience`` is the number of evaluations without improvement before training stops
    (0 = never stop early); the first ``min_evals`` evaluations never stop a run.
    """

    freq: int = Field(default=0, ge=0)
    episodes: int = Field(default=1, ge=1)
    max_steps: int = Field(default=100_000, ge=1)
    patience: int = Field(default=5, ge=0)
    min_evals: int = Field(default=2, ge=0)
    metric: Literal["sharpe", "total_reward", "mean_reward"] = "sharpe"
    periods_per_year: int = Field(default=252, ge=1)


class TrackingConfig(FrozenConfig):
    """MLflow and TensorBoard logging; ``mlflow_uri`` None means ``sqlite:///<run_dir>/mlflow.db``."""

    mlflow: bool = False
    mlflow_uri: str | None = None
    experiment: str = "tradeforge"
    tensorboard: bool = False
    learning_curve: bool = True


class AgentConfig(FrozenConfig):
    """One agent to train.

    ``hyperparams`` go to the algorithm's constructor (checked against its signature);
    ``policy_kwargs`` to its policy network. Missing hyperparameters take tradeforge's defaults for
    small daily-bar data (see :data:`tradeforge.agents.factory.DEFAULT_HYPERPARAMS`).
    ``seeds`` > 1 trains seeds ``seed, seed+1, ...``; the artifact is the seed best on
    validation, and ``TrainResult.spread()`` reports the mean and spread over all of them.
    ``backend`` picks the PPO training loop: ``"sb3"`` (SB3's own) or ``"fast"``
    (:class:`tradeforge.agents.fastppo.FastPPO`: same network and artifact, a batched rollout
    and larger minibatches, defaults :data:`tradeforge.agents.fastppo.FAST_HYPERPARAMS`); it
    applies to ``algo: ppo`` only, every other algorithm trains with SB3 whatever it says.
    ``device`` is where the networks train: ``auto`` (CUDA when torch sees a GPU, else CPU),
    ``cpu`` or ``cuda``; :meth:`torch_device` resolves it when training starts, so a config
    written on a GPU machine still loads on one without.
    """

    algo: AlgoName = "ppo"
    backend: BackendName = "sb3"
    policy: str | None = None
    timesteps: int = Field(default=20_000, ge=1)
    seed: int = Field(default=0, ge=0)
    seeds: int = Field(default=1, ge=1)
    n_envs: int = Field(default=1, ge=1)
    hyperparams: dict[str, Any] = Field(default_factory=dict)
    policy_kwargs: dict[str, Any] = Field(default_factory=dict)
    normalize_obs: bool = True
    normalize_reward: bool = False
    clip_obs: float = Field(default=10.0, gt=0)
    deterministic_torch: bool = True
    torch_threads: int | None = Field(default=1, ge=1)
    device: DeviceName = "auto"
    eval: EvalConfig = Field(default_factory=EvalConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _check_policy_kwargs(self) -> AgentConfig:
        arch = self.policy_kwargs.get("net_arch")
        if arch is not None and not isinstance(arch, list | dict):
            from tradeforge.core.errors import ConfigError

            raise ConfigError(
                f"policy_kwargs.net_arch = {arch!r}: expected a list of layer sizes "
                "or a dict like {'pi': [64], 'vf': [64]}"
            )
        return self

    def torch_device(self) -> str:
        """``cpu`` or ``cuda``: ``auto`` picks CUDA when torch sees a GPU; ``cuda`` without one
        raises ConfigError naming the field."""
        import torch

        available = bool(torch.cuda.is_available())
        if self.device == "auto":
            return "cuda" if available else "cpu"
        if self.device == "cuda" and not available:
            from tradeforge.core.errors import ConfigError

            raise ConfigError(
                "agent.device = 'cuda': torch sees no CUDA device on this machine; expected "
                "'auto' or 'cpu' here (or a machine with a GPU and a CUDA build of torch)"
            )
        return self.device

    def with_updates(self, **changes: Any) -> AgentConfig:
        """A validated copy with some fields replaced."""
        data = self.model_dump()
        data.update(changes)
        return AgentConfig.model_validate(data)


def algo_list(names: tuple[str, ...]) -> str:
    return ", ".join(names)


__all__ = [
    "ALGOS",
    "CONTINUOUS_ALGOS",
    "DISCRETE_ALGOS",
    "AgentConfig",
    "AlgoName",
    "BackendName",
    "DeviceName",
    "EvalConfig",
    "TrackingConfig",
]
