"""Gymnasium spaces to and from JSON, for the artifact's observation and action spec."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from tradeforge.core.errors import ArtifactError

_MAX_BOUNDS = 4096  # store Box bounds only for small spaces (actions); observations keep shape


def space_to_dict(space: gym.Space[Any]) -> dict[str, Any]:
    """A JSON-safe description of ``space``."""
    if isinstance(space, gym.spaces.Box):
        out: dict[str, Any] = {
            "type": "box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
        }
        if int(np.prod(space.shape)) <= _MAX_BOUNDS:
            out["low"] = _finite_list(space.low)
            out["high"] = _finite_list(space.high)
        return out
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "multi_discrete", "nvec": np.asarray(space.nvec).tolist()}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "multi_binary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "dict", "spaces": {k: space_to_dict(v) for k, v in space.spaces.items()}}
    raise ArtifactError(f"space {space} cannot be written to spec.json; expected Box/Discrete/Dict")


def _finite_list(arr: np.ndarray) -> list[Any]:
    flat = np.asarray(arr, dtype=np.float64)
    out: list[Any] = np.where(np.isfinite(flat), flat, np.sign(flat) * 1e300).tolist()
    return out


def space_from_dict(data: dict[str, Any]) -> gym.Space[Any]:
    """Inverse of :func:`space_to_dict` (Box bounds default to unbounded when not stored)."""
    try:
        return _space_from_dict(data)
    except ArtifactError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"spec.json has an invalid space {data!r}: {exc}") from None


def _space_from_dict(data: dict[str, Any]) -> gym.Space[Any]:
    kind = data.get("type")
    if kind == "box":
        shape = tuple(int(x) for x in data["shape"])
        dtype = np.dtype(data.get("dtype", "float32"))
        low = np.asarray(data.get("low", np.full(shape, -np.inf)), dtype=np.float64)
        high = np.asarray(data.get("high", np.full(shape, np.inf)), dtype=np.float64)
        low = np.where(np.abs(low) >= 1e300, np.sign(low) * np.inf, low)
        high = np.where(np.abs(high) >= 1e300, np.sign(high) * np.inf, high)
        return gym.spaces.Box(
            low=low.astype(dtype), high=high.astype(dtype), shape=shape, dtype=dtype
        )
    if kind == "discrete":
        return gym.spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
    if kind == "multi_discrete":
        return gym.spaces.MultiDiscrete(data["nvec"])
    if kind == "multi_binary":
        return gym.spaces.MultiBinary(data["n"])
    if kind == "dict":
        return gym.spaces.Dict({k: _space_from_dict(v) for k, v in data["spaces"].items()})
    raise ArtifactError(f"spec.json has a space of unknown type {kind!r}")


def same_layout(a: gym.Space[Any], b: gym.Space[Any]) -> bool:
    """Whether two spaces have the same kind and shapes (bounds not compared)."""
    if isinstance(a, gym.spaces.Dict) and isinstance(b, gym.spaces.Dict):
        return set(a.spaces) == set(b.spaces) and all(
            same_layout(a.spaces[k], b.spaces[k]) for k in a.spaces
        )
    if isinstance(a, gym.spaces.Discrete) and isinstance(b, gym.spaces.Discrete):
        return int(a.n) == int(b.n)
    return type(a) is type(b) and a.shape == b.shape


def check_observation(observation: Any, space: gym.Space[Any]) -> None:
    """ArtifactError when an observation does not have the shape the policy was trained on."""
    if isinstance(space, gym.spaces.Dict):
        if not isinstance(observation, dict) or set(observation) != set(space.spaces):
            got = (
                sorted(observation) if isinstance(observation, dict) else type(observation).__name__
            )
            raise ArtifactError(
                f"observation keys {got} do not match spec.json keys {sorted(space.spaces)}"
            )
        for key, sub in space.spaces.items():
            check_observation(observation[key], sub)
        return
    shape = np.shape(observation)
    if shape != space.shape:
        raise ArtifactError(
            f"observation shape {shape} does not match spec.json observation shape {space.shape}; "
            "the policy was trained on a different window or feature set"
        )


__all__ = ["check_observation", "same_layout", "space_from_dict", "space_to_dict"]
