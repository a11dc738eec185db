"""The policy artifact: one directory that holds everything a trained policy needs to act.

Layout::

    model.zip          SB3 weights (and optimizer state)
    normalizer.json    observation normalizer statistics, frozen (null when none was used)
    spec.json          observation/action spaces, action->weights table, feature hash, algorithm
    features/          the fitted feature pipeline, in its own format (optional)
    config.json        training configuration
    data.json          data ranges (train/validation/test) the policy saw
    version.json       tradeforge version, git sha, library versions
    metrics.json       validation metrics (and per-seed spread)
    manifest.json      sha256 of every file above

:func:`load_policy` checks the manifest before trusting anything.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from tradeforge.agents.factory import algo_class
from tradeforge.agents.spaces import space_to_dict
from tradeforge.core.errors import ArtifactError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED = ("model.zip", "normalizer.json", "spec.json", "config.json", "version.json")


@dataclass
class PolicyArtifact:
    """A trained model plus everything needed to reproduce its decisions; ``save`` writes it."""

    model: Any
    algo: str
    normalizer: dict[str, Any] | None
    observation_space: gym.Space[Any]
    action_space: gym.Space[Any]
    action_weights: list[list[float]] | None = None
    pipeline: Any | None = None
    config: dict[str, Any] = field(default_factory=dict)
    data_ranges: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    env_config: dict[str, Any] | None = None
    n_assets: int | None = None

    def spec(self) -> dict[str, Any]:
        pipeline_class = None
        feature_hash = None
        feature_names = None
        if self.pipeline is not None:
            cls = type(self.pipeline)
            pipeline_class = f"{cls.__module__}:{cls.__qualname__}"
            feature_hash = str(self.pipeline.content_hash)
            names = getattr(self.pipeline, "names", None)
            feature_names = list(names) if names is not None else None
        return {
            "format": FORMAT_VERSION,
            "algo": self.algo,
            "model_class": type(self.model).__name__,
            "observation": space_to_dict(self.observation_space),
            "action": space_to_dict(self.action_space),
            "action_weights": self.action_weights,
            "feature_hash": feature_hash,
            "feature_pipeline_class": pipeline_class,
            "feature_names": feature_names,
            "env_config": self.env_config,
            "n_assets": self.n_assets,
        }

    def save(self, directory: Path) -> Path:
        """Write the artifact to ``directory`` (created; existing artifact files are replaced)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / "model.zip")
        _write_json(directory / "normalizer.json", self.normalizer)
        _write_json(directory / "spec.json", self.spec())
        _write_json(directory / "config.json", self.config)
        _write_json(directory / "data.json", _jsonable(self.data_ranges))
        _write_json(directory / "version.json", code_version())
        _write_json(directory / "metrics.json", _jsonable(self.metrics))
        if self.pipeline is not None:
            self.pipeline.save(directory / "features")
        write_manifest(directory)
        return directory


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str), encoding="utf-8")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(directory: Path) -> dict[str, str]:
    """Hash every file under ``directory`` (but the manifest) into ``manifest.json``."""
    files = {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    _write_json(directory / MANIFEST, {"format": FORMAT_VERSION, "files": files})
    return files


def verify_manifest(directory: Path) -> dict[str, str]:
    """ArtifactError naming the first missing, unlisted-required or altered file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(f"policy artifact {str(directory)!r} is not a directory")
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{manifest_path} is missing; not a tradeforge policy artifact")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files: dict[str, str] = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{manifest_path} is not a valid manifest: {exc}") from None
    for name in REQUIRED:
        if name not in files:
            raise ArtifactError(f"manifest.json in {directory} does not list required file {name}")
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"artifact file {name} listed in manifest.json is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(
                f"artifact file {name} is corrupted: sha256 {actual[:12]}... does not match "
                f"manifest.json {expected[:12]}..."
            )
    return files


def git_sha() -> str | None:
    """The git commit of the tradeforge source tree, or None outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else None


def code_version() -> dict[str, Any]:
    import stable_baselines3
    import torch

    import tradeforge

    return {
        "tradeforge": tradeforge.__version__,
        "git_sha": git_sha(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
    }


def read_json(directory: Path, name: str) -> Any:
    path = Path(directory) / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"artifact file {name} is missing from {directory}") from None
    except ValueError as exc:
        raise ArtifactError(f"artifact file {name} is not valid JSON: {exc}") from None


def load_pipeline(directory: Path, spec: dict[str, Any]) -> Any | None:
    """The fitted feature pipeline saved in ``features/``, checked against its recorded hash."""
    target = spec.get("feature_pipeline_class")
    if target is None:
        return None
    module_name, _, qualname = str(target).partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ArtifactError(
            f"spec.json feature_pipeline_class {target!r} cannot be imported: {exc}"
        ) from None
    pipeline = obj.load(Path(directory) / "features")
    got = str(pipeline.content_hash)
    if got != spec.get("feature_hash"):
        raise ArtifactError(
            f"features/ pipeline hash {got!r} does not match spec.json feature_hash "
            f"{spec.get('feature_hash')!r}"
        )
    return pipeline


def load_model(directory: Path, spec: dict[str, Any]) -> Any:
    algo = spec.get("algo")
    try:
        cls = algo_class(str(algo))
    except Exception as exc:
        raise ArtifactError(f"spec.json algo {algo!r} is not usable: {exc}") from None
    try:
        return cls.load(Path(directory) / "model.zip", device="cpu")
    except Exception as exc:  # SB3 raises many kinds on a bad zip
        raise ArtifactError(f"model.zip in {directory} cannot be loaded: {exc}") from exc


__all__ = [
    "PolicyArtifact",
    "code_version",
    "git_sha",
    "load_model",
    "load_pipeline",
    "read_json",
    "sha256_file",
    "verify_manifest",
    "write_manifest",
]
