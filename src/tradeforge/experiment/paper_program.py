"""What a paper or live node trades: a policy artifact turned into the pieces the node takes.

The trading node (``tradeforge.execution.node``) knows only the core ``Policy`` protocol. This
module, on the experiment side, loads an artifact (``load_policy``) and wraps it so that the
node decides exactly what ``replay_policy`` decides:

* :class:`EnvActionPolicy`: ``act(observation)`` maps the policy's env action with the env's own
  action interpreter and the previous target, as ``TradingEnv.step`` does (an ensemble in soft
  mode blends actions, not weights; a ``trade``-mode discrete policy moves its last target);
  ``observe`` feeds an ensemble its members' returns between decisions, as the rollout does;
* :class:`WindowObservationBuilder`: the env's observation layout
  (``envs.observations.WindowObservations``) over the node's feature window and account state;
* :class:`TradingProgram`: the policy, its fitted pipeline, the env and data configs, a name and
  a fingerprint of the artifact (a node's journal belongs to one program).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tradeforge.core.errors import ArtifactError, ConfigError
from tradeforge.core.types import FloatArray
from tradeforge.data.config import DataConfig
from tradeforge.envs.config import EnvConfig
from tradeforge.execution.node_policy import AccountVector
from tradeforge.features.pipeline import FeaturePipeline


class EnvActionPolicy:
    """A policy whose ``act`` returns the target weights ``TradingEnv`` would derive from its
    env action (module docstring). Stateful like the env: call ``reset()`` to start flat."""

    def __init__(self, policy: Any, env: EnvConfig, n_assets: int) -> None:
        from tradeforge.envs.actions import make_action_interpreter

        self.policy = policy
        self.n_assets = n_assets
        self.interpreter = make_action_interpreter(n_assets, env)
        self._previous: FloatArray = np.zeros((1, n_assets))

    def reset(self) -> None:
        if hasattr(self.policy, "reset"):
            self.policy.reset()
        self._previous = np.zeros((1, self.n_assets))

    def act(self, observation: Any) -> FloatArray:
        if hasattr(self.policy, "env_action"):
            action = self.policy.env_action(observation)
        else:
            action = self.policy.act(observation)
        weights = self.interpreter.to_weights(np.asarray(action), self._previous)
        self._previous = np.asarray(weights, dtype=np.float64).reshape(1, -1).copy()
        out: FloatArray = self._previous[0].copy()
        return out

    def observe(self, info: dict[str, Any]) -> None:
        """Between decisions: an ensemble records its members' returns from the previous
        decision's closes to now (``EnsemblePolicy.observe`` on the env's bar)."""
        record = getattr(self.policy, "record_returns", None)
        if callable(record) and "close" in info and "previous_close" in info:
            with np.errstate(divide="ignore", invalid="ignore"):
                returns = np.asarray(info["close"]) / np.asarray(info["previous_close"]) - 1.0
            record(np.nan_to_num(returns))


class WindowObservationBuilder:
    """The env's observation of a feature window and an account state (module docstring)."""

    def __init__(self, env: EnvConfig, feature_names: tuple[str, ...]) -> None:
        wanted = env.feature_names if env.feature_names is not None else list(feature_names)
        missing = [n for n in wanted if n not in feature_names]
        if missing:
            raise ConfigError(
                f"env.feature_names {missing} are not produced by the pipeline; available: "
                f"{', '.join(feature_names)}"
            )
        self.columns = [feature_names.index(n) for n in wanted]
        self._window = env.window
        self.dict_obs = env.dict_obs

    @property
    def window(self) -> int:
        return self._window

    def __call__(self, features: FloatArray, account: AccountVector) -> Any:
        from tradeforge.envs.observations import WindowObservations

        values = np.asarray(features, dtype=np.float64)[:, :, self.columns]
        builder = WindowObservations(values, self._window, self.dict_obs)
        obs = builder.observe(
            np.array([self._window - 1]), account.weights.reshape(1, -1),
            np.array([account.cash_fraction]), np.array([account.upnl]),
        )  # fmt: skip
        if isinstance(obs, dict):
            return {k: v[0] for k, v in obs.items()}
        return obs[0]


@dataclass(frozen=True)
class TradingProgram:
    """Everything the node needs from a trained policy (module docstring). ``test_window``
    is the artifact's test range (ISO dates), the default paper replay period."""

    policy: Any
    pipeline: FeaturePipeline
    env: EnvConfig
    data: DataConfig
    name: str
    fingerprint: str
    test_window: tuple[str | None, str | None] = (None, None)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.data.symbols)

    def observation_builder(self) -> WindowObservationBuilder:
        return WindowObservationBuilder(self.env, tuple(self.pipeline.names))


def load_program(directory: Path) -> TradingProgram:
    """The artifact at ``directory`` (a policy or an ensemble) as a :class:`TradingProgram`."""
    from tradeforge.experiment.replay import open_artifact

    directory = Path(directory)
    opened = open_artifact(directory)
    policy, data, env, pipeline = opened.policy, opened.data, opened.env, opened.pipeline
    ranges = opened.ranges
    if not data.symbols:
        raise ArtifactError(
            f"{opened.meta}/config.json: data.symbols is empty; expected the traded symbols"
        )
    manifest = directory / "manifest.json"
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16] if manifest.is_file() else ""
    fingerprint = digest or _digest({"env": env.model_dump(mode="json"),
                                     "features": pipeline.content_hash})  # fmt: skip
    return TradingProgram(
        policy=EnvActionPolicy(policy, env, len(data.symbols)),
        pipeline=pipeline,
        env=env,
        data=data,
        name=directory.name,
        fingerprint=fingerprint,
        test_window=(ranges.get("test_start"), ranges.get("test_end")),
    )


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = [
    "EnvActionPolicy",
    "TradingProgram",
    "WindowObservationBuilder",
    "load_program",
]
