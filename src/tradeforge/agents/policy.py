"""``load_policy``: a verified artifact as a :class:`tradeforge.core.policy.Policy`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from tradeforge.agents.artifact import load_model, load_pipeline, read_json, verify_manifest
from tradeforge.agents.evaluation import Predictor
from tradeforge.agents.spaces import check_observation, same_layout, space_from_dict
from tradeforge.agents.vecenv import normalize_observation
from tradeforge.core.errors import ArtifactError, PipelineMismatchError
from tradeforge.core.types import FloatArray

if TYPE_CHECKING:
    from tradeforge.agents.ensemble import EnsemblePolicy


class LoadedPolicy:
    """A trained agent that acts deterministically on raw (unnormalized) env observations.

    ``act`` returns target weights (N,). For a tradeforge trading env the artifact holds the
    env's ``EnvConfig`` and ``act`` maps the action with the same action interpreter the env
    uses (``tradeforge.envs.make_action_interpreter``), so ``act`` equals the env's
    ``info["weights"]``. Otherwise it uses the action->weights table of a Discrete env, or returns
    the env action itself as float64. ``env_action`` returns the action to pass to the env's
    ``step``. State: recurrent policies keep their memory, and ``discrete_mode="trade"`` actions
    move the previous target (updated by ``act`` or :meth:`observe`); ``reset()`` starts over.
    """

    def __init__(
        self,
        model: Any,
        spec: dict[str, Any],
        normalizer: dict[str, Any] | None,
        pipeline: Any | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.spec = spec
        self.normalizer = normalizer
        self.pipeline = pipeline
        self.metadata = metadata or {}
        self.observation_space = space_from_dict(spec["observation"])
        self.action_space = space_from_dict(spec["action"])
        table = spec.get("action_weights")
        self._table = None if table is None else np.asarray(table, dtype=np.float64)
        self._predict = Predictor(model)
        self._interpreter = _interpreter(spec)
        self.n_assets: int | None = spec.get("n_assets")
        self._previous = np.zeros((1, int(self.n_assets or 0)), dtype=np.float64)

    @property
    def feature_hash(self) -> str | None:
        value = self.spec.get("feature_hash")
        return None if value is None else str(value)

    @property
    def algo(self) -> str:
        return str(self.spec["algo"])

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.metadata.get("metrics", {}))

    def reset(self) -> None:
        """Forget recurrent memory and the previous target (a new episode starts flat)."""
        self._predict.reset(1)
        self._previous = np.zeros_like(self._previous)

    def observe(self, info: dict[str, Any]) -> None:
        """Take the executed target weights from an env step's ``info["weights"]``."""
        if "weights" in info and self._previous.size:
            weights = np.asarray(info["weights"], dtype=np.float64).reshape(1, -1)
            if weights.shape == self._previous.shape:
                self._previous = weights.copy()

    def check_pipeline(self, pipeline: Any) -> None:
        """PipelineMismatchError unless ``pipeline`` has the feature hash the policy was trained on."""
        _check_feature_hash(self.feature_hash, str(pipeline.content_hash))

    def env_action(self, observation: Any, action_masks: Any = None) -> Any:
        """The deterministic action for one raw observation, in the env's action space."""
        check_observation(observation, self.observation_space)
        obs = normalize_observation(observation, self.normalizer)
        masks = None if action_masks is None else np.asarray(action_masks, dtype=bool)
        action = self._predict(obs, masks)
        if isinstance(self.action_space, gym.spaces.Discrete):
            return int(np.asarray(action).reshape(-1)[0])
        return np.asarray(action)

    def act(self, observation: Any, action_masks: Any = None) -> FloatArray:
        """Target weights (N,) for one raw observation."""
        action = self.env_action(observation, action_masks)
        if self._interpreter is not None:
            weights = self._interpreter.to_weights(np.asarray(action)[None], self._previous)
            self._previous = np.asarray(weights, dtype=np.float64).reshape(1, -1).copy()
            target: FloatArray = self._previous[0].copy()
            return target
        if self._table is not None:
            row: FloatArray = self._table[int(action)].copy()
            return row
        out = np.asarray(action, dtype=np.float64)
        if isinstance(self.action_space, gym.spaces.Box):
            out = np.clip(out, self.action_space.low, self.action_space.high).astype(np.float64)
        result: FloatArray = np.atleast_1d(out)
        return result


def load_policy(
    directory: Path, *, expected_feature_hash: str | None = None
) -> LoadedPolicy | EnsemblePolicy:
    """Verify and load a policy artifact; ArtifactError names the missing or mismatched part.

    A directory holding an ensemble (``ensemble.json``) loads as an ``EnsemblePolicy``.
    """
    directory = Path(directory)
    if (directory / "ensemble.json").is_file():
        from tradeforge.agents.ensemble import load_ensemble

        return load_ensemble(directory, expected_feature_hash=expected_feature_hash)
    verify_manifest(directory)
    spec = read_json(directory, "spec.json")
    if not isinstance(spec, dict) or "observation" not in spec or "action" not in spec:
        raise ArtifactError("spec.json lacks the observation/action spec")
    normalizer = read_json(directory, "normalizer.json")
    if expected_feature_hash is not None:
        _check_feature_hash(spec.get("feature_hash"), expected_feature_hash)
    model = load_model(directory, spec)
    obs_space = space_from_dict(spec["observation"])
    if not same_layout(model.observation_space, obs_space):
        raise ArtifactError(
            f"model.zip observation space {model.observation_space} does not match spec.json "
            f"{obs_space}"
        )
    act_space = space_from_dict(spec["action"])
    if not same_layout(model.action_space, act_space):
        raise ArtifactError(
            f"model.zip action space {model.action_space} does not match spec.json {act_space}"
        )
    if normalizer is not None and isinstance(obs_space, gym.spaces.Box):
        mean = np.asarray(normalizer["obs_rms"].get("mean", []))
        if mean.shape != obs_space.shape:
            raise ArtifactError(
                f"normalizer.json statistics have shape {mean.shape}; spec.json observation "
                f"shape is {obs_space.shape}"
            )
    pipeline = load_pipeline(directory, spec)
    metadata = {
        "config": read_json(directory, "config.json"),
        "version": read_json(directory, "version.json"),
        "metrics": _optional(directory, "metrics.json"),
        "data_ranges": _optional(directory, "data.json"),
    }
    return LoadedPolicy(model, spec, normalizer, pipeline, metadata)


def _check_feature_hash(trained: str | None, given: str) -> None:
    if trained != given:
        raise PipelineMismatchError(
            f"feature pipeline hash {given!r} does not match the policy's spec.json feature_hash "
            f"{trained!r} (the pipeline it was trained with); use the pipeline saved in the "
            "artifact's features/ folder (LoadedPolicy.pipeline)"
        )


def _interpreter(spec: dict[str, Any]) -> Any:
    """The env's action interpreter rebuilt from spec.json, or None for non-tradeforge envs."""
    raw = spec.get("env_config")
    n_assets = spec.get("n_assets")
    if raw is None or n_assets is None:
        return None
    from tradeforge.envs.actions import make_action_interpreter
    from tradeforge.envs.config import EnvConfig

    try:
        config = EnvConfig.model_validate(raw)
        interpreter = make_action_interpreter(int(n_assets), config)
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"spec.json env_config is not a valid EnvConfig: {exc}") from None
    action_space = space_from_dict(spec["action"])
    if not same_layout(interpreter.space, action_space):
        raise ArtifactError(
            f"spec.json env_config gives the action space {interpreter.space}, but the policy "
            f"acts in {action_space}"
        )
    return interpreter


def _optional(directory: Path, name: str) -> Any:
    return read_json(directory, name) if (directory / name).is_file() else {}


__all__ = ["LoadedPolicy", "load_policy"]
